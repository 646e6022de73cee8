"""Exchange rates: the ECB's files read defensively, the rule of invariant 10, and the background refresh."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import sqlite3
import time
import zipfile
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from conftest import OPS_TOKEN, ROOT, Client, delivery, make_config, message_event, psid_hash, query, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standins import ScriptedEcb

from expensebot import db, money, rates, store
from expensebot.background import exchange
from expensebot.ops.ecb import daily_xml, packaged_history
from expensebot.web import export

HISTORY = packaged_history()
FOUND = rates.parse_history(HISTORY)
NEWEST = max(day for day, _, _ in FOUND)  # the packaged file's last day (2026-10-30 in 0.18.23)
# Currencies a person can keep their money in and the ECB publishes (some only in some years).
CONVERTIBLE = sorted(c for c in rates.ECB_CURRENCIES if money.is_currency(c))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A database holding the ECB's whole history, as a first start leaves it."""
    path = tmp_path_factory.mktemp("rates") / "rates.db"
    database = db.Database(path).open()
    with database.transaction() as conn:
        rates.keep(conn, FOUND)
    return database


# ---- the files -----------------------------------------------------------------------------------

def test_the_history_is_read_as_the_ecb_publishes_it():
    table = {(day, currency): per_eur for day, currency, per_eur in FOUND}
    first = zipfile.ZipFile(io.BytesIO(HISTORY)).read("eurofxref-hist.csv").decode().splitlines()
    header, newest = first[0].split(","), first[1].split(",")
    assert header[0] == "Date" and header[-1] == ""  # the ECB's trailing comma
    for currency, cell in zip(header[1:-1], newest[1:-1]):
        assert table.get((newest[0], currency)) == (None if cell == "N/A" else cell)
    assert ("1999-01-04", "USD") in table and ("1999-01-04", "BGN") not in table  # N/A then
    assert ("2026-10-30", "RUB") not in table  # no longer published


def test_the_90_day_xml_reads_back_to_the_same_rows():
    recent = [row for row in FOUND if row[0] >= "2026-08-01"]
    assert sorted(rates.parse_daily(daily_xml(recent))) == sorted(recent)


@pytest.mark.parametrize("body, reason", [
    (HISTORY[: len(HISTORY) // 2], "not a readable zip"),
    (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "not a readable zip"),
    (b"", "not a readable zip"),
])
def test_a_broken_history_file_is_refused_whole(body, reason):
    with pytest.raises(rates.RatesError, match=reason):
        rates.parse_history(body)


def zipped(text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("eurofxref-hist.csv", text)
    return out.getvalue()


@pytest.mark.parametrize("text, reason", [
    ("Day,USD,\n2026-10-30,1.1,\n", "Date column"),
    ("Date,USD,\n2026-10-30,1.1,\n2026-10-29,-1,\n", "bad value"),
    ("Date,USD,\n2026-10-30,1.1,\n2026-13-29,1.2,\n", "bad value"),
    ("Date,USD,\n2026-10-30,NaN,\n", "bad value"),
    ("Date,USD,\n2026-10-30,N/A,\n", "no rates"),
])
def test_a_history_with_one_bad_cell_is_refused_whole(text, reason):
    with pytest.raises(rates.RatesError, match=reason):
        rates.parse_history(zipped(text))


@pytest.mark.parametrize("body", [b"<html><body>error</body>", b"<gesmes:Envelope><Cube>", b"",
                                  b"<?xml version='1.0'?><x/>"])
def test_a_broken_daily_file_is_refused_whole(body):
    with pytest.raises(rates.RatesError):
        rates.parse_daily(body)


def test_target_holidays_are_the_ecbs_closing_days():
    published = {dt.date.fromisoformat(day) for day, _, _ in FOUND if day >= "2002-01-01"}
    every_day = (dt.date(2002, 1, 1) + dt.timedelta(days=n) for n in range((dt.date.fromisoformat(NEWEST)
                                                                           - dt.date(2002, 1, 1)).days + 1))
    working = {day for day in every_day if rates._last_working_day(day) == day}
    assert published <= working  # the ECB never published on a day the rule calls closed
    assert len(working - published) < 10  # and missed hardly any it calls open


# ---- the rule, against an implementation written here -------------------------------------------

def by_the_rule(amount_minor: int, currency: str, target: str, day: dt.date) -> tuple[int, str] | None:
    """Invariant 10 as SPEC states it, in Decimal with 60 digits, straight from the CSV."""
    table = TABLE
    days = [d for d in DAYS if d <= day.isoformat()]
    if not days:
        return None
    rate_day = days[-1]
    per_eur = {**table.get(rate_day, {}), "EUR": "1"}
    if currency not in per_eur or target not in per_eur:
        return None
    with localcontext() as context:
        context.prec = 60
        amount = Decimal(amount_minor).scaleb(-money.minor_digits(currency))
        value = amount * Decimal(per_eur[target]) / Decimal(per_eur[currency])
        minor = value.quantize(Decimal(1).scaleb(-money.minor_digits(target)), rounding=ROUND_HALF_EVEN)
    return int(minor.scaleb(money.minor_digits(target))), rate_day


TABLE: dict[str, dict[str, str]] = {}
with io.StringIO(zipfile.ZipFile(io.BytesIO(HISTORY)).read("eurofxref-hist.csv").decode()) as text:
    for row in csv.DictReader(text):
        TABLE[row["Date"]] = {c: v for c, v in row.items() if c and c != "Date" and v not in ("N/A", "")}
DAYS = sorted(TABLE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(1, 10**12), currency=st.sampled_from(CONVERTIBLE), target=st.sampled_from(CONVERTIBLE),
       day=st.dates(dt.date(1998, 12, 25), dt.date.fromisoformat(NEWEST)))
def test_every_conversion_equals_the_rule_written_independently(loaded, amount, currency, target, day):
    with loaded.connection() as conn:
        conversion = rates.convert(conn, amount, currency, target, day, today=dt.date.fromisoformat(NEWEST))
    if currency == target:
        assert (conversion.minor, conversion.source) == (amount, rates.SAME)
        return
    expected = by_the_rule(amount, currency, target, day)
    if expected is None:
        assert (conversion.minor, conversion.source) == (None, rates.NONE)
    else:
        assert (conversion.minor, conversion.day, conversion.source) == (*expected, rates.ECB)


def test_weekends_and_holidays_take_the_last_published_day(loaded):
    with loaded.connection() as conn:
        saturday = rates.convert(conn, 10000, "USD", "EUR", dt.date(2026, 10, 24), dt.date(2026, 10, 30))
        christmas = rates.convert(conn, 10000, "USD", "EUR", dt.date(2025, 12, 26), dt.date(2026, 10, 30))
    assert saturday.day == "2026-10-23" and christmas.day == "2025-12-24"


def test_an_expense_newer_than_the_rates_waits_and_todays_may_stand_provisionally(loaded):
    newest = dt.date.fromisoformat(NEWEST)  # a Friday
    monday = newest + dt.timedelta(days=3)
    with loaded.connection() as conn:
        assert rates.convert(conn, 500, "JPY", "EUR", monday, today=monday).source == rates.PROVISIONAL
        assert rates.convert(conn, 500, "JPY", "EUR", monday, today=monday).day == NEWEST
        assert rates.convert(conn, 500, "JPY", "EUR", monday, today=monday + dt.timedelta(days=1)).pending
        assert rates.convert(conn, 500, "JPY", "EUR", monday + dt.timedelta(days=1),
                             today=monday + dt.timedelta(days=1)).pending  # Monday's rate is missing
        sunday = newest + dt.timedelta(days=2)
        assert rates.convert(conn, 500, "JPY", "EUR", sunday, today=monday).source == rates.ECB  # Friday's, final


def test_a_currency_the_ecb_never_publishes_is_never_converted(loaded):
    with loaded.connection() as conn:
        for currency, target in (("VND", "EUR"), ("EUR", "TWD"), ("AED", "USD")):
            conversion = rates.convert(conn, 100000, currency, target, dt.date(2026, 10, 1), dt.date(2026, 10, 30))
            assert (conversion.minor, conversion.source) == (None, rates.NONE)


def test_no_rates_yet_means_waiting_never_one_to_one(tmp_path):
    database = db.Database(tmp_path / "empty.db").open()
    with database.connection() as conn:
        assert rates.convert(conn, 500, "JPY", "EUR", dt.date(2026, 10, 1), dt.date(2026, 10, 30)).pending


# ---- the bot: first start, refresh, conversion on the write and in the background ---------------

NOW = dt.datetime(2026, 10, 30, 20, 0, tzinfo=dt.timezone.utc)  # after that day's publication
T_NOW = int(NOW.timestamp() * 1000)


def open_bot(tmp_path, open_service, ecb, now=NOW, **config):
    values = {"currency": "EUR", "rates_url": ecb.url, **config}
    return open_service(make_config(tmp_path, **values), replay_interval=0.05, now=lambda: now)


def conversions(service):
    return query(service, "SELECT description, amount_minor, currency, converted_minor, converted_currency, rate_day,"
                          " rate_source FROM expenses ORDER BY id")


def test_first_start_loads_the_whole_history_then_refreshes_90_days(tmp_path, open_service, ecb, caplog):
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") == [(len(FOUND),)], 30)
    [loaded] = [r.fields for r in caplog.records if r.getMessage() == "rates_loaded"]
    assert loaded["newest"] == NEWEST and loaded["count"] == len(FOUND) and loaded["file"] == "eurofxref-hist.zip"
    service.close()
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: ecb.requests[-1].endswith("eurofxref-hist-90d.xml"), 10)
    assert wait_for(lambda: query(service, "SELECT outcome FROM rate_refreshes ORDER BY id DESC LIMIT 1") == [("ok",)])


def test_an_expense_in_another_currency_is_converted_on_the_write(tmp_path, open_service, ecb):
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY 2026-10-29", timestamp=T_NOW),
                                          message_event("111", "m_2", "pho 100000 VND", timestamp=T_NOW + 1),
                                          message_event("111", "m_3", "coffee 3", timestamp=T_NOW + 2)))
    expected, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 29))
    assert conversions(service) == [("sushi", 500, "JPY", expected, "EUR", "2026-10-29", "ecb"),
                                    ("pho", 100000, "VND", None, "EUR", None, "none"),
                                    ("coffee", 300, "EUR", 300, "EUR", None, "same")]


@pytest.mark.parametrize("how", ["down", "hang", "truncated", "html"])
def test_a_failed_first_load_changes_nothing_and_expenses_wait_then_convert(tmp_path, open_service, ecb, caplog,
                                                                          monkeypatch, how):
    monkeypatch.setitem(exchange.DEADLINE, exchange.HISTORY, 1.0)  # a hanging ECB is given up on sooner
    ecb.behave(how)
    service = open_bot(tmp_path, open_service, ecb)
    client = Client(service)
    started = time.monotonic()
    client.post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY 2026-10-29", timestamp=T_NOW)))
    assert time.monotonic() - started < 1.0  # the webhook never waits for the rates
    assert conversions(service)[0][3:] == (None, None, None, None)  # waiting: never 1:1
    assert wait_for(lambda: any(r.getMessage() == "rates_failed" for r in caplog.records), 10)
    assert query(service, "SELECT count(*) FROM rates") == [(0,)]
    assert query(service, "SELECT outcome LIKE 'failed: %' FROM rate_refreshes") == [(1,)]
    monkeypatch.setitem(exchange.DEADLINE, exchange.HISTORY, 60.0)  # the retry, with the time a busy machine needs
    service.exchange.next_fetch = 0  # the backoff's retry, brought forward
    service.exchange.wake()
    expected, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 29))
    assert wait_for(lambda: conversions(service)[0][3] == expected, 30)


def test_a_rate_published_later_converts_what_waited(tmp_path, open_service, ecb, caplog):
    monday = dt.datetime(2026, 11, 2, 20, 0, tzinfo=dt.timezone.utc)
    service = open_bot(tmp_path, open_service, ecb, now=monday)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    sent = int(monday.timestamp() * 1000)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY", timestamp=sent)))
    # Monday evening, Monday's rate not in yet: Friday's stands in, marked provisional.
    assert conversions(service)[0][5:] == (NEWEST, "ecb-provisional")
    ecb.publish([("2026-11-02", "JPY", "180"), ("2026-11-02", "USD", "1.2")])  # test values, not the ECB's
    service.exchange.next_fetch = 0
    service.exchange.wake()
    assert wait_for(lambda: conversions(service)[0][3:] == (278, "EUR", "2026-11-02", "ecb"), 10)  # 500/180


def test_a_new_currency_converts_every_expense_again(tmp_path, open_service, ecb):
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    client.post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY 2026-10-29", timestamp=T_NOW),
                                 message_event("111", "m_2", "coffee 3", timestamp=T_NOW + 1)))
    client.post_webhook(delivery(message_event("111", "m_3", "currency USD", timestamp=T_NOW + 2)))
    sushi, _ = by_the_rule(500, "JPY", "USD", dt.date(2026, 10, 29))
    coffee, _ = by_the_rule(300, "EUR", "USD", dt.date(2026, 10, 30))
    assert wait_for(lambda: [row[3:5] for row in conversions(service)] == [(sushi, "USD"), (coffee, "USD")], 10)


def test_the_per_day_sums_follow_every_conversion(tmp_path, open_service, ecb):
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    for n, text in enumerate(["sushi 500 JPY", "tea 3 USD", "pho 100000 VND", "currency USD", "bus 2 GBP", "undo"]):
        client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=T_NOW + n)))
    wait_for(lambda: query(service, "SELECT count(*) FROM expenses WHERE rate_source IS NULL") == [(0,)], 10)
    by_rows = query(service, "SELECT currency, coalesce(converted_currency, ''), sum(amount_minor),"
                             " sum(coalesce(converted_minor, 0)), count(converted_minor) FROM expenses GROUP BY 1, 2")
    by_days = query(service, "SELECT currency, converted_currency, sum(total_minor), sum(converted_minor),"
                             " sum(converted_count) FROM expense_days GROUP BY 1, 2")
    assert by_rows == by_days and len(by_rows) == 3


def test_the_first_releases_files_are_upgraded_and_then_converted(tmp_path, open_service, ecb):
    path = tmp_path / "expensebot.db"
    conn = sqlite3.connect(path)
    conn.executescript((ROOT / "tests" / "data" / "schema-v1.sql").read_text())  # 0.1.0's
    conn.executescript(f"""
        PRAGMA user_version = 1;
        INSERT INTO messages_raw VALUES (1, '{psid_hash("111")}', 'm_1', '2026-10-29T10:00:00.000Z',
                                         '2026-10-29T10:00:00.000Z', 'message', 'sushi 500 JPY', 0, '{{}}');
        INSERT INTO expenses VALUES (1, 1, '{psid_hash("111")}', 'm_1', 0, 500, 'JPY', 'sushi', NULL, NULL,
                                     '2026-10-29T10:00:00.000Z', '2026-10-29T10:00:00.000Z');
    """)
    conn.commit()
    conn.close()
    service = open_bot(tmp_path, open_service, ecb)
    assert query(service, "PRAGMA user_version") == [(db.SCHEMA_VERSION,)]
    expected, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 29))
    assert wait_for(lambda: conversions(service)[0][3:5] == (expected, "EUR"), 30)
    assert query(service, "SELECT total_minor, converted_minor FROM expense_days") == [(500, expected)]


def test_rates_off_never_fetches(tmp_path, open_service, ecb, caplog):
    service = open_service(make_config(tmp_path, rates_url="off"), replay_interval=0.05)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY")))
    time.sleep(0.2)
    assert ecb.requests == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_trip_abroad_end_to_end(tmp_path, graph, ecb, open_service):
    """Replies, summary, GET /summary and the CSV all show one converted total, from the rows."""
    service = open_bot(tmp_path, open_service, ecb, fb_page_access_token="test-page-token", fb_graph_url=graph.url)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    texts = ["coffee 3", "sushi 500 JPY", "taxi 2000 yen 2026-10-25", "pho 100000 VND", "summary"]
    for n, text in enumerate(texts):
        client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=T_NOW + n)))
    sushi, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 30))
    taxi, _ = by_the_rule(2000, "JPY", "EUR", dt.date(2026, 10, 23))  # a Sunday: Friday's rate
    replies = graph.texts
    assert replies[1].startswith(f"sushi — 500 JPY ≈ {money.format_amount(sushi, 'EUR')} (ECB 2026-10-30), today")
    assert replies[2].startswith(f"taxi — 2000 JPY ≈ {money.format_amount(taxi, 'EUR')} (ECB 2026-10-23), 2026-10-25")
    assert replies[3].startswith("pho — 100000 VND (no ECB rate for it: not converted), today")
    total = 300 + sushi + taxi
    assert f"≈ {money.format_amount(total, 'EUR')} in all (3 expenses at the ECB rate of their day)" in replies[4]
    assert "VND is not in the total: the ECB publishes no rate for it." in replies[4]
    body = client.get(f"/summary?psid_hash={psid_hash('111')}&period=month", token=OPS_TOKEN).json()
    assert body["converted"] == {"currency": "EUR", "total_minor": total, "count": 3, "pending": 0,
                                 "unconverted": ["VND"], "at_own_rate": 0, "own_rate_only": []}
    with service.db.connection() as conn:
        text = "".join(export.expense_chunks(store.expenses_of(conn, psid_hash("111"))))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(row["converted_minor"] or 0) for row in rows) == total
    assert [row["rate_source"] for row in rows] == ["ecb", "same", "ecb", "none"]  # by when they were spent


def test_a_new_currency_shows_every_total_in_it(tmp_path, graph, ecb, open_service):
    service = open_bot(tmp_path, open_service, ecb, fb_page_access_token="test-page-token", fb_graph_url=graph.url)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    for n, text in enumerate(["coffee 3", "sushi 500 JPY", "currency USD"]):
        client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=T_NOW + n)))
    assert wait_for(lambda: query(service, "SELECT count(*) FROM expenses WHERE converted_currency = 'USD'") == [(2,)])
    client.post_webhook(delivery(message_event("111", "m_9", "summary", timestamp=T_NOW + 9)))
    coffee, _ = by_the_rule(300, "EUR", "USD", dt.date(2026, 10, 30))
    sushi, _ = by_the_rule(500, "JPY", "USD", dt.date(2026, 10, 30))
    assert f"≈ {money.format_amount(coffee + sushi, 'USD')} in all (2 expenses" in graph.texts[-1]


def test_a_new_default_currency_converts_the_expenses_of_everyone_in_it(tmp_path, open_service, ecb, caplog):
    service = open_bot(tmp_path, open_service, ecb)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    client.post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY", timestamp=T_NOW),
                                 message_event("222", "m_2", "currency GBP", timestamp=T_NOW),
                                 message_event("222", "m_3", "tea 3 EUR", timestamp=T_NOW + 1)))
    service.close()
    service = open_bot(tmp_path, open_service, ecb, currency="USD")  # EXPENSEBOT_CURRENCY changed
    sushi, _ = by_the_rule(500, "JPY", "USD", dt.date(2026, 10, 30))
    tea, _ = by_the_rule(300, "EUR", "GBP", dt.date(2026, 10, 30))
    assert wait_for(lambda: [row[3:5] for row in conversions(service)] == [(sushi, "USD"), (tea, "GBP")], 10)
    [restarted] = [r.fields for r in caplog.records if r.getMessage() == "conversions_restarted"]
    assert restarted == {"currency": "USD", "expenses": 1}


# ---- a person's own rate: 'sushi 500 JPY @ 0.0062' ----------------------------------------------

def own_rate_bot(tmp_path, graph, ecb, open_service):
    service = open_bot(tmp_path, open_service, ecb, fb_page_access_token="test-page-token", fb_graph_url=graph.url)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    return service


def send(service, *texts, start=0):
    client = Client(service)
    for n, text in enumerate(texts, start):
        assert client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=T_NOW + n))).status == 200


def stored_rates(service):
    return query(service, "SELECT description, amount_minor, currency, converted_minor, converted_currency, rate,"
                          " rate_day, rate_source FROM expenses ORDER BY id")


def test_a_persons_own_rate_is_stored_said_and_kept(tmp_path, graph, ecb, open_service):
    service = own_rate_bot(tmp_path, graph, ecb, open_service)
    send(service, "sushi 500 JPY @ 0.0062", "taxi 2000 yen 2026-10-25 @ 0,0062", "pho 100000 VND @ 0.000036")
    # 500 × 0.0062 = 3.10 exactly; 2000 × 0.0062 = 12.40; 100000 × 0.000036 = 3.60: each on its own date.
    assert stored_rates(service) == [("sushi", 500, "JPY", 310, "EUR", "0.0062", "2026-10-30", "person"),
                                     ("taxi", 2000, "JPY", 1240, "EUR", "0.0062", "2026-10-25", "person"),
                                     ("pho", 100000, "VND", 360, "EUR", "0.000036", "2026-10-30", "person")]
    assert graph.texts[0].split("\n")[0] == "sushi — 500 JPY ≈ 3.10 EUR (your rate 0.0062), today"
    assert graph.texts[1].split("\n")[0] == "taxi — 2000 JPY ≈ 12.40 EUR (your rate 0.0062), 2026-10-25"
    # The background converts only what waits or is provisional: a refresh leaves the person's rate.
    with service.db.connection() as conn:
        assert store.expenses_to_convert(conn, None, 100) == []
    service.exchange.next_fetch = 0
    service.exchange.wake()
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(2,)], 10)
    assert [row[3:] for row in stored_rates(service)] == [
        (310, "EUR", "0.0062", "2026-10-30", "person"), (1240, "EUR", "0.0062", "2026-10-25", "person"),
        (360, "EUR", "0.000036", "2026-10-30", "person")]


def test_the_summary_adds_a_persons_own_rate_to_the_converted_total(tmp_path, graph, ecb, open_service):
    service = own_rate_bot(tmp_path, graph, ecb, open_service)
    send(service, "coffee 3", "sushi 500 JPY", "ramen 1201 JPY @ 0.0062", "pho 100000 VND @ 0.000036",
         "banh mi 30000 VND", "summary")
    sushi, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 30))
    ramen = 745  # 1201 × 0.0062 = 7.4462: 7.45, rounded once
    total = 300 + sushi + ramen + 360
    assert (f"≈ {money.format_amount(total, 'EUR')} in all (4 expenses: 2 at the ECB rate of their day,"
            " 2 at your own rate)") in graph.texts[-1]
    assert "VND is in the total only at your own rate: the ECB publishes no rate for it." in graph.texts[-1]
    body = Client(service).get(f"/summary?psid_hash={psid_hash('111')}&period=month", token=OPS_TOKEN).json()
    assert body["converted"] == {"currency": "EUR", "total_minor": total, "count": 4, "pending": 0,
                                 "unconverted": ["VND"], "at_own_rate": 2, "own_rate_only": ["VND"]}
    send(service, "how much on food this month?", start=10)
    assert graph.texts[-1].endswith("(3 expenses: 2 at the ECB rate of their day, 1 at your own rate)")


BAD_RATE_REPLY = "Not saved: a rate must be a positive number with at most 12 significant digits and decimals."


@pytest.mark.parametrize("text, reply", [
    ("wine 20 EUR @ 1.1", "Not saved: a rate after @ is for an amount in another currency than yours."),
    ("wine €20 @ 1.1", "Not saved: a rate after @ is for an amount in another currency than yours."),
    ("bento 800 JPY @ 0", BAD_RATE_REPLY),
    ("bento 800 JPY @ 0.0000000000001", BAD_RATE_REPLY),
    ("bento 800 JPY @ -0.006", BAD_RATE_REPLY),
    ("tea 3 EUR bento 800 JPY @ 0.0062", "Not saved: a rate after @ goes on a line with one expense."),
    ("coffee 2 @ 3", "Not saved: I see more than one amount and can't tell which goes with what."),
])
def test_a_rate_that_cant_be_taken_saves_nothing_and_says_why(tmp_path, graph, ecb, open_service, text, reply):
    service = own_rate_bot(tmp_path, graph, ecb, open_service)
    send(service, text)
    assert stored_rates(service) == []
    assert graph.texts[-1].split("\n")[0] == reply


def test_a_new_currency_converts_a_persons_own_rate_again_from_the_ecb(tmp_path, graph, ecb, open_service):
    service = own_rate_bot(tmp_path, graph, ecb, open_service)
    send(service, "sushi 500 JPY @ 0.0062 2026-10-29", "currency USD")
    expected, day = by_the_rule(500, "JPY", "USD", dt.date(2026, 10, 29))
    assert wait_for(lambda: [row[3:5] + row[6:] for row in stored_rates(service)] == [
        (expected, "USD", day, "ecb")], 10)
    assert graph.texts[-1].startswith("Your currency is now USD")


def test_an_edit_reads_the_rate_again(tmp_path, graph, ecb, open_service):
    service = own_rate_bot(tmp_path, graph, ecb, open_service)
    send(service, "sushi 500 JPY @ 0.0062")
    client = Client(service)

    def edit(text, n):
        return {"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": T_NOW + n,
                "message_edit": {"mid": "m_0", "text": text, "num_edit": n}}

    assert client.post_webhook(delivery(edit("sushi 500 JPY @ 0.0064", 1))).status == 200
    assert stored_rates(service) == [("sushi", 500, "JPY", 320, "EUR", "0.0064", "2026-10-30", "person")]
    assert client.post_webhook(delivery(edit("sushi 500 JPY", 2))).status == 200
    sushi, _ = by_the_rule(500, "JPY", "EUR", dt.date(2026, 10, 30))
    assert stored_rates(service) == [("sushi", 500, "JPY", sushi, "EUR", stored_rates(service)[0][5], "2026-10-30",
                                      "ecb")]


# ---- the rule through the app: random expenses over the years, every ECB currency -------------------

@pytest.fixture(scope="module")
def converting_service(tmp_path_factory, open_module_service):
    stand_in = ScriptedEcb()
    config = make_config(tmp_path_factory.mktemp("converting"), rates_url=stand_in.url)
    service = open_module_service(config, replay_interval=0.05, now=lambda: NOW)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    yield service
    stand_in.close()


PEOPLE = iter(range(10**6, 10**7))
AN_EXPENSE = st.tuples(st.integers(1, 10**9), st.sampled_from(CONVERTIBLE + ["VND", "TWD"]),
                       st.dates(dt.date(2004, 1, 1), dt.date.fromisoformat(NEWEST)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(own=st.sampled_from(CONVERTIBLE), spent=st.lists(AN_EXPENSE, min_size=1, max_size=6))
def test_stored_conversions_follow_the_rule_and_the_summary_is_the_sum_of_the_csv(converting_service, own, spent):
    service, person = converting_service, str(next(PEOPLE))
    client = Client(service)
    texts = [f"currency {own}"] + [f"item {money.format_amount(amount, code)} {day}" for amount, code, day in spent]
    for n, text in enumerate(texts):
        client.post_webhook(delivery(message_event(person, f"m_{person}_{n}", text, timestamp=T_NOW + n)))
    rows = query(service, "SELECT amount_minor, currency, converted_minor, rate_day, rate_source FROM expenses"
                          " WHERE psid_hash = ? ORDER BY id", psid_hash(person))
    assert [row[:2] for row in rows] == [(amount, code) for amount, code, _ in spent]
    for (amount, code, day), (_, _, minor, rate_day, source) in zip(spent, rows):
        expected = by_the_rule(amount, code, own, day) if code != own else (amount, None)
        assert (minor, rate_day) == (expected or (None, None)), (amount, code, own, day)
        assert source == ("same" if code == own else "ecb" if expected else "none")
    body = client.get(f"/summary?psid_hash={psid_hash(person)}&period=all", token=OPS_TOKEN).json()
    with service.db.connection() as conn:
        text = "".join(export.expense_chunks(store.expenses_of(conn, psid_hash(person))))
    csv_rows = list(csv.DictReader(io.StringIO(text)))
    assert body["converted"]["total_minor"] == sum(int(row["converted_minor"] or 0) for row in csv_rows)
    assert body["converted"]["pending"] == 0
