"""What a person texts and what they read back, through the real app, the real database and a
real local Send API stand-in: command words, currency words, several amounts, settings, budgets
and questions. Each case is a short conversation; the last reply and the person's rows are checked."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from conftest import Client, delivery, psid_hash, query
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ai import model  # noqa: F401  (a fixture)

from expensebot.chat import meaning
from expensebot.replies import words
from expensebot.settings import Settings

T0 = 1764075600000  # Tuesday 2025-11-25 13:00 UTC
PSID = "111"
DAY_MS = 86_400_000
NOT_SET_UP = words.REPORT_NOT_SET_UP
OVER = "over budget by"


def event(text, n: int, timestamp: int) -> dict:
    """A message event; ("postback", P) and ("quick", P) send P as a postback or a quick reply."""
    base = {"sender": {"id": PSID}, "recipient": {"id": "1"}, "timestamp": timestamp}
    if isinstance(text, tuple):
        kind, payload = text
        if kind == "postback":
            return {**base, "postback": {"title": "Menu", "payload": payload, "mid": f"m_{timestamp}_{n}"}}
        return {**base, "message": {"mid": f"m_{timestamp}_{n}", "text": payload[:20], "quick_reply": {"payload": payload}}}
    return {**base, "message": {"mid": f"m_{timestamp}_{n}", "text": text}}


def converse(bot, graph, texts, start: int = T0) -> list[dict]:
    """Send each text in its own delivery, a second apart; return the messages the bot sent."""
    client = Client(bot)
    for n, text in enumerate(texts):
        assert client.post_webhook(delivery(event(text, n, start + n * 1000))).status == 200
    return [r["json"]["message"] for r in graph.requests]


def expenses(bot) -> list[tuple]:
    return query(bot, "SELECT amount_minor, currency, description FROM expenses WHERE psid_hash = ? ORDER BY id",
                 psid_hash(PSID))


COFFEE = [(500, "USD", "coffee")]

# (conversation, what the last reply says (a part of it, or all of it when it starts with '='),
#  the person's expenses afterwards as (amount_minor, currency, description))
CASES = {
    # command words with numbers are commands, never expenses
    "summary year": (["coffee 5 2025-01-10", "summary 2025"], "=2025: 5.00 USD in 1 expense\nTop: food 5.00 USD", COFFEE),
    "summary empty year": (["summary 2026"], "=2026: no expenses.", []),
    "summary month name": (["coffee 5", "summary november"], "=November 2025: 5.00 USD in 1 expense\nTop: food 5.00 USD", COFFEE),
    "summary short month": (["coffee 5", "summary Nov"], "November 2025: 5.00 USD", COFFEE),
    "summary month name and year": (["coffee 5", "summary november 2025"], "November 2025: 5.00 USD", COFFEE),
    "summary year-month": (["coffee 5", "summary 2025-11"], "November 2025: 5.00 USD", COFFEE),
    "summary a later month name is last year's": (["summary december"], "=December 2024: no expenses.", []),
    "summary one day": (["coffee 5", "summary 2025-11-25"], "2025-11-25: 5.00 USD", COFFEE),
    "summary last 7 days": (["coffee 5 2025-11-18", "coffee 5 2025-11-19", "summary last 7 days"],
                            "Last 7 days: 5.00 USD in 1 expense", COFFEE * 2),
    "summary today": (["coffee 5", "summary today"], "Today: 5.00 USD", COFFEE),
    "summary yesterday": (["coffee 5", "summary yesterday"], "=Yesterday: no expenses.", COFFEE),
    "summary week": (["coffee 5", "summary week"], "This week: 5.00 USD", COFFEE),
    "summary this week": (["coffee 5", "summary this week"], "This week: 5.00 USD", COFFEE),
    "summary last month": (["coffee 5 2025-10-31", "summary last month"], "Last month: 5.00 USD", COFFEE),
    "summary all": (["coffee 5", "SUMMARY ALL"], "All time: 5.00 USD", COFFEE),
    "summary with a colon": (["coffee 5", "Summary: 2025"], "2025: 5.00 USD", COFFEE),
    "summary nonsense": (["summary foo"], "=" + words.DID_YOU_MEAN["summary"], []),
    "summary a small number": (["summary 12"], "=" + words.DID_YOU_MEAN["summary"], []),
    "summary too many days": (["summary last 99999 days"], "=" + words.DID_YOU_MEAN["summary"], []),
    "summary with an amount": (["summary coffee 5"], "=" + words.DID_YOU_MEAN["summary"], []),
    "undo 2": (["coffee 5", "tea 3", "taxi 7", "undo 2"], "=Removed: taxi — 7.00 USD.\nRemoved: tea — 3.00 USD.", COFFEE),
    "undo more than there is": (["coffee 5", "undo 3"], "=Removed: coffee — 5.00 USD.", []),
    "undo 51": (["coffee 5", "undo 51"], "=" + words.DID_YOU_MEAN["undo"], COFFEE),
    "undo 0": (["coffee 5", "undo 0"], "=" + words.DID_YOU_MEAN["undo"], COFFEE),
    "undo with words": (["coffee 5", "undo coffee 5"], "=" + words.DID_YOU_MEAN["undo"], COFFEE),
    "undo nothing": (["Undo"], "=Nothing to undo.", []),
    "help with a number": (["help 5"], "=" + words.HELP, []),
    "delete with a number": (["delete 5"], "=" + words.DID_YOU_MEAN["delete"], []),
    "report": (["report"], "=" + NOT_SET_UP, []),
    "report with a number": (["report 2026"], "=" + words.DID_YOU_MEAN["report"], []),
    "budgets with a number": (["budgets 5"], "=" + words.DID_YOU_MEAN["budgets"], []),
    "settings with a number": (["settings 5"], "=" + words.DID_YOU_MEAN["settings"], []),
    "a command then more lines": (["summary\ncoffee 5"], "=" + words.DID_YOU_MEAN["summary"], []),
    # currency words
    "yen": (["sushi 500 yen"], "=sushi — 500 JPY, today\nToday: 500 JPY", [(500, "JPY", "sushi")]),
    "euros": (["lunch 12 euros"], "=lunch — 12.00 EUR, today\nToday: 12.00 EUR", [(1200, "EUR", "lunch")]),
    "euro": (["Lunch 12 Euro"], "Lunch — 12.00 EUR", [(1200, "EUR", "Lunch")]),
    "pesos are asked about": (["jeepney 100 pesos"], "which currency did you mean on line 1?", []),
    "picking a peso": (["jeepney 100 pesos", ("quick", "jeepney 100 PHP")], "=jeepney — 100.00 PHP, today\nToday: 100.00 PHP",
                       [(10000, "PHP", "jeepney")]),
    "pesos for a person in pesos": (["currency PHP", "jeepney 100 pesos"], "jeepney — 100.00 PHP", [(10000, "PHP", "jeepney")]),
    "dollars for a person in dollars": (["taxi 20 dollars"], "taxi — 20.00 USD", [(2000, "USD", "taxi")]),
    "dollars for a person in pesos": (["currency PHP", "taxi 20 dollars"], "which currency", []),
    "piso": (["jeepney 13 piso"], "jeepney — 13.00 PHP", [(1300, "PHP", "jeepney")]),
    "peso sign": (["₱250 lunch"], "lunch — 250.00 PHP", [(25000, "PHP", "lunch")]),
    "yen sign of Japan": (["ramen 800円"], "=ramen — 800 JPY, today\nToday: 800 JPY", [(800, "JPY", "ramen")]),
    "yuan sign": (["noodles 100 元"], "noodles — 100.00 CNY", [(10000, "CNY", "noodles")]),
    "zloty sign": (["pierogi 100zł"], "pierogi — 100.00 PLN", [(10000, "PLN", "pierogi")]),
    "rupiah with dots": (["nasi goreng Rp50.000"], "nasi goreng — 50000.00 IDR", [(5000000, "IDR", "nasi goreng")]),
    "tenge sign": (["plov 100 ₸"], "plov — 100.00 KZT", [(10000, "KZT", "plov")]),
    "rupee sign is asked about": (["chai 100 ₨"], "which currency did you mean on line 1? (INR, PKR", []),
    "rupee sign for a person in rupees": (["currency PKR", "chai ₨100"], "chai — 100.00 PKR", [(10000, "PKR", "chai")]),
    "baht": (["tea 40 baht"], "tea — 40.00 THB", [(4000, "THB", "tea")]),
    "won": (["kimchi 9000 won"], "kimchi — 9000 KRW", [(9000, "KRW", "kimchi")]),
    "rupees are asked about": (["chai 30 rupees"], "which currency", []),
    "rupees for a person in rupees": (["currency INR", "chai 30 rupees"], "chai — 30.00 INR", [(3000, "INR", "chai")]),
    "pounds are a weight by default": (["rice 5 pounds 12"], "rice 5 pounds — 12.00 USD",
                                       [(1200, "USD", "rice 5 pounds")]),
    "pounds for a person in pounds": (["currency GBP", "beer 5 pounds"], "beer — 5.00 GBP", [(500, "GBP", "beer")]),
    "quid": (["beer 5 quid"], "beer — 5.00 GBP", [(500, "GBP", "beer")]),
    "bucks": (["coffee 3 bucks"], "coffee — 3.00 USD", [(300, "USD", "coffee")]),
    "francs": (["bread 2 francs"], "bread — 2.00 CHF", [(200, "CHF", "bread")]),
    # a lower-case code away from the amount's side is a word of the description
    "code word in a description": (["car svc 40"], "=car svc — 40.00 USD, today\nToday: 40.00 USD",
                                   [(4000, "USD", "car svc")]),
    "code word first": (["currency EUR", "npr donation 25"], "npr donation — 25.00 EUR", [(2500, "EUR", "npr donation")]),
    "code right after the amount": (["250 php lunch"], "lunch — 250.00 PHP", [(25000, "PHP", "lunch")]),
    # several amounts on one line
    "two pairs": (["coffee 4.50 lunch 12"], "=coffee — 4.50 USD, today\nlunch — 12.00 USD, today\nToday: 16.50 USD",
                  [(450, "USD", "coffee"), (1200, "USD", "lunch")]),
    "two pairs with codes": (["lunch 12 EUR dinner 20 EUR"], "dinner — 20.00 EUR",
                             [(1200, "EUR", "lunch"), (2000, "EUR", "dinner")]),
    "two pairs in yen": (["sushi 500 yen ramen 900 yen"], "ramen — 900 JPY", [(500, "JPY", "sushi"), (900, "JPY", "ramen")]),
    "two pairs and a tag": (["bus 2 coffee 3 #food"], "coffee — 3.00 USD, today #food",
                            [(200, "USD", "bus"), (300, "USD", "coffee")]),
    "an amount too many": (["coffee 4.50 12"], "more than one amount", []),
    "two bare amounts": (["taxi 12 50"], "more than one amount", []),
    "a quantity is no pair": (["2 coffees 10"], "2 coffees — 10.00 USD", [(1000, "USD", "2 coffees")]),
    # settings
    "currency code": (["currency EUR", "lunch 12"], "lunch — 12.00 EUR", [(1200, "EUR", "lunch")]),
    "currency set reply": (["currency eur"], "Your currency is now EUR", []),
    "currency symbol": (["currency €", "lunch 12"], "lunch — 12.00 EUR", [(1200, "EUR", "lunch")]),
    "currency word": (["currency yen", "ramen 900"], "ramen — 900 JPY", [(900, "JPY", "ramen")]),
    "currency words with a country": (["currency PHP", "currency us dollars", "taxi 5"], "taxi — 5.00 USD",
                                      [(500, "USD", "taxi")]),
    "currency of several is asked": (["currency pesos"], "Which one should amounts without a currency be in?", []),
    "currency unknown": (["currency doubloons"], "=" + words.DID_YOU_MEAN["currency"], []),
    "timezone city": (["timezone Manila"], "Your time zone is now Asia/Manila (it is ", []),
    "timezone IANA": (["timezone Asia/Manila"], "Your time zone is now Asia/Manila", []),
    "time zone two words": (["time zone new york"], "Your time zone is now America/New_York", []),
    "timezone unknown": (["timezone Atlantis"], "=" + words.DID_YOU_MEAN["timezone"], []),
    "settings fresh": (["settings"], "=Currency: USD\nTime zone: UTC\nChange them with \"currency EUR\" or \"timezone Manila\".", []),
    "settings after changes": (["currency EUR", "timezone Manila", "settings"], "Currency: EUR\nTime zone: Asia/Manila", []),
    "timezone alone shows settings": (["timezone"], "Time zone: UTC", []),
    # budgets
    "budget set": (["budget food 300"], "=Budget set: food 300.00 USD a month.\nFood: 0.00 of 300.00 USD", []),
    "budget shown on an expense": (["budget food 300", "lunch 250 #food"],
                                   "=lunch — 250.00 USD, today #food\nToday: 250.00 USD\nFood: 250.00 of 300.00 USD",
                                   [(25000, "USD", "lunch")]),
    "budget over": (["budget food 300", "lunch 250 #food", "dinner 100"],
                    "Food: 350.00 of 300.00 USD — over budget by 50.00 USD.", [(25000, "USD", "lunch"), (10000, "USD", "dinner")]),
    "budget for everything": (["budget 1500", "taxi 20"], "Everything: 20.00 of 1500.00 USD", [(2000, "USD", "taxi")]),
    "budget of another category stays out": (["budget food 300", "taxi 20"], "=taxi — 20.00 USD, today\nToday: 20.00 USD",
                                             [(2000, "USD", "taxi")]),
    "budgets list": (["budget food 300", "budget 1500", "lunch 20", "budgets"],
                     "=This month:\nEverything: 20.00 of 1500.00 USD\nFood: 20.00 of 300.00 USD", [(2000, "USD", "lunch")]),
    "budget with a tag": (["budget #food 300", "budgets"], "=This month:\nFood: 0.00 of 300.00 USD", []),
    "budget amount first": (["budget 1.5k food", "budgets"], "=This month:\nFood: 0.00 of 1500.00 USD", []),
    "budget off": (["budget food 300", "budget food off", "budgets"], "No budgets yet.", []),
    "budget off reply": (["budget food 300", "budget food off"], "=Budget removed: food.", []),
    "budget off when none": (["budget food off"], "=There was no budget for food.", []),
    "budget in another currency": (["budget food 300 EUR"], "=" + words.DID_YOU_MEAN["budget"], []),
    "budget without an amount": (["budget food lots"], "=" + words.DID_YOU_MEAN["budget"], []),
    "budget follows the currency": (["currency EUR", "budget food 300", "lunch 12 #food"], "Food: 12.00 of 300.00 EUR",
                                    [(1200, "EUR", "lunch")]),
    # questions
    "how much on a category": (["lunch 12 #food", "taxi 5", "how much on food this month?"],
                               "=This month, food: 12.00 USD in 1 expense", [(1200, "USD", "lunch"), (500, "USD", "taxi")]),
    "how much this week": (["lunch 12", "how much did I spend this week?"],
                           "=This week: 12.00 USD in 1 expense\nTop: food 12.00 USD", [(1200, "USD", "lunch")]),
    "a word and a period": (["coffee 4", "coffee 3", "tea 1", "coffee this year?"], "=This year, coffee: 7.00 USD in 2 expenses",
                            [(400, "USD", "coffee"), (300, "USD", "coffee"), (100, "USD", "tea")]),
    "what did I spend yesterday": (["coffee 4 yesterday", "coffee 9", "what did I spend yesterday?"],
                                   "=Yesterday: 4.00 USD in 1 expense\nTop: food 4.00 USD",
                                   [(400, "USD", "coffee"), (900, "USD", "coffee")]),
    "how much on nothing yet": (["how much on food?"], "=This month: nothing on food.", []),
    "how much in a month": (["coffee 4", "how much on coffee in november?"], "November 2025, coffee: 4.00 USD",
                            [(400, "USD", "coffee")]),
    "how much last month": (["coffee 4 2025-10-02", "how much did I spend last month?"], "Last month: 4.00 USD",
                            [(400, "USD", "coffee")]),
    "a question it cannot read": (["how much on xyz 77?"], "=" + words.DID_YOU_MEAN["question"], []),
    # the Get Started button and the menu
    "get started": ([("postback", "GET_STARTED")], "=" + words.WELCOME, []),
    "menu summary": (["coffee 5", ("postback", "MENU_SUMMARY")], "This month: 5.00 USD", COFFEE),
    "menu undo": (["coffee 5", ("postback", "MENU_UNDO")], "=Removed: coffee — 5.00 USD.", []),
    "menu help": ([("postback", "MENU_HELP")], "=" + words.HELP, []),
    "menu report": ([("postback", "MENU_REPORT")], "=" + NOT_SET_UP, []),
    "welcome currency pick": ([("postback", "GET_STARTED"), ("quick", "currency EUR"), "lunch 12"], "lunch — 12.00 EUR",
                              [(1200, "EUR", "lunch")]),
}


@pytest.mark.parametrize("name", CASES)
def test_chat(bot, graph, name):
    texts, reply, rows = CASES[name]
    sent = converse(bot, graph, texts)
    assert len(sent) == len(texts)
    last = sent[-1]["text"]
    if reply.startswith("="):
        assert last == reply[1:]
    else:
        assert reply in last
    assert expenses(bot) == rows


def test_which_currency_offers_the_line_with_each_code(bot, graph):
    [ask] = converse(bot, graph, ["jeepney 100 pesos"])
    assert [(q["title"], q["payload"]) for q in ask["quick_replies"]][:3] == [
        ("PHP", "jeepney 100 PHP 2025-11-25"), ("MXN", "jeepney 100 MXN 2025-11-25"),
        ("ARS", "jeepney 100 ARS 2025-11-25")]
    assert ask["text"].endswith('Pick one, or write the code: "jeepney 100 PHP".')


def test_welcome_offers_common_currencies_that_set_the_currency(bot, graph):
    [welcome] = converse(bot, graph, [("postback", "GET_STARTED")])
    assert [q["payload"] for q in welcome["quick_replies"]][:3] == ["currency USD", "currency EUR", "currency PHP"]
    assert all(len(q["title"]) <= 20 for q in welcome["quick_replies"])


def test_a_setting_applies_to_the_next_message_of_the_same_delivery(bot, graph):
    events = [event("lunch 12", 0, T0), event("currency EUR", 1, T0 + 1), event("dinner 20", 2, T0 + 2),
              {**event("tea 3", 3, T0 + 3), "sender": {"id": "222"}}]
    assert Client(bot).post_webhook(delivery(*events)).status == 200
    assert query(bot, "SELECT description, currency FROM expenses ORDER BY id") == [
        ("lunch", "USD"), ("dinner", "EUR"), ("tea", "USD")]


def test_a_time_zone_applies_to_the_next_message_of_the_same_delivery(bot, graph):
    # Every message of a delivery is read before any is stored: one read with settings that a
    # message before it changed must be read again. (An erasure: tests/test_edges.py.)
    converse(bot, graph, ["currency EUR"])
    late = T0 + 20 * 3_600_000 - T0 % DAY_MS  # 20:00 UTC: already the next day in Manila (UTC+8)
    events = [event("timezone Manila", 10, late), event("lunch 12 yesterday", 11, late + 1),
              {**event("dinner 20 yesterday", 12, late + 2), "sender": {"id": "222"}}]
    assert Client(bot).post_webhook(delivery(*events)).status == 200
    day = dt.datetime.fromtimestamp(late / 1000, dt.timezone.utc).date()
    assert query(bot, "SELECT description, currency, occurred_at FROM expenses ORDER BY id") == [
        ("lunch", "EUR", f"{day}T04:00:00.000Z"),  # noon in Manila, and Manila's yesterday is UTC's today
        ("dinner", "USD", f"{day - dt.timedelta(days=1)}T12:00:00.000Z")]  # someone else: still UTC


def test_undo_2_redelivered_undoes_only_2(bot, graph):
    converse(bot, graph, ["a 1", "b 2", "c 3", "undo 2"])
    converse(bot, graph, ["a 1", "b 2", "c 3", "undo 2"])  # the same mids again: nothing new
    assert expenses(bot) == [(100, "USD", "a")]


def test_delete_my_data_erases_settings_and_budgets(bot, graph):
    converse(bot, graph, ["currency EUR", "budget food 300", "lunch 12", "delete my data",
                          ("quick", words.DELETE_CONFIRM)])
    h = psid_hash(PSID)
    assert query(bot, "SELECT count(*) FROM people WHERE psid_hash = ?", h) == [(0,)]
    assert query(bot, "SELECT count(*) FROM budgets WHERE psid_hash = ?", h) == [(0,)]
    converse(bot, graph, ["settings"], start=T0 + DAY_MS)
    assert graph.texts[-1].startswith("Currency: USD\nTime zone: UTC")


def test_settings_are_kept_by_psid_hash_only(bot, graph):
    converse(bot, graph, ["currency EUR", "timezone Manila"])
    assert query(bot, "SELECT psid_hash, currency, timezone FROM people") == [(psid_hash(PSID), "EUR", "Asia/Manila")]


# A zone at UTC+14 and one at UTC-11: local midnight of 1 December 2025 in UTC, and a minute before it.
ZONES = {
    "Pacific/Kiritimati": ("2025-11-30T09:59:00.000Z", "2025-11-30T10:00:00.000Z"),
    "Pacific/Pago_Pago": ("2025-12-01T10:59:00.000Z", "2025-12-01T11:00:00.000Z"),
}


@pytest.fixture
def zoned_bot(tmp_path, graph, open_service):
    """The bot with the clock of GET /summary at a minute past local midnight of 1 December."""
    from conftest import make_config

    def start(now):
        config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
        return open_service(config, now=lambda: now, reply_backoff=(0, 0, 0))
    return start


@pytest.mark.parametrize("zone", ZONES)
def test_day_and_month_follow_the_persons_zone(zoned_bot, graph, zone):
    import datetime as dt

    from conftest import OPS_TOKEN

    from expensebot.times import ms_from_iso
    before, after = (ms_from_iso(when) for when in ZONES[zone])
    bot = zoned_bot(dt.datetime.fromtimestamp((after + 60_000) / 1000, dt.timezone.utc))
    converse(bot, graph, [f"timezone {zone}"], start=before - DAY_MS)
    converse(bot, graph, ["coffee 1"], start=before)   # 23:59 on 30 November there
    converse(bot, graph, ["book 2", "taxi 4 yesterday", "summary", "summary november", "summary today"], start=after)
    assert graph.texts[1:] == [
        "coffee — 1.00 USD, today\nToday: 1.00 USD",
        # A new day there: the coffee is yesterday's; and a new month, so November's digest comes along.
        "book — 2.00 USD, today\nToday: 2.00 USD\n\nYour digest of November 2025:\nNovember 2025: 1.00 USD in 1 expense"
        "\nTop: food 1.00 USD\nChange: first month (no expenses in October 2025).\n(\"digest off\" stops these.)",
        "taxi — 4.00 USD, yesterday\nToday: 2.00 USD",
        "This month: 2.00 USD in 1 expense\nTop: education 2.00 USD",  # December there
        "November 2025: 5.00 USD in 2 expenses\nTop: transport 4.00 USD, food 1.00 USD",
        "Today: 2.00 USD in 1 expense\nTop: education 2.00 USD",
    ]
    # "yesterday" is noon of 30 November in the person's zone
    noon = dt.datetime(2025, 11, 30, 12, tzinfo=__import__("zoneinfo").ZoneInfo(zone)).astimezone(dt.timezone.utc)
    assert query(bot, "SELECT occurred_at FROM expenses WHERE description = 'taxi'") == [
        (noon.strftime("%Y-%m-%dT%H:%M:%S.000Z"),)]
    client, h = Client(bot), psid_hash(PSID)
    # GET /summary counts in the person's zone too (in UTC, both would fall in one month).
    for period in ("today", "month"):
        body = client.get(f"/summary?psid_hash={h}&period={period}", token=OPS_TOKEN).json()
        assert {c: t["total_minor"] for c, t in body["currencies"].items()} == {"USD": 200}


def test_budgets_equal_sql_sums_over_the_persons_month(zoned_bot, graph):
    import datetime as dt
    import re

    from expensebot.times import ms_from_iso
    bot = zoned_bot(dt.datetime(2025, 12, 15, tzinfo=dt.timezone.utc))
    converse(bot, graph, ["timezone Asia/Manila", "budget food 300", "budget 1000", "budget taxi 50"],
             start=ms_from_iso("2025-11-20T00:00:00.000Z"))
    lines = [("2025-11-30T15:59:00.000Z", "lunch 40 #food"),    # 23:59 on 30 November in Manila: not December
             ("2025-11-30T16:00:00.000Z", "dinner 25.50 #food"),  # 00:00 on 1 December in Manila
             ("2025-12-03T08:00:00.000Z", "taxi 30"),
             ("2025-12-04T08:00:00.000Z", "lunch 12 EUR #food"),   # another currency: not in a USD budget
             ("2025-12-05T08:00:00.000Z", "groceries 310.25 #food"),
             ("2025-12-06T08:00:00.000Z", "pen 2"),
             ("2025-12-07T08:00:00.000Z", "budgets")]
    for n, (when, text) in enumerate(lines):
        assert Client(bot).post_webhook(delivery(event(text, 100 + n, ms_from_iso(when)))).status == 200
    shown = dict(re.findall(r"(\w+): ([0-9.]+) of [0-9.]+ USD", graph.texts[-1]))

    def sql(category_clause):
        return query(bot, "SELECT printf('%.2f', coalesce(sum(amount_minor), 0) / 100.0) FROM expenses"
                          " WHERE psid_hash = ? AND currency = 'USD' AND occurred_at >= ? AND occurred_at < ?"
                          + category_clause, psid_hash(PSID), "2025-11-30T16:00:00.000Z", "2025-12-31T16:00:00.000Z")[0][0]
    assert shown == {"Everything": sql(""), "Food": sql(" AND category = 'food'"),
                     "Taxi": sql(" AND category = 'taxi'")}
    assert shown == {"Everything": "367.75", "Food": "335.75", "Taxi": "0.00"}  # by hand
    assert "Food: 335.75 of 300.00 USD — over budget by 35.75 USD." in graph.texts[-1]


# Written out here, not taken from meaning.COMMAND_WORDS, so that a word dropped there fails.
COMMAND_WORDS = "summary undo help delete currency timezone tz settings budget budgets report recurring stop".split()
command_words = st.sampled_from(COMMAND_WORDS).flatmap(
    lambda word: st.sampled_from([word, word.upper(), word.capitalize()]))
rests = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
separators = st.sampled_from([" ", "  ", ": ", "! ", "\t", "\n", " 5 "])


@settings(max_examples=1000, deadline=None)
@given(command_words, separators, rests, st.sampled_from(["USD", "JPY", "PHP"]))
def test_a_message_starting_with_a_command_word_is_never_an_expense(word, separator, rest, currency):
    result = meaning.read(f"{word}{separator}{rest}", Settings(currency, "UTC"), T0)
    assert result.expenses == ()
    assert result.command is not None


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory, open_module_service):
    """One bot for every example of the property below (opening one per example is slow)."""
    from conftest import make_config
    return open_module_service(make_config(tmp_path_factory.mktemp("property")))


_deliveries = itertools.count()


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.builds(lambda w, s, r: f"{w}{s}{r}", command_words, separators, rests), min_size=1, max_size=5))
def test_no_command_word_message_creates_an_expense_through_the_app(shared_service, texts):
    start = T0 + next(_deliveries) * 10_000
    events = [event(text, n, start + n) for n, text in enumerate(texts)]
    assert Client(shared_service).post_webhook(delivery(*events)).status == 200
    assert query(shared_service, "SELECT count(*) FROM expenses") == [(0,)]
    # This example's own rows: a total over every example so far would pass without them.
    mids = [event["message"]["mid"] for event in events]
    assert query(shared_service, f"SELECT count(*) FROM messages_raw WHERE mid IN ({', '.join('?' * len(mids))})",
                 *mids) == [(len(texts),)]


@pytest.mark.parametrize("currency, tz", [("XXX", "Mars/Olympus"), ("usd", "../../etc/passwd"), ("", ""), (None, None)])
def test_a_settings_row_changed_by_hand_falls_back_to_the_defaults(bot, graph, currency, tz):
    import sqlite3
    conn = sqlite3.connect(bot.config.db_path)
    with conn:
        conn.execute("INSERT INTO people (psid_hash, currency, timezone, updated_at) VALUES (?, ?, ?, 'x')",
                     (psid_hash(PSID), currency, tz))
    conn.close()
    converse(bot, graph, ["coffee 5", "settings"])
    assert graph.texts == ["coffee — 5.00 USD, today\nToday: 5.00 USD",
                           "Currency: USD\nTime zone: UTC\nChange them with \"currency EUR\" or \"timezone Manila\"."]


@pytest.fixture
def ai_bot(tmp_path, graph, model, open_service):
    """The bot with AI on, and its model (tests/test_ai.py's, a real local server)."""
    from conftest import make_config
    config = make_config(tmp_path, ai_enabled=True, ai_url=model.url, ai_model="m", ai_timeout=2.0,
                         fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, enrich_interval=3600, reply_backoff=(0, 0, 0))
    return service, model


@pytest.mark.parametrize("answer, reply", [
    ('{"category": "food", "period": "month"}', "This month, food: 12.00 USD in 1 expense"),
    ('{"category": null, "period": "today"}', "Today: 17.00 USD in 2 expenses\nTop: food 12.00 USD, transport 5.00 USD"),
    ('{"category": "Food", "period": "week"}', "This week, food: 12.00 USD in 1 expense"),
    # anything else is not trusted: the reader's own "did you mean"
    ('{"category": "gambling", "period": "month"}', words.DID_YOU_MEAN["question"]),
    ('{"category": "food", "period": "decade"}', words.DID_YOU_MEAN["question"]),
    ('{"category": "food", "period": "month", "total": 999}', "This month, food: 12.00 USD in 1 expense"),
    ('{"period": null}', words.DID_YOU_MEAN["question"]),
    ("You spent 999 on food", words.DID_YOU_MEAN["question"]),
    ('["food", "month"]', words.DID_YOU_MEAN["question"]),
])
def test_a_question_the_reader_cannot_read_may_be_mapped_by_the_model(ai_bot, graph, answer, reply):
    from test_ai import says
    bot, model = ai_bot
    converse(bot, graph, ["lunch 12 #food", "taxi 5"])
    model.will(says(answer))
    converse(bot, graph, ["how much did the food thing cost me lately?"], start=T0 + 60_000)
    assert graph.texts[-1] == reply
    asked = [r for r in model.requests if r["json"]["messages"][0]["content"].startswith("You turn")]
    assert [r["json"]["messages"][1]["content"] for r in asked] == ["how much did the food thing cost me lately?"]


@pytest.mark.parametrize("rephrased, faithful", [
    ("Food took 18.50 USD and transport 3.00 USD: 21.50 USD this month.", True),
    ("Food took 3.00 USD and transport 18.50 USD: 21.50 USD this month.", False),  # amounts swapped
    ("Last month you spent 21.50 USD in 2 expenses.", False),                      # another period
])
def test_a_summary_is_reworded_only_when_each_amount_and_the_period_stay_its_own(ai_bot, graph, rephrased, faithful):
    from test_ai import says
    bot, model = ai_bot
    converse(bot, graph, ["lunch 18.50", "taxi 3"])
    model.will(says(rephrased))
    converse(bot, graph, ["summary"], start=T0 + 60_000)
    plain = "This month: 21.50 USD in 2 expenses\nTop: food 18.50 USD, transport 3.00 USD"
    assert graph.texts[-1] == (rephrased if faithful else plain)


def test_with_ai_off_an_unreadable_question_gets_the_did_you_mean(bot, graph):
    converse(bot, graph, ["how much did the food thing cost me lately?"])
    assert graph.texts == [words.DID_YOU_MEAN["question"]]


question_like = st.builds(lambda a, b, c: f"{a}{b}{c}", st.sampled_from(["how much ", "what did I spend ", "", "budget ",
                                                                         "currency ", "timezone ", "summary last "]),
                          rests, st.sampled_from(["", "?", " this month?", " days"]))


@settings(max_examples=1500, deadline=None)
@given(st.one_of(rests, question_like), st.sampled_from([("USD", "UTC"), ("JPY", "Pacific/Kiritimati"),
                                                         ("PHP", "Pacific/Pago_Pago")]),
       st.integers(946_684_800_000, 253_402_300_799_999))
def test_reading_never_raises(text, settings_, sent_ms):
    result = meaning.read(text, Settings(*settings_), sent_ms)
    assert result.command is None or result.expenses == ()


@pytest.mark.parametrize("text", ["coffee 5", "summary", "how much?", "budget food 3", "coffee 5 yesterday"])
def test_the_last_moment_of_year_9999_ahead_of_utc_is_stored_without_a_5xx(bot, graph, text):
    converse(bot, graph, ["timezone Pacific/Kiritimati"])
    response = Client(bot).post_webhook(delivery(event(text, 1, 253_402_300_799_999)))  # 9999-12-31T23:59:59.999Z
    assert response.status == 200
    assert query(bot, "SELECT count(*) FROM messages_raw WHERE text = ?", text) == [(1,)]
