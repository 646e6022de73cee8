"""docs/CHAT.md's tables are one conversation: each `you` line is sent, in order, through the real app,
and each reply must be what the table says the bot answers."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from conftest import Client, delivery, make_config

DOC = Path(__file__).resolve().parent.parent / "docs" / "CHAT.md"
NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.timezone.utc)  # the day the tables were written
_ROW = re.compile(r"^\| `([^`]+)`[^|]* \| (.*) \|$")
_CODE = re.compile(r"`([^`]*)`")


def doc_rows() -> list[tuple[str, list[str], bool]]:
    """(what you send, the lines the bot answers, whether more lines may follow) for each table row."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        you, bot = match.groups()
        parts = [part.strip() for part in bot.split(" / ")]
        lines = [_CODE.match(part)[1] for part in parts if _CODE.match(part)]
        more = any(part.startswith("...") for part in parts)
        rows.append((you, lines, more))
    return rows


def matches(expected: list[str], more: bool, reply: str) -> bool:
    got = reply.split("\n")
    if len(got) < len(expected) or (not more and len(got) != len(expected)):
        return False
    return all(g.startswith(e[:-3]) if e.endswith("...") else g == e for e, g in zip(expected, got))


def test_the_doc_has_a_conversation():
    assert len(doc_rows()) >= 30


def test_every_reply_in_the_chat_doc_is_what_the_bot_answers(tmp_path, graph, open_service):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, replay_interval=0.05, now=lambda: NOW,
                           reply_backoff=(0, 0, 0))
    client = Client(service)
    wrong = []
    for n, (you, lines, more) in enumerate(doc_rows()):
        ms = int(NOW.timestamp() * 1000) + n * 1000
        event = {"sender": {"id": "42"}, "recipient": {"id": "1"}, "timestamp": ms,
                 "message": {"mid": f"m_doc_{n}", "text": you}}
        sent_before = len(graph.requests)
        assert client.post_webhook(delivery(event)).status == 200
        # No reply to this row is a wrong reply, not the previous row's reply read again.
        reply = graph.requests[-1]["json"]["message"].get("text", "") if len(graph.requests) > sent_before else ""
        if lines and not matches(lines, more, reply):
            wrong.append(f"{you!r}: the doc says {' / '.join(lines)!r}{' ...' if more else ''}, "
                         f"the bot answers {reply!r}")
    assert not wrong, "\n".join(wrong)


def test_the_documented_demo_line_replays_the_first_table_on_any_day(tmp_path):
    """What CHAT.md tells a reader to run: the demo, its clock at the tables' moment."""
    import subprocess
    import sys

    rows = doc_rows()[:6]  # the first table: expenses, a currency word asked about, a line not split
    says = [word for you, _, _ in rows for word in ("--say", you)]
    result = subprocess.run([sys.executable, str(DOC.parent.parent / "run.py"), "demo", "--at", "2026-11-29T08:00:00Z",
                             "--db", str(tmp_path / "chat.db"), *says], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    replies = [block.split("\n     [")[0].replace("\n     ", "\n") for block in result.stdout.split("bot> ")[1:]]
    replies = [reply.split("\nyou> ")[0].rstrip("\n") for reply in replies]
    assert [matches(lines, more, reply) for (_, lines, more), reply in zip(rows, replies)] == [True] * len(rows)
