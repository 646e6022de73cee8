"""docs/CHAT.md's tables are one conversation: each `you` line is sent, in order, through the real app,
and each reply must be what the table says the bot answers."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from conftest import Client, delivery, make_config, query, wait_for

DOC = Path(__file__).resolve().parent.parent / "docs" / "CHAT.md"
NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.timezone.utc)  # the day the tables were written
TRIP_HEADING = "\n## Other currencies: a trip abroad\n"
TRIP_NOW = dt.datetime(2026, 10, 30, 20, 0, tzinfo=dt.timezone.utc)  # within the packaged ECB history
_ROW = re.compile(r"^\| `([^`]+)`[^|]* \| (.*) \|$")
_CODE = re.compile(r"`([^`]*)`")


def doc_rows(trip: bool = False) -> list[tuple[str, list[str], bool]]:
    """(what you send, the lines the bot answers, whether more lines may follow) for each table row:
    of the main conversation, or of the trip abroad (the last section, a conversation of its own)."""
    rows = []
    text = DOC.read_text(encoding="utf-8").split(TRIP_HEADING)[1 if trip else 0]
    for line in text.splitlines():
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


@pytest.mark.parametrize("trip", [False, True], ids=["conversation", "trip-abroad"])
def test_every_reply_in_the_chat_doc_is_what_the_bot_answers(tmp_path, graph, ecb, open_service, trip):
    now = TRIP_NOW if trip else NOW
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05, now=lambda: now,
                           reply_backoff=(0, 0, 0))
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)  # as the demo
    client = Client(service)
    wrong = []
    for n, (you, lines, more) in enumerate(doc_rows(trip)):
        ms = int(now.timestamp() * 1000) + n * 1000
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


@pytest.mark.parametrize("trip", [False, True], ids=["first-table", "trip-abroad"])
def test_the_documented_demo_line_replays_the_first_table_on_any_day(tmp_path, trip):
    """What CHAT.md tells a reader to run: the demo, its clock at the tables' moment."""
    import subprocess
    import sys

    # The first table (expenses, a currency word asked about, a line not split), or the trip abroad.
    rows = doc_rows(trip) if trip else doc_rows()[:6]
    says = [word for you, _, _ in rows for word in ("--say", you)]
    at = f"{(TRIP_NOW if trip else NOW):%Y-%m-%dT%H:%M:%SZ}"
    assert f"run.py demo --at {at} --db" in DOC.read_text(encoding="utf-8")
    result = subprocess.run([sys.executable, str(DOC.parent.parent / "run.py"), "demo", "--at", at,
                             "--db", str(tmp_path / "chat.db"), *says], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    replies = [block.split("\n     [")[0].replace("\n     ", "\n") for block in result.stdout.split("bot> ")[1:]]
    replies = [reply.split("\nyou> ")[0].rstrip("\n") for reply in replies]
    assert [matches(lines, more, reply) for (_, lines, more), reply in zip(rows, replies)] == [True] * len(rows)
