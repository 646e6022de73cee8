"""What a person texting the bot runs into, tried by hand and kept: each case failed before its fix."""

from __future__ import annotations

import pytest
from conftest import Client, delivery, query
from test_chat_table import PSID, T0, converse, event, expenses

from expensebot.chat import meaning
from expensebot.replies import words
from expensebot.settings import Settings


def edit(mid: str, text: str, timestamp: int, num_edit: int = 1) -> dict:
    return {"sender": {"id": PSID}, "recipient": {"id": "1"}, "timestamp": timestamp,
            "message_edit": {"mid": mid, "text": text, "num_edit": num_edit}}


@pytest.mark.parametrize("first, edited", [
    ("budget food 300", "budget food 400"),
    ("currency EUR", "currency JPY"),
    ("timezone Manila", "timezone Tokyo"),
    ("coffee 5", "undo"),
    ("coffee 5", "budget food 50"),
    ("budget food 300", "budget food off"),
])
def test_an_edit_into_a_command_changes_nothing_and_says_so(bot, graph, first, edited):
    client = Client(bot)
    assert client.post_webhook(delivery(event(first, 0, T0))).status == 200
    before = [query(bot, f"SELECT * FROM {table}") for table in ("expenses", "budgets", "people")]
    assert client.post_webhook(delivery(edit(f"m_{T0}_0", edited, T0 + 60_000))).status == 200
    assert [query(bot, f"SELECT * FROM {table}") for table in ("expenses", "budgets", "people")] == before
    reply = graph.requests[-1]["json"]["message"]["text"]
    assert reply == f'Edits are not carried out as commands, so nothing changed. Send "{edited}" as a new message.'


@pytest.mark.parametrize("code, example", [
    ("EUR", '"coffee 4.50" is read as 4.50 EUR'),
    ("JPY", '"coffee 450" is read as 450 JPY'),
    ("KWD", '"coffee 4.500" is read as 4.500 KWD'),
])
def test_the_currency_reply_shows_an_example_that_reads_as_it_says(bot, graph, code, example):
    sent = converse(bot, graph, [f"currency {code}", example.split('"')[1]])
    assert example in sent[0]["text"]
    amount = example.rsplit(" as ", 1)[1]
    assert sent[1]["text"].startswith(f"coffee — {amount}, today")


# A number right before a weight or volume is how much was bought, not what it cost.
@pytest.mark.parametrize("text, rows", [
    ("rice 2 kg 10", [(1000, "USD", "rice 2 kg")]),
    ("steak 2 pounds 15", [(1500, "USD", "steak 2 pounds")]),
    ("apples 3 lbs 4.50", [(450, "USD", "apples 3 lbs")]),
    ("gas 10 liters 20", [(2000, "USD", "gas 10 liters")]),
    ("milk 2 L 3", [(300, "USD", "milk 2 L")]),
    ("2 kg rice 10", [(1000, "USD", "2 kg rice")]),
    ("rice 5 pounds", []),
    ("5 pounds", []),
    ("gas 10 gallons", []),
])
def test_a_weight_is_never_read_as_an_amount(bot, graph, text, rows):
    [reply] = converse(bot, graph, [text])
    assert expenses(bot) == rows
    if not rows:
        assert "is a quantity" in reply["text"]


@pytest.mark.parametrize("text", [
    "lunch 12 euros and tip 2",
    "lunch 12 EUR tip 2",
    "coffee 3 tea 2 EUR",
    "sushi 500 yen tea 3",
])
def test_pairs_with_and_without_a_currency_are_not_guessed(bot, graph, text):
    [reply] = converse(bot, graph, [text])
    assert expenses(bot) == []
    assert reply["text"].startswith("Not saved: some amounts have a currency and some don't.")


@pytest.mark.parametrize("text, rows", [
    ("coffee $3 tea 2", [(300, "USD", "coffee"), (200, "USD", "tea")]),
    ("lunch 12 EUR tip 2 EUR", [(1200, "EUR", "lunch"), (200, "EUR", "tip")]),
    ("taxi 20 dollars lunch 5", [(2000, "USD", "taxi"), (500, "USD", "lunch")]),
])
def test_pairs_in_one_currency_stay_read(bot, graph, text, rows):
    converse(bot, graph, [text])
    assert expenses(bot) == rows


@pytest.mark.parametrize("word", sorted(meaning.COMMAND_WORDS - {"help", "tz"}))
def test_help_names_every_command(word):
    assert word in words.HELP
    assert len(words.HELP) < words.MAX_REPLY_CHARS


USD_UTC = Settings("USD", "UTC")
SENT = 1_796_000_000_000  # 2026-11-29


@pytest.mark.parametrize("text, expected", [
    ("timezone London.", "Europe/London"),
    ("timezone Sydney!", "Australia/Sydney"),
    ("timezone Asia/Manila.", "Asia/Manila"),
    ("timezone Manila, Philippines", "Asia/Manila"),
    ("tz new york, ny", "America/New_York"),
    # a US abbreviation is the US zone that keeps daylight saving time, not the fixed-offset 'EST'
    ("timezone EST", "America/New_York"),
    ("timezone est", "America/New_York"),
    ("timezone EDT", "America/New_York"),
    ("timezone CST", "America/Chicago"),
    ("timezone PST", "America/Los_Angeles"),
    ("timezone pdt", "America/Los_Angeles"),
])
def test_a_zone_written_as_people_write_it(text, expected):
    command = meaning.read(text, USD_UTC, SENT).command
    assert (command.name, command.tz) == ("timezone_set", expected)


@pytest.mark.parametrize("text, name, expected", [
    ("budget food off.", "budget_off", "food"),
    ("Budget food off!", "budget_off", "food"),
    ("budget off.", "budget_off", ""),
    ("Summary — 2026", "summary", None),
    ("summary - november", "summary", None),
    ("currency pound", "currency_ask", None),
    ("currency pounds", "currency_ask", None),
    ("currency pounds sterling", "currency_set", None),
    ("how much coffee this month?", "question", "coffee"),
    ("how much food?", "question", "food"),
    ("how much food this week", "question", "food"),
])
def test_commands_with_the_punctuation_people_add(text, name, expected):
    command = meaning.read(text, USD_UTC, SENT).command
    assert command.name == name
    if name in ("budget_off", "question"):
        assert command.category == expected
    if name == "currency_ask":
        assert command.choices[0] == "GBP"
    if name == "currency_set":
        assert command.currency == "GBP"


@pytest.mark.parametrize("texts, note", [
    (["budget taxi 50"], 'Only expenses tagged #taxi count toward it: "taxi" is filed under transport, '
                         'so "budget transport 50.00" would count every taxi.'),
    (["budget coffee 30"], 'Only expenses tagged #coffee count toward it: "coffee" is filed under food, '
                           'so "budget food 30.00" would count every coffee.'),
    (["budget gifts 100"], "Only expenses tagged #gifts count toward it."),
])
def test_a_budget_no_expense_would_fall_in_says_which_expenses_count(bot, graph, texts, note):
    [reply] = converse(bot, graph, texts)
    assert reply["text"].split("\n")[-1] == note


@pytest.mark.parametrize("text", ["budget food 300", "budget 1500", "budget transport 50"])
def test_a_budget_of_a_known_category_needs_no_note(bot, graph, text):
    [reply] = converse(bot, graph, [text])
    assert "tagged" not in reply["text"]


def test_a_redelivered_setting_runs_once_and_does_not_revert_a_later_one(bot, graph):
    client = Client(bot)
    first = event("currency EUR", 0, T0)
    assert client.post_webhook(delivery(first)).status == 200
    assert client.post_webhook(delivery(event("currency JPY", 1, T0 + 1000))).status == 200
    budget = event("budget food 300", 2, T0 + 2000)
    assert client.post_webhook(delivery(budget)).status == 200
    assert client.post_webhook(delivery(event("budget food 500", 3, T0 + 3000))).status == 200
    replies = len(graph.requests)
    # Meta redelivers the old commands, together with a new expense.
    assert client.post_webhook(delivery(first, budget, event("ramen 900", 4, T0 + 4000))).status == 200
    assert query(bot, "SELECT currency FROM people") == [("JPY",)]
    assert query(bot, "SELECT category, amount_minor, currency FROM budgets") == [("food", 500, "JPY")]
    assert expenses(bot) == [(900, "JPY", "ramen")]
    assert [r["json"]["message"]["text"] for r in graph.requests[replies:]] == [
        "ramen — 900 JPY, today\nToday: 900 JPY\nFood: 900 of 500 JPY — over budget by 400 JPY."]


def test_an_edit_into_a_setting_does_not_change_how_the_next_message_is_read(bot, graph):
    client = Client(bot)
    assert client.post_webhook(delivery(event("currency EUR", 0, T0))).status == 200
    assert client.post_webhook(delivery(edit(f"m_{T0}_0", "currency JPY", T0 + 1000),
                                        event("lunch 12", 1, T0 + 2000))).status == 200
    assert expenses(bot) == [(1200, "EUR", "lunch")]


@pytest.mark.parametrize("text", ["currency dollars", "currency dollar", "currency bucks", "currency rupees"])
def test_currency_of_many_offers_at_most_the_quick_replies_messenger_takes(bot, graph, text):
    [reply] = converse(bot, graph, [text])
    assert 2 <= len(reply["quick_replies"]) <= 13
    assert all(q["payload"].startswith("currency ") for q in reply["quick_replies"])


DAY = 86_400_000


@pytest.mark.parametrize("line, stored_day", [
    ("jeepney 100 pesos", "2025-11-25"),
    ("jeepney 100 pesos yesterday", "2025-11-24"),
    ("jeepney 100 pesos today #transport", "2025-11-25"),
    ("jeepney 100 pesos 2025-11-20", "2025-11-20"),
])
def test_a_currency_picked_the_next_day_keeps_the_day_of_the_line(bot, graph, line, stored_day):
    client = Client(bot)
    assert client.post_webhook(delivery(event(line, 0, T0))).status == 200
    ask = graph.requests[-1]["json"]["message"]
    php = next(q for q in ask["quick_replies"] if q["title"] == "PHP")
    tap = {"sender": {"id": PSID}, "recipient": {"id": "1"}, "timestamp": T0 + DAY,
           "message": {"mid": "m_tap", "text": "PHP", "quick_reply": {"payload": php["payload"]}}}
    assert client.post_webhook(delivery(tap)).status == 200
    assert query(bot, "SELECT amount_minor, currency, substr(occurred_at, 1, 10) FROM expenses") == [
        (10000, "PHP", stored_day)]
    assert len(php["payload"]) <= 1000


# Several amounts on a line: a pair whose item is only a joining word ('x 2', '@ 3', 'at 3') is no
# expense, so the line can't be split with certainty; and a count is a quantity like a weight.
@pytest.mark.parametrize("text, rows", [
    ("coffee 3 x 2", []),
    ("coffee 3 × 2", []),
    ("coffee 2 @ 3", []),
    ("coffee 2 at 3", []),
    ("coffee 2 each 3", []),
    ("pizza for 4 people 40", [(4000, "USD", "pizza for 4 people")]),
    ("hotel 3 nights 300", [(30000, "USD", "hotel 3 nights")]),
    ("lunch 12 and coffee 3", [(1200, "USD", "lunch"), (300, "USD", "coffee")]),
    ("bus 2 + coffee 3", [(200, "USD", "bus"), (300, "USD", "coffee")]),
    ("coffee €4.50 and cake €3", [(450, "EUR", "coffee"), (300, "EUR", "cake")]),
])
def test_several_amounts_split_only_into_real_items(bot, graph, text, rows):
    [reply] = converse(bot, graph, [text])
    assert expenses(bot) == rows
    if not rows:
        assert reply["text"].startswith("Not saved: I see more than one amount")


# Written before the amount, the local abbreviations of a currency are that currency, never the default.
@pytest.mark.parametrize("texts, rows, asked", [
    (["Rs 100 chai"], [], "(INR, PKR, LKR, NPR, MUR, SCR)"),
    (["currency INR", "Rs 100 chai"], [(10000, "INR", "chai")], None),
    (["currency INR", "Rs. 100 chai"], [(10000, "INR", "chai")], None),
    (["currency INR", "chai 100 rs"], [(10000, "INR", "chai")], None),
    (["RM 10 lunch"], [(1000, "MYR", "lunch")], None),
    (["lunch 10 rm"], [(1000, "MYR", "lunch")], None),
    (["kr 50 coffee"], [], "(SEK, NOK, DKK, ISK)"),
    (["currency SEK", "kr 50 coffee"], [(5000, "SEK", "coffee")], None),
])
def test_rupees_ringgit_and_kronor_abbreviated(bot, graph, texts, rows, asked):
    sent = converse(bot, graph, texts)
    assert expenses(bot) == rows
    if asked:
        assert asked in sent[-1]["text"]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_year_and_month_answers_equal_sql_sums_at_new_year_in_the_persons_zone(tmp_path, graph, open_service, zone):
    """Expenses a minute either side of local New Year; each answer equals the SQL sum over local bounds."""
    import datetime as dt
    import re
    import zoneinfo

    from conftest import make_config, psid_hash
    tz = zoneinfo.ZoneInfo(zone)
    new_year = dt.datetime(2026, 1, 1, tzinfo=tz)
    ms = lambda when: int(when.timestamp() * 1000)  # noqa: E731
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config, now=lambda: new_year + dt.timedelta(hours=1),
                       reply_backoff=(0, 0, 0))
    client = Client(bot)
    script = [(new_year - dt.timedelta(days=2), f"timezone {zone}"),
              (new_year - dt.timedelta(minutes=1), "lunch 10 #food"),
              (new_year + dt.timedelta(minutes=1), "dinner 7 #food"),
              (new_year + dt.timedelta(minutes=2), "taxi 3"),
              (new_year + dt.timedelta(minutes=3), "summary 2025"),
              (new_year + dt.timedelta(minutes=4), "summary"),
              (new_year + dt.timedelta(minutes=5), "how much on food last year?"),
              (new_year + dt.timedelta(minutes=6), "what did I spend yesterday?"),
              (new_year + dt.timedelta(minutes=7), "food this year?"),
              (new_year + dt.timedelta(minutes=8), "summary december")]
    for n, (when, text) in enumerate(script):
        assert client.post_webhook(delivery(event(text, n, ms(when)))).status == 200
    texts = [r["json"]["message"]["text"] for r in graph.requests][4:]

    def sql(start, end, category=None):
        utc = lambda d: d.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
        [(total,)] = query(bot, "SELECT printf('%.2f', coalesce(sum(amount_minor), 0) / 100.0) FROM expenses"
                                " WHERE psid_hash = ? AND occurred_at >= ? AND occurred_at < ?"
                                + (" AND category = ?" if category else ""),
                           psid_hash(PSID), utc(start), utc(end), *([category] if category else []))
        return total

    year_2025 = (dt.datetime(2025, 1, 1, tzinfo=tz), new_year)
    year_2026 = (new_year, dt.datetime(2027, 1, 1, tzinfo=tz))
    december = (dt.datetime(2025, 12, 1, tzinfo=tz), new_year)
    expected = [sql(*year_2025), sql(new_year, dt.datetime(2026, 2, 1, tzinfo=tz)), sql(*year_2025, "food"),
                sql(dt.datetime(2025, 12, 31, tzinfo=tz), new_year), sql(*year_2026, "food"), sql(*december)]
    shown = [re.search(r": ([0-9.]+) USD", text)[1] for text in texts]
    assert shown == expected == ["10.00", "10.00", "10.00", "10.00", "7.00", "10.00"]


def test_a_line_asked_about_beside_saved_ones_says_what_to_pick(bot, graph):
    [reply] = converse(bot, graph, ["coffee 5\njeepney 100 pesos"])
    assert reply["text"] == ("coffee — 5.00 USD, today\n"
                             "Line 2 not saved yet: which currency did you mean? (PHP, MXN, ARS, CLP, COP, DOP) "
                             "Pick one, or write the code: \"jeepney 100 PHP\".\n"
                             "Today: 5.00 USD")
    assert [q["title"] for q in reply["quick_replies"]] == ["PHP", "MXN", "ARS", "CLP", "COP", "DOP"]


@pytest.mark.parametrize("text, label", [
    ("what did I spend on 2026-11-20?", "2026-11-20"),
    ("how much did I spend on november?", "November 2026"),
    ("how much on yesterday", "Yesterday"),
])
def test_a_question_about_a_day_after_on(text, label):
    command = meaning.read(text, USD_UTC, SENT).command
    assert (command.name, command.period.label, command.category) == ("question", label, None)


@pytest.mark.parametrize("text, rows", [
    ("coffee 3 x2", []),
    ("coffee 3 X2", []),
    ("coffee 3 ×2", []),
    ("coffee 3 2x", []),
    ("coffee 3 *2", []),
    ("2x coffee 6", [(600, "USD", "2x coffee")]),
    ("coffee x2 6", [(600, "USD", "coffee x2")]),
])
def test_a_multiplier_after_the_amount_is_asked_about(bot, graph, text, rows):
    [reply] = converse(bot, graph, [text])
    assert expenses(bot) == rows
    if not rows:
        assert reply["text"] == ("Not saved: I can't tell if the amount is for one or for all.\n"
                                 "Write the total after the count: \"2 coffees 6\".")


@pytest.mark.parametrize("text", [
    "budget food 300 a month", "budget food 300 per month", "budget food 300 monthly", "budget food 300/month",
    "budget food $300/mo", "budget 300 for food", "budget for food 300", "Budget food 300 a month.",
])
def test_a_budget_said_with_its_month(text):
    command = meaning.read(text, USD_UTC, SENT).command
    assert (command.name, command.category, command.amount_minor, command.currency) == (
        "budget_set", "food", 30000, "USD")


LONG = "x" * 190


@pytest.mark.parametrize("texts", [
    ["\n".join(f"{LONG}{n} {n + 1}" for n in range(50))],
    ["\n".join(f"{LONG}{n} 100 pesos" for n in range(50))],
    ["\n".join([f"{LONG} 1"] + [f"{LONG}{n} 100 pesos" for n in range(49)])],
    [*(f"{LONG}{n} {n + 1}" for n in range(12)), "undo 10"],
    [*(f"budget cat{n} {n + 1}" for n in range(80)), "budgets"],
    [*(f"lunch 5 {code}" for code in ("EUR", "JPY", "GBP", "PHP", "INR", "AUD", "CAD", "CHF", "SEK", "NOK",
                                      "DKK", "PLN", "HUF", "TRY", "ILS", "THB", "KRW", "VND", "IDR", "MYR",
                                      "BRL", "ZAR", "MXN", "ARS", "CLP", "COP", "NGN", "KES", "AED", "SAR")),
     "summary", "how much on lunch?"],
    ["budget " + "a" * 32 + " 5", "lunch 5 #" + "a" * 32],
])
def test_every_reply_fits_in_one_message(bot, graph, texts):
    for reply in converse(bot, graph, texts):
        assert len(reply["text"]) < 2000
        assert len(reply.get("quick_replies", ())) <= 13
        assert all(len(q["payload"]) <= 1000 and len(q["title"]) <= 20 for q in reply.get("quick_replies", ()))


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u2060", "\u200e", "\u200d"])
@pytest.mark.parametrize("text, name", [("summary 2026", "summary"), ("undo 2", "undo"),
                                        ("budget food 300", "budget_set"), ("how much on food?", "question")])
def test_an_invisible_character_before_a_command_keeps_it_a_command(invisible, text, name):
    read = meaning.read(invisible + text, USD_UTC, SENT)
    assert read.command is not None and read.command.name == name
    assert not read.expenses


@pytest.mark.parametrize("text", ["undo that", "Undo last", "undo it", "undo the last one", "undo last one!"])
def test_undo_said_in_words(text):
    assert meaning.read(text, USD_UTC, SENT).command == meaning.Command("undo")


def test_a_question_counts_plurals_and_words_with_punctuation(bot, graph):
    sent = converse(bot, graph, ["coffee 4", "2 coffees 10", "coffee, croissant 6", "Coffee! 3", "coffeemaker 50",
                                 "iced-coffee 2", "how much on coffee?"])
    assert sent[-1]["text"] == "This month, coffee: 23.00 USD in 4 expenses"


def test_a_currency_picked_for_the_longest_line_is_still_saved(bot, graph):
    line = "x" * 490 + " 1 pesos"
    assert len(line) <= 500
    client = Client(bot)
    assert client.post_webhook(delivery(event(line, 0, T0))).status == 200
    php = graph.requests[-1]["json"]["message"]["quick_replies"][0]
    tap = {"sender": {"id": PSID}, "recipient": {"id": "1"}, "timestamp": T0 + 1000,
           "message": {"mid": "m_tap", "text": "PHP", "quick_reply": {"payload": php["payload"]}}}
    assert client.post_webhook(delivery(tap)).status == 200
    assert expenses(bot) == [(100, "PHP", "x" * 200)]  # descriptions are cut at 200


@pytest.mark.parametrize("text, name, value", [
    ("set currency EUR", "currency_set", "EUR"),
    ("change currency to EUR", "currency_set", "EUR"),
    ("currency to eur", "currency_set", "EUR"),
    ("my currency is PHP", "currency_set", "PHP"),
    ("set timezone Manila", "timezone_set", "Asia/Manila"),
    ("change my timezone to Asia/Tokyo", "timezone_set", "Asia/Tokyo"),
    ("set time zone to New York", "timezone_set", "America/New_York"),
    ("timezone is Manila", "timezone_set", "Asia/Manila"),
    ("set budget food 300", "budget_set", None),
])
def test_settings_said_in_a_sentence(text, name, value):
    command = meaning.read(text, USD_UTC, SENT).command
    assert command is not None and command.name == name
    assert value in (None, command.currency, command.tz)
