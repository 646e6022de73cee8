"""Recurring expenses: the rule grammar, each due date made one expense exactly once (through the
real app, on a simulated clock over years in zones far from UTC, and across a `kill -9` in the
middle of a catch-up), told once in the next reply."""

from __future__ import annotations

import calendar
import datetime as dt
import random
import sqlite3
import threading
import time
import zoneinfo

import pytest
from conftest import Client, delivery, make_config, message_event, query, wait_for
from test_crash import post, signed_message

from expensebot.background import schedule
from expensebot.chat import meaning, recurring
from expensebot.settings import Settings

TODAY = dt.date(2026, 11, 29)
NOON = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
USD = Settings(currency="USD", tz="UTC")


def read(text: str, today: dt.date = TODAY) -> meaning.Command | None:
    return meaning.read(text, USD, int(dt.datetime.combine(today, dt.time(12), dt.timezone.utc).timestamp()
                                           * 1000)).command


# ---- the grammar -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, description, amount, currency, period, start, anchor, category", [
    ("rent 1200 monthly", "rent", 120000, "USD", "monthly", TODAY, 29, None),
    ("netflix 15.99 monthly on 15", "netflix", 1599, "USD", "monthly", TODAY, 15, None),
    ("Netflix 15.99 Monthly on 15th", "Netflix", 1599, "USD", "monthly", TODAY, 15, None),
    ("gym 30 weekly", "gym", 3000, "USD", "weekly", TODAY, 29, None),
    ("coffee 3 daily", "coffee", 300, "USD", "daily", TODAY, 29, None),
    ("insurance 400 yearly", "insurance", 40000, "USD", "yearly", TODAY, 29, None),
    ("rent 1200 EUR monthly since 2026-01-31", "rent", 120000, "EUR", "monthly", dt.date(2026, 1, 31), 31, None),
    ("rent 1200 monthly #home since 2025-03-01", "rent", 120000, "USD", "monthly", dt.date(2025, 3, 1), 1, "home"),
    ("spotify €9.99 monthly on 31 since 2026-01-01", "spotify", 999, "EUR", "monthly", dt.date(2026, 1, 1), 31, None),
])
def test_a_rule_line_is_read_as_said(text, description, amount, currency, period, start, anchor, category):
    command = read(text)
    assert command is not None and command.name == "recurring_set"
    rule = command.rule
    assert (rule.description, rule.amount_minor, rule.currency, rule.period, rule.start, rule.anchor_day,
            rule.category) == (description, amount, currency, period, start, anchor, category)


@pytest.mark.parametrize("text, topic", [
    ("rent 1200 monthly since 2003-12-31", "recurring_too_early"),
    ("rent 1200 monthly since 2027-12-01", "recurring_too_late"),
    ("gym 30 weekly on 3", "recurring_bad_day"),
    ("netflix 15.99 monthly on 32", "recurring_bad_day"),
    ("rent 1200 monthly since 2026-02-30", "recurring_not_one_expense"),
    ("rent 1200 water 30 monthly", "recurring_not_one_expense"),
    ("rent 1200 2026-11-01 monthly", "recurring_not_one_expense"),
])
def test_a_line_shaped_like_a_rule_that_cannot_be_one_is_refused_plainly(text, topic):
    command = read(text)
    assert command is not None and (command.name, command.topic) == ("did_you_mean", topic)


@pytest.mark.parametrize("text", ["monthly pass 40", "daily coffee 3", "coffee 3", "3 daily", "weekly 5 groceries"])
def test_ordinary_lines_stay_expenses(text):
    assert read(text) is None


def test_list_and_stop_are_commands():
    assert read("recurring").name == "recurring_list"
    assert (read("stop rent").name, read("stop rent").target) == ("recurring_stop", "rent")
    assert read("stop 2").target == "2"
    assert read("stop").name == "did_you_mean"


# ---- due dates, written out independently ----------------------------------------------------------

def test_monthly_on_the_31st_falls_on_the_last_day_of_shorter_months():
    dates = [recurring.due_date("monthly", dt.date(2027, 1, 1), 31, n) for n in range(14)]
    assert dates == [dt.date(y, m, calendar.monthrange(y, m)[1])
                     for y, m in [(2027, m) for m in range(1, 13)] + [(2028, 1), (2028, 2)]]
    assert dates[-1] == dt.date(2028, 2, 29)


def test_yearly_on_feb_29_is_feb_28_in_other_years():
    dates = [recurring.due_date("yearly", dt.date(2024, 2, 29), 29, n) for n in range(5)]
    assert dates == [dt.date(2024, 2, 29), dt.date(2025, 2, 28), dt.date(2026, 2, 28), dt.date(2027, 2, 28),
                     dt.date(2028, 2, 29)]


def test_on_a_day_already_past_this_month_starts_next_month():
    assert recurring.due_date("monthly", TODAY, 15, 0) == dt.date(2026, 12, 15)
    assert recurring.first_after("monthly", TODAY, 15, TODAY) == (0, dt.date(2026, 12, 15))
    assert recurring.first_after("daily", dt.date(2024, 1, 1), 1, TODAY)[1] == TODAY + dt.timedelta(days=1)


# ---- through the real app ----------------------------------------------------------------------------

class Clock:
    """A clock the test moves; the service and its scheduler both read it."""

    def __init__(self, at: dt.datetime):
        self.at = at
        self.lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self.lock:
            return self.at

    def set(self, at: dt.datetime) -> None:
        with self.lock:
            self.at = at


class Person:
    def __init__(self, service, clock, psid: str):
        self.client, self.clock, self.psid, self.n = Client(service), clock, psid, 0

    def say(self, text: str, mid: str | None = None) -> None:
        self.n += 1
        ms = int(self.clock().timestamp() * 1000)
        assert self.client.post_webhook(delivery(message_event(
            self.psid, mid or f"m_{self.psid}_{self.n}", text, timestamp=ms))).status == 200


def last_reply(graph) -> str:
    return graph.requests[-1]["json"]["message"].get("text", "")


def occurrences(service, rule_id: int | None = None) -> list[str]:
    sql = "SELECT due_date FROM expenses WHERE rule_id IS NOT NULL" + (" AND rule_id = ?" if rule_id else "")
    return sorted(day for (day,) in query(service, sql + " ORDER BY due_date", *([rule_id] if rule_id else [])))


@pytest.fixture
def bot(tmp_path, graph, open_service):
    clock = Clock(NOON)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0))
    return service, clock


def test_a_rule_is_made_listed_stopped_and_its_expenses_told_once(bot, graph):
    service, clock = bot
    person = Person(service, clock, "71")
    person.say("rent 1200 monthly")
    assert last_reply(graph) == ("Recurring: rent — 1200.00 USD monthly. Next: 2026-12-29.\n"
                                 "Added: rent 1200.00 USD on 2026-11-29 (monthly)")
    person.say("netflix 15.99 monthly on 15")
    assert last_reply(graph) == "Recurring: netflix — 15.99 USD monthly. Next: 2026-12-15."
    person.say("recurring")
    assert last_reply(graph) == ("Your recurring expenses:\n1. rent — 1200.00 USD monthly, next 2026-12-29\n"
                                 "2. netflix — 15.99 USD monthly, next 2026-12-15")
    # The rent is an ordinary expense: in the category its keyword gives it, in the summary.
    assert query(service, "SELECT category, occurred_at FROM expenses WHERE rule_id IS NOT NULL") == [
        ("housing", "2026-11-29T12:00:00.000Z")]
    clock.set(dt.datetime(2026, 12, 15, 0, 1, tzinfo=dt.timezone.utc))
    service.schedule.turn()
    person.say("coffee 3")
    # The first message of December: the reply, what the rules added, then November's digest.
    lines = last_reply(graph).split("\n")
    assert lines[:3] == ["coffee — 3.00 USD, today", "Today: 18.99 USD", "Added: netflix 15.99 USD on 2026-12-15 (monthly)"]
    assert any("November" in line for line in lines[3:])
    person.say("coffee 3")
    assert "Added" not in last_reply(graph)  # told once
    person.say("stop 2")
    assert last_reply(graph) == "Stopped: netflix — 15.99 USD monthly. The expenses it added stay."
    person.say("stop gym")
    assert last_reply(graph) == "No recurring expense \"gym\". Send \"recurring\" to see yours."
    clock.set(dt.datetime(2027, 2, 1, 0, 1, tzinfo=dt.timezone.utc))
    service.schedule.turn()
    assert occurrences(service) == ["2026-11-29", "2026-12-15", "2026-12-29", "2027-01-29"]
    person.say("summary all")
    assert last_reply(graph).startswith("All time: 3621.99 USD in 6 expenses")


def test_a_redelivered_rule_message_makes_one_rule_and_undo_takes_it_back(bot, graph):
    service, clock = bot
    person = Person(service, clock, "72")
    for _ in range(3):
        person.say("gym 30 weekly since 2026-11-01", mid="m_gym")
    assert query(service, "SELECT count(*) FROM recurring_rules") == [(1,)]
    assert occurrences(service) == ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29"]
    person.say("coffee 3")  # an expense after the rule: undo takes the coffee, not the rule
    person.say("undo")
    assert last_reply(graph) == "Removed: coffee — 3.00 USD."
    person.say("undo")
    assert last_reply(graph) == "Removed: the recurring gym — 30.00 USD weekly, and the 5 expenses it added."
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]
    assert query(service, "SELECT count(*) FROM recurring_rules") == [(0,)]


def test_a_catch_up_since_2024_makes_each_day_once_and_the_next_reply_says_so(bot, graph):
    service, clock = bot
    person = Person(service, clock, "73")
    person.say("coffee 3 daily since 2024-01-01")
    expected = [(dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat()
                for n in range((TODAY - dt.date(2024, 1, 1)).days + 1)]
    assert wait_for(lambda: len(occurrences(service)) == len(expected), 30)
    for _ in range(3):  # more turns, at once and racing the scheduler's own: nothing twice
        threading.Thread(target=service.schedule.turn).start()
    service.schedule.turn()
    assert occurrences(service) == expected  # 1064 dates, each once
    person.say("summary 2024")
    reply = last_reply(graph).split("\n")
    assert reply[0] == "2024: 1098.00 USD in 366 expenses"
    # (then October's digest: the catch-up gave October its expenses, and this is the first reply since)
    reply = reply[:reply.index("")] if "" in reply else reply
    assert reply[-4:] == ["Added: coffee 3.00 USD on 2024-02-01 (daily)",
                          "Added: coffee 3.00 USD on 2024-02-02 (daily)",
                          "Added: coffee 3.00 USD on 2024-02-03 (daily)", f"and {len(expected) - 31 - 3} more"]


def test_a_catch_up_gives_way_while_a_delivery_is_being_handled(bot, graph, monkeypatch):
    service, clock = bot
    monkeypatch.setattr(schedule, "GIVE_WAY", 30.0)
    Person(service, clock, "74").say("coffee 3 daily")
    assert wait_for(lambda: len(occurrences(service)) == 1)
    clock.set(NOON + dt.timedelta(days=7))
    with service.db.taking_messages():  # as the webhook route does while it handles a delivery
        turn = threading.Thread(target=service.schedule.turn)
        turn.start()
        time.sleep(0.3)
        assert len(occurrences(service)) == 1  # waiting for the delivery to be done
    turn.join(10)
    assert len(occurrences(service)) == 8


def test_fifty_rules_at_most(bot, graph):
    service, clock = bot
    person = Person(service, clock, "74")
    for n in range(50):
        person.say(f"thing{n} 1 yearly")
    person.say("thing 1 yearly")
    assert last_reply(graph).startswith("Not saved: you have 50 recurring expenses")
    assert query(service, "SELECT count(*) FROM recurring_rules") == [(50,)]


def test_delete_my_data_removes_rules_and_their_expenses(bot, graph):
    service, clock = bot
    person = Person(service, clock, "75")
    person.say("rent 1200 monthly since 2026-01-01")
    assert wait_for(lambda: len(occurrences(service)) == 11, 30)
    person.say("delete my data")
    ms = int(clock().timestamp() * 1000) + 1
    event = {"sender": {"id": "75"}, "recipient": {"id": "1"}, "timestamp": ms,
             "message": {"mid": "m_yes", "text": "Yes, delete", "quick_reply": {"payload": meaning.DELETE_CONFIRM}}}
    person.client.post_webhook(delivery(event))
    assert query(service, "SELECT count(*) FROM recurring_rules") == [(0,)]
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]
    clock.set(dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc))
    service.schedule.turn()
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]


def test_the_csv_export_marks_occurrences_with_their_period(bot, graph):
    from expensebot import store
    from expensebot.web.export import expense_chunks
    service, clock = bot
    person = Person(service, clock, "76")
    person.say("rent 1200 monthly")
    person.say("coffee 3")
    with service.db.connection() as conn:
        psid_hash = conn.execute("SELECT psid_hash FROM recurring_rules").fetchone()[0]
        lines = "".join(expense_chunks(store.expenses_of(conn, psid_hash))).splitlines()
    assert lines[0].endswith(",recurring")
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["monthly", ""]


# ---- a simulated clock over years, in zones far from UTC --------------------------------------------

def expected_dates(period: str, start: dt.date, until: dt.date, anchor: int) -> list[str]:
    """The due dates up to `until`, written out from the calendar, not from the code under test."""
    out = []
    if period in ("daily", "weekly"):
        day, step = start, dt.timedelta(days=1 if period == "daily" else 7)
        while day <= until:
            out.append(day)
            day += step
    elif period == "monthly":
        for year in range(start.year, until.year + 1):
            for month in range(1, 13):
                day = dt.date(year, month, min(anchor, calendar.monthrange(year, month)[1]))
                if start <= day <= until:
                    out.append(day)
    else:
        for year in range(start.year, until.year + 1):
            day = dt.date(year, 2, 29 if calendar.isleap(year) else 28)
            if start <= day <= until:
                out.append(day)
    return [day.isoformat() for day in out]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"])
def test_years_of_due_dates_each_made_once_on_its_local_day(tmp_path, graph, open_service, zone):
    tz = zoneinfo.ZoneInfo(zone)
    start_local = dt.datetime(2024, 2, 29, 9, 0, tzinfo=tz)  # a leap day, in the person's zone
    clock = Clock(start_local.astimezone(dt.timezone.utc))
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0), schedule_interval=3600)
    person = Person(service, clock, "77")
    person.say(f"timezone {zone}")
    for text in ("coffee 3 daily", "gym 30 weekly", "rent 1200 monthly on 31", "insurance 400 yearly"):
        person.say(text)
    rules = dict(query(service, "SELECT description, id FROM recurring_rules"))
    start = start_local.date()
    moment = clock()
    end = dt.datetime(2027, 3, 2, tzinfo=dt.timezone.utc)
    while moment < end:  # every 6 hours: made on its local day, never before, never twice
        moment += dt.timedelta(hours=6)
        clock.set(moment)
        service.schedule.turn()
        local_today = moment.astimezone(tz).date()
        if local_today.day in (1, 28, 29, 30, 31) or moment >= end:
            assert occurrences(service, rules["rent"]) == expected_dates("monthly", start, local_today, 31)
            assert occurrences(service, rules["insurance"]) == expected_dates("yearly", start, local_today, 29)
    until = clock().astimezone(tz).date()
    assert occurrences(service, rules["coffee"]) == expected_dates("daily", start, until, 0)
    assert occurrences(service, rules["gym"]) == expected_dates("weekly", start, until, 0)
    assert "2025-02-28" in occurrences(service, rules["insurance"])
    # Each dated noon of its day in the zone, DST or not.
    for due, occurred_at in query(service, "SELECT due_date, occurred_at FROM expenses WHERE rule_id IS NOT NULL"):
        local = dt.datetime.fromisoformat(occurred_at).astimezone(tz)
        assert (local.date().isoformat(), local.hour) == (due, 12)
    assert query(service, "SELECT count(*) - count(DISTINCT rule_id || due_date) FROM expenses") == [(0,)]


# ---- kill -9 in the middle of a catch-up ----------------------------------------------------------------

RULES = 12
SINCE = dt.date(2004, 1, 1)


def count_made(db_path) -> int:
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM expenses WHERE rule_id IS NOT NULL").fetchone()[0]
    finally:
        conn.close()


def test_kill_9_during_a_catch_up_then_restart_makes_each_date_once(tmp_path, server_process):
    db_path = tmp_path / "expensebot.db"
    server = server_process(RATES_URL="off")
    for n in range(RULES):
        body = signed_message(f"m_rule_{n}", psid=f"888{n}", text=f"rent{n} 1 daily since {SINCE}")
        assert post(server.url, body).status_code == 200
    today_utc = dt.datetime.now(dt.timezone.utc).date()
    per_rule = (today_utc - SINCE).days + 1  # the bot's zone is UTC
    total = RULES * per_rule
    rng = random.Random()
    for kill in range(3):  # killed at three random points of the catch-up, each time restarted
        at = count_made(db_path) + rng.randrange(total // 50, total // 5)
        assert wait_for(lambda: count_made(db_path) >= at, 120, interval=0.005)
        server.kill()
        made_before = count_made(db_path)
        print(f"\nrecurring: kill {kill + 1} with {made_before} of {total} dates made")
        assert made_before < total, "the catch-up ended before the kill: make it longer"
        server = server_process(RATES_URL="off")
    assert wait_for(lambda: count_made(db_path) >= total, 300)
    time.sleep(0.5)  # a turn that would make a date twice would have done so by now
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM expenses WHERE rule_id IS NOT NULL").fetchone()[0] == total
        for rule_id, count, first, last, distinct in conn.execute(
                "SELECT rule_id, count(*), min(due_date), max(due_date), count(DISTINCT due_date)"
                " FROM expenses WHERE rule_id IS NOT NULL GROUP BY rule_id"):
            assert (count, distinct, first) == (per_rule, per_rule, SINCE.isoformat())
            assert last == today_utc.isoformat()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_the_report_page_and_its_csv_mark_occurrences_as_recurring(tmp_path, graph, open_service):
    from conftest import psid_hash

    from expensebot.web import report
    public = "https://bot.example/expenses"
    clock = Clock(NOON)
    config = make_config(tmp_path, public_url=public, fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0))
    person = Person(service, clock, "78")
    person.say("gym 30 weekly since 2026-11-01")
    person.say("coffee 3")
    path = report.link_for(config, psid_hash("78"), NOON).removeprefix(public)
    page = person.client.get(path).text
    assert page.count('<span class="tag">weekly</span>') == 5
    csv_text = person.client.get(path + "expenses.csv?month=2026-11").text
    assert [line.rsplit(",", 1)[1] for line in csv_text.splitlines()[1:]] == ["weekly"] * 5 + [""]


def test_an_older_file_is_upgraded_by_step_4_and_keeps_each_due_date_once(tmp_path):
    from test_database_file import first_schema_file

    from expensebot import db
    path = first_schema_file(tmp_path / "old.db")
    db.Database(path).open()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION >= 4
        columns = {row[1] for row in conn.execute("PRAGMA table_info(expenses)")}
        assert {"rule_id", "due_date", "announced_by"} <= columns
        assert conn.execute("SELECT id, amount_minor, rule_id FROM expenses").fetchall() == [(3, 500, None)]
        insert = ("INSERT OR IGNORE INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency,"
                  " description, occurred_at, created_at, rule_id, due_date)"
                  " VALUES (7, 'h', 'm_7', ?, 1, 'USD', 'x', 'a', 'b', 1, '2026-01-01')")
        assert [conn.execute(insert, (line,)).rowcount for line in (1, 2)] == [1, 0]  # the key holds
    finally:
        conn.close()


def test_a_rule_in_another_currency_is_converted_like_any_expense(tmp_path, graph, ecb, open_service):
    clock = Clock(dt.datetime(2026, 10, 30, 20, 0, tzinfo=dt.timezone.utc))  # within the ECB history served
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, rates_url=ecb.url)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0))
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)
    person = Person(service, clock, "79")
    person.say("rent 1000 EUR monthly since 2026-09-01")
    rows = query(service, "SELECT due_date, converted_currency, rate_source, rate_day, converted_minor > 100000"
                          " FROM expenses ORDER BY due_date")
    assert rows == [("2026-09-01", "USD", "ecb", "2026-09-01", 1), ("2026-10-01", "USD", "ecb", "2026-10-01", 1)]
