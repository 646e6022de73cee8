import dataclasses
import datetime
import random

import pytest

from expensebot.chat.parser import (
    BAD_RATE,
    MAX_EXPENSES_PER_MESSAGE,
    MAX_LINE_LENGTH,
    TOO_MANY,
    ParsedExpense,
    ParseResult,
    RejectedLine,
    parse_line,
    parse_message,
)
from expensebot.money import MAX_AMOUNT_MINOR, format_amount, is_currency

TODAY = datetime.date(2026, 3, 15)
YESTERDAY = datetime.date(2026, 3, 14)
AMBIGUOUS = "ambiguous amount"
NOT_POSITIVE = "amount must be positive"
TOO_LARGE = "amount too large"
TOO_PRECISE = "too many decimal places"
NO_AMOUNT = "no amount"


def ok(amount_minor, currency, description, category=None, date=TODAY):
    """Describe an expected expense as (amount_minor, currency, description, category, date)."""
    return amount_minor, currency, description, category, date


# text -> what one line (line 0) reads as, or {line index: outcome} for a whole message.
# An outcome is ok(...) for an expense or the rejection reason.
MESSAGES = [
    # the examples the bot promises to read, word for word
    ("coffee 100", ok(10000, "USD", "coffee")),
    ("100 coffee", ok(10000, "USD", "coffee")),
    ("Coffee 4.50", ok(450, "USD", "Coffee")),
    ("taxi 12,50", ok(1250, "USD", "taxi")),
    ("$4.50 latte", ok(450, "USD", "latte")),
    ("€12 lunch", ok(1200, "EUR", "lunch")),
    ("lunch 250 PHP", ok(25000, "PHP", "lunch")),
    ("rent 1,200", ok(120000, "USD", "rent")),
    ("laptop 1.5k", ok(150000, "USD", "laptop")),
    ("lunch 12 #food", ok(1200, "USD", "lunch", "food")),
    ("coffee 3 yesterday", ok(300, "USD", "coffee", date=YESTERDAY)),
    ("coffee 3 2026-11-20", ok(300, "USD", "coffee", date=datetime.date(2026, 11, 20))),
    ("summary", NO_AMOUNT),
    ("summary week", NO_AMOUNT),
    ("summary today", NO_AMOUNT),
    ("undo", NO_AMOUNT),
    ("help", NO_AMOUNT),
    ("delete my data", NO_AMOUNT),
    ("hello", NO_AMOUNT),
    # comma or period
    ("rent 1.200", ok(120000, "USD", "rent")),
    ("tv 1,200.50", ok(120050, "USD", "tv")),
    ("tv 1.200,50", ok(120050, "USD", "tv")),
    ("car 1,234,567.89", ok(123456789, "USD", "car")),
    ("car 1.234.567,89", ok(123456789, "USD", "car")),
    ("car 1,234,567", ok(123456700, "USD", "car")),
    ("coffee 4.5", ok(450, "USD", "coffee")),
    ("coffee 4,5", ok(450, "USD", "coffee")),
    ("coffee 05.50", ok(550, "USD", "coffee")),
    ("x 1,20,0", AMBIGUOUS),
    ("x 1.2.3", AMBIGUOUS),
    ("x 1,00,000", AMBIGUOUS),
    ("x 1,200.000,50", AMBIGUOUS),
    ("x 1,2.50", AMBIGUOUS),
    ("coffee 0,500", AMBIGUOUS),
    # three digits after one separator group thousands, whatever they are
    ("gas 4.505 USD", ok(450500, "USD", "gas")),
    ("gas 4.5055 USD", TOO_PRECISE),
    ("gas 1,234.567 USD", TOO_PRECISE),
    # thousands suffix
    ("bike 2K", ok(200000, "USD", "bike")),
    ("$1.5k phone", ok(150000, "USD", "phone")),
    ("trip 0.5k EUR", ok(50000, "EUR", "trip")),
    ("tablet 1.5k JPY", ok(1500, "JPY", "tablet")),
    ("bonus 1.2345k", ok(123450, "USD", "bonus")),
    ("laptop 1.250k", AMBIGUOUS),
    # currencies without cents, or with three minor digits
    ("sushi 1500 JPY", ok(1500, "JPY", "sushi")),
    ("ramen ¥1.500", ok(1500, "JPY", "ramen")),
    ("sushi 12.5 JPY", TOO_PRECISE),
    ("fuel KWD 1.250", ok(1250, "KWD", "fuel")),
    ("fuel 1,250 KWD", ok(1250, "KWD", "fuel")),
    ("fuel 1.5 KWD", ok(1500, "KWD", "fuel")),
    ("fuel 1,250.500 KWD", ok(1250500, "KWD", "fuel")),
    ("fuel 1.2505 KWD", TOO_PRECISE),
    ("bibimbap ₩12000", ok(12000, "KRW", "bibimbap")),
    ("pho 50000₫", ok(50000, "VND", "pho")),
    # currency codes and symbols, before and after
    ("PHP 250 lunch", ok(25000, "PHP", "lunch")),
    ("lunch 250 php", ok(25000, "PHP", "lunch")),
    ("pizza 12€", ok(1200, "EUR", "pizza")),
    ("latte 4.50$", ok(450, "USD", "latte")),
    ("USD 4.50 snack", ok(450, "USD", "snack")),
    ("snack 4.50usd", ok(450, "USD", "snack")),
    ("snack usd4.50", ok(450, "USD", "snack")),
    ("book 4,50€", ok(450, "EUR", "book")),
    ("$ 5 coffee", ok(500, "USD", "coffee")),
    ("coffee 5 €", ok(500, "EUR", "coffee")),
    ("souvenir US$5", ok(500, "USD", "souvenir")),
    ("beer A$20", ok(2000, "AUD", "beer")),
    ("taxi ₱250", ok(25000, "PHP", "taxi")),
    ("chai ₹40", ok(4000, "INR", "chai")),
    ("tea £3", ok(300, "GBP", "tea")),
    ("kebab 150₺", ok(15000, "TRY", "kebab")),
    ("PHP lunch 250", ok(25000, "PHP", "lunch")),
    ("tea 5", ok(500, "USD", "tea")),
    ("pen 5", ok(500, "USD", "pen")),
    ("top up 20", ok(2000, "USD", "top up")),
    ("taxi 5 PEN", ok(500, "PEN", "taxi")),
    ("lunch 250 TRY", ok(25000, "TRY", "lunch")),
    ("4.50USD", ok(450, "USD", "")),
    ("12", ok(1200, "USD", "")),
    ("PHP EUR lunch 5", "ambiguous currency"),
    ("$5 €6", AMBIGUOUS),
    ("5 USD 10", AMBIGUOUS),
    ("USD 5 EUR", AMBIGUOUS),
    # which number is the amount
    ("2 coffees 10", ok(1000, "USD", "2 coffees")),
    ("2 coffees $10", ok(1000, "USD", "2 coffees")),
    ("2 coffees 10 people", AMBIGUOUS),
    ("7eleven snacks 5", ok(500, "USD", "7eleven snacks")),
    ("b2b lunch 30", ok(3000, "USD", "b2b lunch")),
    ("rice 5kg 10", ok(1000, "USD", "rice 5kg")),
    ("tip 5% 20", ok(2000, "USD", "tip 5%")),
    ("paid 2026-11-20 40", ok(4000, "USD", "paid", date=datetime.date(2026, 11, 20))),
    ("2026-11-20", NO_AMOUNT),
    ("coffee 1e5", NO_AMOUNT),
    ("coffee ５", NO_AMOUNT),
    # signs and limits
    ("-5 coffee", NOT_POSITIVE),
    ("coffee -5", NOT_POSITIVE),
    ("mug −5", NOT_POSITIVE),
    ("refund $-5", NOT_POSITIVE),
    ("coffee 0", NOT_POSITIVE),
    ("coffee 0.00", NOT_POSITIVE),
    ("coffee 99999999999999999999", TOO_LARGE),
    ("x " + "9" * 490, TOO_LARGE),
    ("yacht 10000000000", ok(MAX_AMOUNT_MINOR, "USD", "yacht")),
    ("yacht 10000000000.01", TOO_LARGE),
    ("jet 1000000000001 JPY", TOO_LARGE),
    ("yacht 1000000000k", TOO_LARGE),
    # whatever people paste
    ("☕ 4.50", ok(450, "USD", "☕")),
    ("🍕🍕 pizza night 18 #food 🎉", ok(1800, "USD", "🍕🍕 pizza night 🎉", "food")),
    ("coffee\x00 5", ok(500, "USD", "coffee")),
    ("\x00\x00 3 tea", ok(300, "USD", "tea")),
    ("'; DROP TABLE expenses; -- 5", ok(500, "USD", "'; DROP TABLE expenses")),
    ("Robert'); DROP TABLE expenses;-- 7", ok(700, "USD", "Robert'); DROP TABLE expenses")),
    ("a" * 10_000, "line too long"),
    ("coffee 5 " + "x" * MAX_LINE_LENGTH, "line too long"),
    ("x" * 250 + " 5", ok(500, "USD", "x" * 200)),
    # categories
    ("#food lunch 12", ok(1200, "USD", "lunch", "food")),
    ("Lunch 12 #Food #work", ok(1200, "USD", "Lunch", "food")),
    ("lunch # 12", ok(1200, "USD", "lunch #")),
    ("lunch 12 #Büro", ok(1200, "USD", "lunch", "büro")),
    ("lunch 12 #food,", ok(1200, "USD", "lunch", "food")),
    ("lunch 12 #eating-out", ok(1200, "USD", "lunch", "eating-out")),
    ("lunch 12 #" + "a" * 32, ok(1200, "USD", "lunch", "a" * 32)),
    ("lunch 12 #" + "a" * 33, ok(1200, "USD", "lunch #" + "a" * 33)),
    ("coffee #5", NO_AMOUNT),
    # dates
    ("Yesterday: lunch 12", ok(1200, "USD", "lunch", date=YESTERDAY)),
    ("today lunch 12", ok(1200, "USD", "lunch")),
    ("coffee 5 2026-03-14 yesterday", ok(500, "USD", "coffee", date=YESTERDAY)),
    ("lunch 12 2026-02-30", "invalid date"),
    ("lunch 12 2026-13-01", "invalid date"),
    ("coffee 5 0999-01-01", "date out of range"),
    ("coffee 5 2003-12-31", "date out of range"),
    ("coffee 5 2004-01-01", ok(500, "USD", "coffee", date=datetime.date(2004, 1, 1))),
    ("coffee 5 yesterday 2026-01-01", "ambiguous date"),
    # punctuation between description and amount
    ("coffee: 100", ok(10000, "USD", "coffee")),
    ("coffee - 100", ok(10000, "USD", "coffee")),
    ("coffee — 100", ok(10000, "USD", "coffee")),
    ("coffee 100.", ok(10000, "USD", "coffee")),
    ("  coffee   with \t milk   3  ", ok(300, "USD", "coffee with milk")),
    ("a\u2028b 5", ok(500, "USD", "a b")),
    # several lines
    ("coffee 100\nhello\n\n$4.50 latte", {
        0: ok(10000, "USD", "coffee"), 1: NO_AMOUNT, 3: ok(450, "USD", "latte"),
    }),
    ("taxi 12,50\r\nlunch 250 PHP\rundo", {
        0: ok(1250, "USD", "taxi"), 1: ok(25000, "PHP", "lunch"), 2: NO_AMOUNT,
    }),
    ("lunch 12 #food\n-5 refund\ncoffee 3 yesterday", {
        0: ok(1200, "USD", "lunch", "food"),
        1: NOT_POSITIVE,
        2: ok(300, "USD", "coffee", date=YESTERDAY),
    }),
    ("\n\n   \n\x00\n", {}),
]


def expected_result(expected):
    """Build the ParseResult a table row describes."""
    outcomes = expected if isinstance(expected, dict) else {0: expected}
    lines = [expected_line(index, outcome) for index, outcome in outcomes.items()]
    return ParseResult(
        expenses=tuple(line for line in lines if isinstance(line, ParsedExpense)),
        rejected=tuple(line for line in lines if isinstance(line, RejectedLine)),
    )


def expected_line(index, outcome):
    """Build the ParsedExpense or RejectedLine one outcome describes."""
    if isinstance(outcome, str):
        return RejectedLine(index, outcome)
    return ParsedExpense(index, *outcome)


def row_id(value):
    """Keep test ids short even for the 10,000-character line."""
    return ascii(value)[:40] if isinstance(value, str) else None


@pytest.mark.parametrize(("text", "expected"), MESSAGES, ids=row_id)
def test_parse_message(text, expected):
    result = parse_message(text, default_currency="USD", today=TODAY)

    assert result == expected_result(expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [row for row in MESSAGES if not isinstance(row[1], dict)],
    ids=row_id,
)
def test_parse_line(line, expected):
    result = parse_line(line, default_currency="USD", today=TODAY, index=7)

    assert result == expected_line(7, expected)


@pytest.mark.parametrize(("line", "default_currency", "expected"), [
    ("$5 coffee", "CAD", ok(500, "CAD", "coffee")),
    ("$5 coffee", "EUR", ok(500, "USD", "coffee")),
    ("¥500 tea", "CNY", ok(50000, "CNY", "tea")),
    ("¥500 tea", "USD", ok(500, "JPY", "tea")),
    ("coffee 100", "JPY", ok(100, "JPY", "coffee")),
    ("coffee 1.5", "JPY", TOO_PRECISE),
    ("coffee 1.250", "KWD", ok(1250, "KWD", "coffee")),
    ("coffee 1,250", "EUR", ok(125000, "EUR", "coffee")),
    ("coffee 5 USD", "PHP", ok(500, "USD", "coffee")),
])
def test_default_currency(line, default_currency, expected):
    result = parse_line(line, default_currency=default_currency, today=TODAY)

    assert result == expected_line(0, expected)


@pytest.mark.parametrize("default_currency", ["usd", "TEA", ""])
def test_default_currency_must_be_an_iso_code(default_currency):
    with pytest.raises(ValueError):
        parse_message("coffee 5", default_currency=default_currency, today=TODAY)


def parsed_examples():
    """Yield every expense the table reads, for the round trip."""
    for text, _ in MESSAGES:
        yield from parse_message(text, default_currency="USD", today=TODAY).expenses


def test_formatted_amount_reads_back_the_same():
    expenses = [e for e in parsed_examples() if not any(c.isdigit() for c in e.description)]
    assert len(expenses) > 50
    for expense in expenses:
        line = f"{expense.description} {format_amount(expense.amount_minor, expense.currency)}"

        result = parse_line(line, default_currency="USD", today=TODAY)

        assert (result.amount_minor, result.currency) == (expense.amount_minor, expense.currency)


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "KWD", "BHD", "KRW", "PHP"])
@pytest.mark.parametrize("amount_minor", [1, 5, 99, 100, 999, 1000, 1234567, MAX_AMOUNT_MINOR])
def test_any_amount_reads_back_the_same(amount_minor, currency):
    result = parse_line(f"thing {format_amount(amount_minor, currency)}",
                        default_currency="USD", today=TODAY)

    assert result == ParsedExpense(0, amount_minor, currency, "thing", None, TODAY)


def test_lines_past_the_limit_are_rejected_unread():
    lines = []
    for number in range(1, MAX_EXPENSES_PER_MESSAGE + 4):
        lines += [f"coffee {number}", ""]

    result = parse_message("\n".join(lines), default_currency="USD", today=TODAY)

    assert [e.amount_minor for e in result.expenses] == [
        n * 100 for n in range(1, MAX_EXPENSES_PER_MESSAGE + 1)
    ]
    assert result.expenses[-1].line == 2 * (MAX_EXPENSES_PER_MESSAGE - 1)
    assert result.rejected == (
        RejectedLine(100, TOO_MANY),
        RejectedLine(102, TOO_MANY),
        RejectedLine(104, TOO_MANY),
    )


def test_a_message_holds_at_most_fifty_expenses_however_its_lines_hold_them():
    text = "\n".join(" ".join(f"a {n}" for n in range(1, 101)) for _ in range(50))  # 50 lines x 100 amounts
    result = parse_message(text, default_currency="USD", today=TODAY)
    assert result.expenses == ()  # no line is half-saved: its 100 amounts would pass the 50
    assert result.rejected[0] == RejectedLine(0, TOO_MANY) and len(result.rejected) == 50

    text = "\n".join(["coffee 1 tea 2"] * 26)  # 52 expenses: the line that would pass 50 is left out whole
    result = parse_message(text, default_currency="USD", today=TODAY)
    assert len(result.expenses) == 50
    assert result.rejected == (RejectedLine(25, TOO_MANY),)


def test_rejected_lines_count_towards_the_limit():
    text = "\n".join(["hello"] * MAX_EXPENSES_PER_MESSAGE + ["coffee 5"])

    result = parse_message(text, default_currency="USD", today=TODAY)

    assert result.expenses == ()
    assert result.rejected[-1] == RejectedLine(MAX_EXPENSES_PER_MESSAGE, TOO_MANY)


def test_lone_surrogates_become_replacement_characters():
    result = parse_message("coffee \ud800 5\n\udfff\n\udc00 #tea\ud83d 3",
                           default_currency="USD", today=TODAY)

    assert result == ParseResult(
        expenses=(
            ParsedExpense(0, 500, "USD", "coffee \ufffd", None, TODAY),
            ParsedExpense(2, 300, "USD", "\ufffd #tea\ufffd", None, TODAY),
        ),
        rejected=(RejectedLine(1, NO_AMOUNT),),
    )


def test_yesterday_before_the_first_day_is_an_invalid_date():
    result = parse_line("coffee 5 yesterday", default_currency="USD", today=datetime.date.min)

    assert result == RejectedLine(0, "invalid date")


def test_huge_message_is_read_without_backtracking():
    text = "\n".join(["1," * 249 + "5"] * 2000 + ["9" * 100_000])

    result = parse_message(text, default_currency="USD", today=TODAY)

    assert result.expenses == ()
    assert result.rejected[:MAX_EXPENSES_PER_MESSAGE] == tuple(
        RejectedLine(index, AMBIGUOUS) for index in range(MAX_EXPENSES_PER_MESSAGE)
    )
    assert len(result.rejected) == 2001


def test_random_text_never_raises():
    pieces = list("0123456789.,-+−$€¥£kK#:; \t\n\r\x00\ud800☕aUSDJPYKWDphpkwd") + [
        "yesterday", "today", "2026-02-30", "2026-01-01", "US$", "1,200", "PEN", "pen", "1.5k",
    ]
    rng = random.Random(20260315)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))

        result = parse_message(text, default_currency="USD", today=TODAY)

        for expense in result.expenses:
            assert 0 < expense.amount_minor <= MAX_AMOUNT_MINOR
            assert is_currency(expense.currency)
            expense.description.encode("utf-8")


# Currency names written after an amount; a name of several currencies is the person's own
# when it is one of them, else the line is not read and the choices come back.
@pytest.mark.parametrize(("line", "default_currency", "expected"), [
    ("sushi 500 yen", "USD", ok(500, "JPY", "sushi")),
    ("lunch 12 euros", "USD", ok(1200, "EUR", "lunch")),
    ("lunch 12 Euro.", "PHP", ok(1200, "EUR", "lunch")),
    ("jeepney 100 pesos", "PHP", ok(10000, "PHP", "jeepney")),
    ("tacos 100 pesos", "MXN", ok(10000, "MXN", "tacos")),
    ("jeepney 13 piso", "USD", ok(1300, "PHP", "jeepney")),
    ("taxi 20 dollars", "USD", ok(2000, "USD", "taxi")),
    ("taxi 20 dollars", "CAD", ok(2000, "CAD", "taxi")),
    ("coffee 3 bucks", "AUD", ok(300, "AUD", "coffee")),
    ("chai 30 rupees", "INR", ok(3000, "INR", "chai")),
    ("tea 40 baht", "USD", ok(4000, "THB", "tea")),
    ("kimchi 9000 won", "USD", ok(9000, "KRW", "kimchi")),
    ("pho 50000 dong", "USD", ok(50000, "VND", "pho")),
    ("beer 5 quid", "USD", ok(500, "GBP", "beer")),
    ("beer 5 pounds", "GBP", ok(500, "GBP", "beer")),
    ("koshary 50 pounds", "EGP", ok(5000, "EGP", "koshary")),
    ("rice 5 pounds", "USD", "a weight, volume or count is a quantity, not a price"),  # a weight, for a person in USD
    ("rice 5 pounds 12", "USD", ok(1200, "USD", "rice 5 pounds")),
    ("won 5 bet", "USD", ok(500, "USD", "won bet")),           # a currency word counts only after an amount
    ("real coffee 5", "USD", ok(500, "USD", "real coffee")),
    ("yen 500 sushi", "USD", ok(50000, "USD", "yen sushi")),
    ("jeepney 100 pesos", "USD", "which currency"),
    ("taxi 20 dollars", "PHP", "which currency"),
    ("chai 30 rupees", "USD", "which currency"),
])
def test_currency_words(line, default_currency, expected):
    result = parse_line(line, default_currency=default_currency, today=TODAY)

    if isinstance(expected, str):
        assert (type(result), result.reason) == (RejectedLine, expected)
    else:
        assert result == expected_line(0, expected)


def test_an_ambiguous_currency_word_comes_back_with_the_line_for_each_choice():
    result = parse_line("taxi 20 dollars #transport", default_currency="PHP", today=TODAY)

    assert result.choices[:3] == (("USD", "taxi 20 USD #transport"), ("CAD", "taxi 20 CAD #transport"),
                                  ("AUD", "taxi 20 AUD #transport"))
    assert parse_line(result.choices[1][1], default_currency="PHP", today=TODAY) == ParsedExpense(
        0, 2000, "CAD", "taxi", "transport", TODAY)


# Several amounts on one line: one expense per item-amount pair, or none at all.
@pytest.mark.parametrize(("line", "expected"), [
    ("coffee 4.50 lunch 12", [ok(450, "USD", "coffee"), ok(1200, "USD", "lunch")]),
    ("coffee 4.50, lunch 12", [ok(450, "USD", "coffee"), ok(1200, "USD", "lunch")]),
    ("lunch 12 EUR dinner 20 EUR", [ok(1200, "EUR", "lunch"), ok(2000, "EUR", "dinner")]),
    ("lunch €12 dinner $20", [ok(1200, "EUR", "lunch"), ok(2000, "USD", "dinner")]),
    ("sushi 500 yen ramen 900 yen", [ok(500, "JPY", "sushi"), ok(900, "JPY", "ramen")]),
    ("bus 2 coffee 3 #food", [ok(200, "USD", "bus", "food"), ok(300, "USD", "coffee", "food")]),
    ("bus 2 coffee 3 yesterday", [ok(200, "USD", "bus", date=YESTERDAY), ok(300, "USD", "coffee", date=YESTERDAY)]),
    ("2 coffees 10 3 teas 6", [ok(1000, "USD", "2 coffees"), ok(600, "USD", "3 teas")]),
    ("coffee 4.50 lunch 12 with Bob", [ok(450, "USD", "coffee"), ok(1200, "USD", "lunch with Bob")]),
    ("2 coffees 10", [ok(1000, "USD", "2 coffees")]),
    ("coffee 4.50 12", "several amounts"),
    ("taxi 12 50", "several amounts"),
    ("coffee 4.50 lunch 12 13", "several amounts"),
    ("coffee 4.50 lunch -12", NOT_POSITIVE),
    ("100 coffee 50 tea", AMBIGUOUS),
])
def test_several_amounts_on_one_line(line, expected):
    result = parse_message(line, default_currency="USD", today=TODAY)

    if isinstance(expected, str):
        assert (result.expenses, [r.reason for r in result.rejected]) == ((), [expected])
    else:
        assert result.expenses == tuple(
            dataclasses.replace(expected_line(0, outcome), item=item) for item, outcome in enumerate(expected))


# Local signs written before or after the number, like the other symbols: never the default currency.
@pytest.mark.parametrize(("line", "default_currency", "expected"), [
    ("noodles 100 元", "USD", ok(10000, "CNY", "noodles")),
    ("noodles 100元", "USD", ok(10000, "CNY", "noodles")),
    ("元35 dumplings", "EUR", ok(3500, "CNY", "dumplings")),
    ("bubble tea 60元", "TWD", ok(6000, "TWD", "bubble tea")),   # Taiwan writes its dollar 元 too
    ("milk tea 30元", "HKD", ok(3000, "HKD", "milk tea")),
    ("ramen 800 円", "USD", ok(800, "JPY", "ramen")),
    ("ramen 800円", "USD", ok(800, "JPY", "ramen")),
    ("ramen 800円", "CNY", ok(800, "JPY", "ramen")),
    ("onigiri 1.500円", "USD", ok(1500, "JPY", "onigiri")),
    ("pierogi 100 zł", "USD", ok(10000, "PLN", "pierogi")),
    ("pierogi 100zł", "USD", ok(10000, "PLN", "pierogi")),
    ("pierogi 12,50 zł", "EUR", ok(1250, "PLN", "pierogi")),
    ("nasi goreng Rp 50000", "USD", ok(5000000, "IDR", "nasi goreng")),
    ("nasi goreng Rp50.000", "USD", ok(5000000, "IDR", "nasi goreng")),
    ("Rp 1.500.000 kos", "USD", ok(150000000, "IDR", "kos")),
    ("parkir Rp.5.000", "USD", ok(500000, "IDR", "parkir")),
    ("plov 100 ₸", "USD", ok(10000, "KZT", "plov")),
    ("plov 2500₸", "USD", ok(250000, "KZT", "plov")),
    ("₸800 taxi", "USD", ok(80000, "KZT", "taxi")),
    ("chai ₨100", "PKR", ok(10000, "PKR", "chai")),
    ("chai 100₨", "INR", ok(10000, "INR", "chai")),
    ("₨ 250 momo", "NPR", ok(25000, "NPR", "momo")),
    ("kottu 900 ₨", "LKR", ok(90000, "LKR", "kottu")),
    ("chai 100 ₨", "USD", "which currency"),
    ("chai ₨100", "EUR", "which currency"),
    ("₨ chai 100", "USD", "which currency"),                      # a sign is money wherever it stands
    ("chai ₨", "USD", NO_AMOUNT),
    # the yen sign is as before: the yuan for a person in yuan, else the yen
    ("ramen ¥800", "USD", ok(800, "JPY", "ramen")),
    ("ramen ￥800", "USD", ok(800, "JPY", "ramen")),
    ("noodles ¥30", "CNY", ok(3000, "CNY", "noodles")),
    ("noodles 30￥", "CNY", ok(3000, "CNY", "noodles")),
])
def test_local_currency_signs(line, default_currency, expected):
    result = parse_line(line, default_currency=default_currency, today=TODAY)

    if isinstance(expected, str):
        assert (type(result), result.reason) == (RejectedLine, expected)
    else:
        assert result == expected_line(0, expected)


def test_the_rupee_sign_comes_back_with_the_line_for_each_rupee():
    result = parse_line("chai ₨100 #food", default_currency="USD", today=TODAY)

    assert [code for code, _ in result.choices] == ["INR", "PKR", "LKR", "NPR", "MUR", "SCR"]
    assert result.choices[1] == ("PKR", "chai PKR 100 #food")
    assert parse_line(result.choices[1][1], default_currency="USD", today=TODAY) == ParsedExpense(
        0, 10000, "PKR", "chai", "food", TODAY)


# A three-letter code is a currency where it stands as one: on the amount, in capitals, or in lower
# case right after the amount or first on the line right before it. Elsewhere a lower-case code
# is a word of the description ('svc' a service, 'npr' the radio) and the amount is the person's own.
@pytest.mark.parametrize(("line", "default_currency", "expected"), [
    # words of the description
    ("car svc 40", "USD", ok(4000, "USD", "car svc")),
    ("car svc 40", "PHP", ok(4000, "PHP", "car svc")),
    ("npr donation 25", "USD", ok(2500, "USD", "npr donation")),
    ("Npr donation 25", "EUR", ok(2500, "EUR", "Npr donation")),
    ("donation to npr 25", "USD", ok(2500, "USD", "donation to npr")),
    ("oil change svc 45.50 #car", "USD", ok(4550, "USD", "oil change svc", "car")),
    ("phone scr repair 80", "USD", ok(8000, "USD", "phone scr repair")),
    ("amd ryzen cpu 200", "USD", ok(20000, "USD", "amd ryzen cpu")),
    ("gym mnt fee 30", "USD", ok(3000, "USD", "gym mnt fee")),
    ("sar team gift 50 yesterday", "USD", ok(5000, "USD", "sar team gift", date=YESTERDAY)),
    ("lunch Php 250", "USD", ok(25000, "USD", "lunch Php")),
    ("all you can eat 20", "USD", ok(2000, "USD", "all you can eat")),
    ("top up 20", "USD", ok(2000, "USD", "top up")),
    # currencies
    ("lunch 250 PHP", "USD", ok(25000, "PHP", "lunch")),
    ("lunch 250 php", "USD", ok(25000, "PHP", "lunch")),
    ("250 php lunch", "USD", ok(25000, "PHP", "lunch")),
    ("PHP 250 lunch", "USD", ok(25000, "PHP", "lunch")),
    ("php 250", "USD", ok(25000, "PHP", "")),
    ("Php 250 lunch", "USD", ok(25000, "PHP", "lunch")),
    ("php #food 250 lunch", "USD", ok(25000, "PHP", "lunch", "food")),
    ("lunch PHP 250", "USD", ok(25000, "PHP", "lunch")),
    ("PHP lunch 250", "USD", ok(25000, "PHP", "lunch")),
    ("NPR donation 25", "USD", ok(2500, "NPR", "donation")),
    ("taxi 20 EUR", "USD", ok(2000, "EUR", "taxi")),
    ("taxi 20 eur.", "USD", ok(2000, "EUR", "taxi")),
    ("eur 20 taxi", "USD", ok(2000, "EUR", "taxi")),
    ("4.50usd", "EUR", ok(450, "USD", "")),
    ("usd4.50", "EUR", ok(450, "USD", "")),
    ("car svc40", "USD", ok(4000, "SVC", "car")),
    ("€12 lunch", "USD", ok(1200, "EUR", "lunch")),
    ("lunch 12 eur dinner 20 eur", "USD", [ok(1200, "EUR", "lunch"), ok(2000, "EUR", "dinner")]),
])
def test_a_three_letter_code_is_a_currency_only_where_it_stands_as_one(line, default_currency, expected):
    result = parse_message(line, default_currency=default_currency, today=TODAY)

    outcomes = expected if isinstance(expected, list) else [expected]
    assert result.expenses == tuple(
        dataclasses.replace(expected_line(0, outcome), item=item) for item, outcome in enumerate(outcomes))


# A person's own rate: '<amount> <CURRENCY> @ <rate>' at the end of a line, in units of the
# person's currency per one unit of the expense's. Any other '@' is read as before.
@pytest.mark.parametrize(("line", "expected"), [
    ("sushi 500 JPY @ 0.0062", ok(500, "JPY", "sushi")),
    ("sushi 500 jpy @ 0.0062", ok(500, "JPY", "sushi")),
    ("sushi 500 yen @ 0,0062", ok(500, "JPY", "sushi")),
    ("sushi ¥500 @0.0062", ok(500, "JPY", "sushi")),
    ("sushi 500JPY @ 0.0062 #food", ok(500, "JPY", "sushi", "food")),
    ("sushi 500 JPY @ 0.0062 yesterday", ok(500, "JPY", "sushi", date=YESTERDAY)),
    ("sushi 500 JPY @ 0.0062.", ok(500, "JPY", "sushi")),
    ("sushi 500 JPY @ 000.0062", ok(500, "JPY", "sushi")),
])
def test_a_persons_own_rate_is_read_off_the_end_of_the_line(line, expected):
    result = parse_line(line, default_currency="EUR", today=TODAY)

    assert result == dataclasses.replace(expected_line(0, expected), rate="0.0062")


@pytest.mark.parametrize(("line", "rate"), [
    ("pho 100000 VND @ 0.000036", "0.000036"),  # a currency the ECB has no rate for
    ("hotel 90 USD @ 1", "1"),
    ("flight 300 GBP @ 1.15", "1.15"),
    ("gift 1 JPY @ 1234567890.12", "1234567890.12"),  # 12 digits
    ("tea 3 USD @ 0.000000000001", "0.000000000001"),  # 12 decimals
])
def test_a_rate_is_kept_as_the_decimal_written(line, rate):
    assert parse_line(line, default_currency="EUR", today=TODAY).rate == rate


@pytest.mark.parametrize(("line", "reason"), [
    ("coffee 2 EUR @ 3", "a rate after @ is for an amount in another currency than yours"),
    ("coffee €2 @ 3", "a rate after @ is for an amount in another currency than yours"),
    ("sushi 500 JPY @ 0", BAD_RATE),
    ("sushi 500 JPY @ 0.000", BAD_RATE),
    ("sushi 500 JPY @ -0.0062", BAD_RATE),
    ("sushi 500 JPY @ 1234567890123", BAD_RATE),
    ("sushi 500 JPY @ 1.234567890123", BAD_RATE),
    ("sushi 500 JPY @ 1,000.5", BAD_RATE),
    ("sushi 500 JPY @ 0.0062EUR", BAD_RATE),
    ("sushi 500 JPY @ 1.5k", BAD_RATE),
    ("sushi 500 JPY @ 0.0000000000001", BAD_RATE),  # 13 decimals
    ("coffee 3 EUR sushi 500 JPY @ 0.0062", "a rate after @ goes on a line with one expense"),
    ("coffee 3 sushi 500 JPY @ 0.0062", "some amounts have a currency and some don't"),
    ("car 999999999 JPY @ 999999", TOO_LARGE),
    # not the shape: as before, a pair whose item is '@' makes the line impossible to split
    ("coffee 2 @ 3", "several amounts"),
    ("coffee 2 @ 0.5", "several amounts"),
    ("sushi 500 JPY @ 0.0062 lunch 3", "several amounts"),
    ("sushi 500 @ 0.0062", "several amounts"),
])
def test_a_rate_that_cant_be_taken_is_refused_with_the_reason(line, reason):
    result = parse_line(line, default_currency="EUR", today=TODAY)

    assert (type(result), result.reason) == (RejectedLine, reason)


@pytest.mark.parametrize(("line", "expected"), [
    ("lunch 20 JPY @ home", ok(20, "JPY", "lunch @ home")),  # a place, not a rate
    ("coffee @ cafe 3", ok(300, "EUR", "coffee @ cafe")),
])
def test_an_at_sign_before_a_word_is_part_of_the_description(line, expected):
    result = parse_line(line, default_currency="EUR", today=TODAY)

    assert result == expected_line(0, expected) and result.rate is None
