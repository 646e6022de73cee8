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
# The monthly digest: a conversation over three months, each row at its own moment ('(sent ...)').
DIGEST_HEADING = "\n## Monthly digest\n"
AWAY_HEADING = "\n## A month away: a catch-up and a digest\n"
RECEIPTS_HEADING = "\n## Receipt photos\n"
_ROW = re.compile(r"^\| `([^`]+)`([^|]*) \| (.*) \|$")
_SENT = re.compile(r"\(sent (\d{4}-\d\d-\d\d \d\d:\d\d) UTC\)")
_CODE = re.compile(r"`([^`]*)`")


def _section(trip: bool | str) -> str:
    """The main conversation, the trip abroad, or the monthly digest (each a conversation of its own)."""
    main, rest = DOC.read_text(encoding="utf-8").split(TRIP_HEADING)
    trip_text, rest = rest.split(DIGEST_HEADING)
    digest, rest = rest.split(AWAY_HEADING)
    away, receipts = rest.split(RECEIPTS_HEADING)
    return {"digest": digest, "away": away, "receipts": receipts}.get(trip) or (trip_text if trip else main)


def row_moments(trip: bool | str, start: dt.datetime) -> list[int]:
    """When each row of a section is sent (ms): the moment its row names, else a second after the one before."""
    moments, at = [], int(start.timestamp() * 1000) - 1000
    for line in _section(trip).splitlines():
        if (match := _ROW.match(line)) is None:
            continue
        sent = _SENT.search(match[2])
        at = int(dt.datetime.fromisoformat(f"{sent[1]}+00:00").timestamp() * 1000) if sent else at + 1000
        moments.append(at)
    return moments


def doc_rows(trip: bool | str = False) -> list[tuple[str, list[str], bool]]:
    """(what you send, the lines the bot answers, whether more lines may follow) for each table row:
    of the main conversation, of the trip abroad, or of the monthly digest ("digest")."""
    rows = []
    for line in _section(trip).splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        you, _, bot = match.groups()
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


@pytest.mark.parametrize("trip", [False, True, "digest"], ids=["conversation", "trip-abroad", "monthly-digest"])
def test_every_reply_in_the_chat_doc_is_what_the_bot_answers(tmp_path, graph, ecb, open_service, trip):
    moments = row_moments(trip, TRIP_NOW if trip is True else NOW)
    clock = [dt.datetime.fromtimestamp(moments[0] / 1000, dt.timezone.utc)]  # the bot's: each row's moment
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05, now=lambda: clock[0],
                           reply_backoff=(0, 0, 0))
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)  # as the demo
    client = Client(service)
    wrong = []
    for n, (you, lines, more) in enumerate(doc_rows(trip)):
        ms = moments[n]
        if trip == "digest":  # months apart: the bot's clock at each message (the others keep the tables' moment)
            clock[0] = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
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


def test_the_month_away_replays_through_the_demo_with_its_clock_moved(tmp_path):
    """The last section: a rule, the clock moved on a month (`/clock`), the catch-up and the digest."""
    import subprocess
    import sys

    rows = doc_rows("away")
    assert "run.py demo --at 2026-10-30T08:00:00Z --db away.db" in _section("away")
    says = [word for you, _, _ in rows for word in ("--say", you)]
    result = subprocess.run([sys.executable, str(DOC.parent.parent / "run.py"), "demo", "--at", "2026-10-30T08:00:00Z",
                             "--db", str(tmp_path / "away.db"), *says], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = []
    for you, lines, _ in rows:
        expected.append(f"you> {you}")
        expected += lines if you.startswith("/clock") else ["bot> " + "\n     ".join(lines)]
    printed = [line for line in result.stdout.splitlines() if not line.startswith("     [")]  # the report button
    assert "\n".join(printed) == "\n".join(expected)


def test_the_receipt_photo_transcript_is_what_the_demo_prints(tmp_path):
    """The receipts section's commands, run as written: the receipt drawn, sent, read and saved."""
    import subprocess
    import sys

    from expensebot.receipts import ocr

    if not ocr.available():
        pytest.skip("the receipts extra is not installed (pip install -e '.[receipts]')")
    section = _section("receipts")
    transcript = section.split("```text\n")[1].split("```")[0]
    root = DOC.parent.parent
    assert ".venv/bin/python tests/receipt_images.py 8 receipt.jpg" in section
    assert ".venv/bin/python run.py demo --photo receipt.jpg --say 1" in section
    subprocess.run([sys.executable, str(root / "tests" / "receipt_images.py"), "8", "receipt.jpg"], cwd=tmp_path,
                   check=True, timeout=60)
    result = subprocess.run([sys.executable, str(root / "run.py"), "demo", "--photo", "receipt.jpg", "--say", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout == transcript
