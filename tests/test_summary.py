"""Summaries come from the rows: GET /summary equals SQL sums for every period, in EXPENSEBOT_TZ."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zoneinfo

import pytest
from conftest import OPS_TOKEN, Client, delivery, make_config, message_event, psid_hash
from hypothesis import given, settings
from hypothesis import strategies as st

from expensebot import db, store, times
from expensebot.chat.periods import Period
from expensebot.summary import summarize
from expensebot.times import ms_from_iso

# Asia/Manila is UTC+8: its days, weeks and months start at 16:00 UTC the day before.
NOW = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc)  # Wednesday 2 December, 09:00 in Manila
EXPENSES = [  # (UTC time, text)
    ("2025-12-31T15:59:00.000Z", "old 1"),            # 2025-12-31 23:59 Manila: last year
    ("2025-12-31T16:00:00.000Z", "newyear 2"),         # 2026-01-01 00:00 Manila: this year
    ("2026-11-29T15:59:00.000Z", "sunday 4 #food"),    # Sunday 29 Nov 23:59: last week
    ("2026-11-29T16:00:00.000Z", "monday 8 #food"),    # Monday 30 Nov 00:00: this week, still November
    ("2026-11-30T15:59:00.000Z", "lateNov 16 EUR"),    # Monday 30 Nov 23:59: this week, not this month
    ("2026-11-30T16:00:00.000Z", "dec1 32 #travel"),   # Tuesday 1 Dec 00:00: this month
    ("2026-12-01T16:30:00.000Z", "today1 64 #food"),   # Wednesday 2 Dec 00:30: today
    ("2026-12-02T00:59:00.000Z", "today2 1,50 EUR"),   # Wednesday 2 Dec 08:59: today
    ("2026-12-02T16:00:00.000Z", "thursday 128"),      # Thursday 3 Dec: this week and month, not today
]
BOUNDS = {  # the periods' [start, end) in UTC, written out by hand
    "today": ("2026-12-01T16:00:00.000Z", "2026-12-02T16:00:00.000Z"),
    "week": ("2026-11-29T16:00:00.000Z", "2026-12-06T16:00:00.000Z"),
    "month": ("2026-11-30T16:00:00.000Z", "2026-12-31T16:00:00.000Z"),
    "year": ("2025-12-31T16:00:00.000Z", "2026-12-31T16:00:00.000Z"),
    "all": ("", "~"),
}


@pytest.fixture
def manila(tmp_path, open_service):
    config = make_config(tmp_path, tz="Asia/Manila")
    service = open_service(config, now=lambda: NOW)
    client = Client(service)
    for n, (when, text) in enumerate(EXPENSES):
        client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=ms_from_iso(when))))
    client.post_webhook(delivery(message_event("222", "m_other", "someone else 1000", timestamp=ms_from_iso(NOW.isoformat()))))
    return service, client


def sql_totals(db_path, psid_hash_, start, end) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        return {currency: (total, count) for currency, total, count in conn.execute(
            "SELECT currency, SUM(amount_minor), COUNT(*) FROM expenses"
            " WHERE psid_hash = ? AND occurred_at >= ? AND occurred_at < ? GROUP BY currency",
            (psid_hash_, start, end))}
    finally:
        conn.close()


@pytest.mark.parametrize("period", list(BOUNDS))
def test_summary_route_equals_sql_sums_for_every_period(manila, period):
    service, client = manila
    h = psid_hash("111")
    response = client.get(f"/summary?psid_hash={h}&period={period}", token=OPS_TOKEN)
    assert response.status == 200
    body = response.json()
    got = {currency: (t["total_minor"], t["count"]) for currency, t in body["currencies"].items()}
    assert got == sql_totals(service.config.db_path, h, *BOUNDS[period])
    assert got  # every period holds something, so the comparison means something
    start, end = BOUNDS[period]
    assert (body["from"], body["to"]) == ((start, end) if period != "all" else (None, None))


def test_expected_figures_by_hand(manila):
    _, client = manila
    h = psid_hash("111")

    def totals(period):
        body = client.get(f"/summary?psid_hash={h}&period={period}", token=OPS_TOKEN).json()
        return {c: t["total_minor"] for c, t in body["currencies"].items()}
    assert totals("today") == {"USD": 6400, "EUR": 150}
    assert totals("week") == {"USD": 800 + 3200 + 6400 + 12800, "EUR": 1600 + 150}
    assert totals("month") == {"USD": 3200 + 6400 + 12800, "EUR": 150}
    assert totals("year")["USD"] == 200 + 400 + 800 + 3200 + 6400 + 12800
    assert totals("all")["USD"] == 100 + 200 + 400 + 800 + 3200 + 6400 + 12800


def test_categories_are_summed_per_currency(manila):
    _, client = manila
    body = client.get(f"/summary?psid_hash={psid_hash('111')}&period=week", token=OPS_TOKEN).json()
    assert body["currencies"]["USD"]["categories"] == {
        "uncategorized": {"total_minor": 12800, "count": 1},
        "food": {"total_minor": 7200, "count": 2},
        "travel": {"total_minor": 3200, "count": 1},
    }


@pytest.mark.parametrize("query, status", [
    (f"psid_hash={'a' * 64}&period=decade", 400),
    ("psid_hash=nope&period=week", 400),
    (f"psid_hash={'a' * 64}", 200),
])
def test_summary_route_validates_its_input(manila, query, status):
    _, client = manila
    assert client.get(f"/summary?{query}", token=OPS_TOKEN).status == status


def test_summary_route_needs_the_ops_token(manila):
    _, client = manila
    assert client.get(f"/summary?psid_hash={'a' * 64}&period=all").status == 401
    assert client.get(f"/summary?psid_hash={'a' * 64}&period=all", token="wrong").status == 401


# Periods written after "summary" or in a question, on Wednesday 2 December 2026 (NOW in Manila).
@pytest.mark.parametrize("words, label, start, end", [
    ("2026", "2026", "2025-12-31T16:00:00.000Z", "2026-12-31T16:00:00.000Z"),
    ("november", "November 2026", "2026-10-31T16:00:00.000Z", "2026-11-30T16:00:00.000Z"),
    ("2026-11", "November 2026", "2026-10-31T16:00:00.000Z", "2026-11-30T16:00:00.000Z"),
    ("dec 2025", "December 2025", "2025-11-30T16:00:00.000Z", "2025-12-31T16:00:00.000Z"),
    ("last 7 days", "Last 7 days", "2026-11-25T16:00:00.000Z", "2026-12-02T16:00:00.000Z"),
    ("last month", "Last month", "2026-10-31T16:00:00.000Z", "2026-11-30T16:00:00.000Z"),
    ("last week", "Last week", "2026-11-22T16:00:00.000Z", "2026-11-29T16:00:00.000Z"),
    ("yesterday", "Yesterday", "2026-11-30T16:00:00.000Z", "2026-12-01T16:00:00.000Z"),
    ("2026-11-29", "2026-11-29", "2026-11-28T16:00:00.000Z", "2026-11-29T16:00:00.000Z"),
])
def test_written_periods_are_local_days(words, label, start, end):
    from zoneinfo import ZoneInfo

    from expensebot.chat.meaning import read_period
    period = read_period(words.split(), dt.date(2026, 12, 2))
    assert (period.label, *period.bounds(ZoneInfo("Asia/Manila"))) == (label, start, end)


@pytest.mark.parametrize("words", ["12", "last 0 days", "last 4000 days", "2026-13", "2026-02-30", "decade", "1066"])
def test_words_that_name_no_period(words):
    from expensebot.chat.meaning import read_period
    assert read_period(words.split(), dt.date(2026, 12, 2)) is None


def test_a_written_period_sums_the_same_rows_as_sql(manila):
    from expensebot.chat.meaning import read_period
    service, _ = manila
    h = psid_hash("111")
    period = read_period(["november"], dt.date(2026, 12, 2))
    conn = sqlite3.connect(service.config.db_path)
    conn.row_factory = sqlite3.Row
    try:
        computed = summarize(conn, h, period, NOW, service.config.defaults)
    finally:
        conn.close()
    got = {t.currency: (t.total_minor, t.count) for t in computed.currencies}
    assert got == sql_totals(service.config.db_path, h, "2026-10-31T16:00:00.000Z", "2026-11-30T16:00:00.000Z")
    assert got == {"USD": (1200, 2), "EUR": (1600, 1)}


def test_get_summary_uses_the_persons_own_zone(manila):
    service, client = manila
    h = psid_hash("111")
    client.post_webhook(delivery(message_event("111", "m_tz", "timezone UTC", timestamp=ms_from_iso(NOW.isoformat()))))
    body = client.get(f"/summary?psid_hash={h}&period=today", token=OPS_TOKEN).json()
    # 2 December in UTC: today1 (16:30 UTC on 1 December) is no longer today, thursday (16:00 UTC) is
    assert (body["from"], body["to"]) == ("2026-12-02T00:00:00.000Z", "2026-12-03T00:00:00.000Z")
    assert {c: t["total_minor"] for c, t in body["currencies"].items()} == {"EUR": 150, "USD": 12800}


# --- the per-day sums kept beside the rows add up to the rows themselves -------------------------------

DAYS = st.integers(0, 9).map(lambda n: dt.datetime(2026, 3, 25, tzinfo=dt.timezone.utc) + dt.timedelta(days=n))
MOMENT = st.builds(lambda day, minute: day + dt.timedelta(minutes=minute), DAYS, st.integers(0, 24 * 60 - 1))
ROW = st.tuples(MOMENT, st.sampled_from(["USD", "EUR"]), st.sampled_from([None, "food", "travel"]),
                st.integers(1, 10_000))
CHANGE = st.one_of(st.tuples(st.just("delete"), st.integers(0, 30)),
                   st.tuples(st.just("move"), st.integers(0, 30), MOMENT),
                   st.tuples(st.just("categorize"), st.integers(0, 30), st.sampled_from(["fun", None])),
                   st.tuples(st.just("convert"), st.integers(0, 30), st.sampled_from(["EUR", "USD", None]),
                             st.one_of(st.none(), st.integers(1, 10_000))))
ZONE = st.sampled_from(["UTC", "Asia/Manila", "America/St_Johns", "Asia/Kathmandu", "Europe/Berlin"])


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(ROW, max_size=30), changes=st.lists(CHANGE, max_size=8), zone=ZONE,
       first=st.integers(0, 10), length=st.integers(0, 10), named=st.sampled_from(["span", "all"]))
def test_period_totals_equal_the_sums_of_the_rows_through_inserts_deletes_and_updates(
        tmp_path_factory, rows, changes, zone, first, length, named):
    path = tmp_path_factory.mktemp("days") / "x.db"
    db.init(path)
    conn = db.connect(path)
    try:
        conn.executemany(
            "INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description, category,"
            " occurred_at, created_at) VALUES (?, 'p', 'm', 0, ?, ?, 'x', ?, ?, 'now')",
            [(n, amount, currency, category, times.iso_from_datetime(moment))
             for n, (moment, currency, category, amount) in enumerate(rows)])
        for change in changes:
            if change[0] == "delete":
                conn.execute("DELETE FROM expenses WHERE message_id = ?", (change[1],))
            elif change[0] == "move":
                conn.execute("UPDATE expenses SET occurred_at = ? WHERE message_id = ?",
                             (times.iso_from_datetime(change[2]), change[1]))
            elif change[0] == "categorize":
                conn.execute("UPDATE expenses SET category = ? WHERE message_id = ?", (change[2], change[1]))
            else:  # a conversion made, changed or taken back (a new currency, a rate that came)
                conn.execute("UPDATE expenses SET converted_currency = ?, converted_minor = ? WHERE message_id = ?",
                             (change[2], change[3] if change[2] else None, change[1]))
        local = zoneinfo.ZoneInfo(zone)
        start_day = dt.date(2026, 3, 24) + dt.timedelta(days=first)
        period = Period("span", "span", start_day, start_day + dt.timedelta(days=length)) if named == "span" \
            else Period("all", "All time", None, None)
        start, end = period.bounds(local)
        naive = conn.execute(
            "SELECT currency, category, coalesce(converted_currency, ''), sum(amount_minor), count(*),"
            " sum(coalesce(converted_minor, 0)), count(converted_minor) FROM expenses"
            " WHERE psid_hash = 'p' AND occurred_at >= ? AND occurred_at < ? GROUP BY 1, 2, 3",
            (start or "", end or "~")).fetchall()
        assert sorted(map(tuple, store.category_totals(conn, "p", start, end)), key=str) == sorted(map(tuple, naive), key=str)
    finally:
        conn.close()
