"""Property-based tests (hypothesis) over the expense parser and the webhook body."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import Client, make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expensebot import money
from expensebot.chat import parser

TODAY = dt.date(2026, 11, 25)
CURRENCIES = sorted(money.MINOR_DIGITS)
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
lines = st.one_of(
    words,
    st.builds(lambda a, n, b: f"{a} {n} {b}", words, st.integers(-10**16, 10**16), words),
    st.builds(lambda a, n: f"{a} {n}", st.sampled_from(["coffee", "$", "€", "USD", "1,2", "1.5k"]),
              st.decimals(allow_nan=False, allow_infinity=False, places=3)),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(lines, max_size=4).map("\n".join), st.sampled_from(["USD", "JPY", "KWD", "EUR"]))
def test_parser_never_raises_and_never_yields_a_bad_amount(text, currency):
    result = parser.parse_message(text, default_currency=currency, today=TODAY)
    for expense in result.expenses:
        assert type(expense.amount_minor) is int
        assert 0 < expense.amount_minor <= money.MAX_AMOUNT_MINOR
        assert money.is_currency(expense.currency)
        expense.description.encode("utf-8")  # storable as SQLite text


@settings(max_examples=1500, deadline=None)
@given(st.integers(1, money.MAX_AMOUNT_MINOR), st.sampled_from(CURRENCIES),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=20).filter(
           # a description that is words only: no currency code ("lsl" is Lesotho's) and no date word
           lambda text: text.strip() and not any(money.is_currency(word.upper()) or word in ("today", "yesterday")
                                                  for word in text.split())))
def test_parse_format_parse_is_stable(amount_minor, currency, description):
    line = f"{description} {money.format_amount(amount_minor, currency)}"
    first = parser.parse_line(line, default_currency="USD", today=TODAY)
    assert isinstance(first, parser.ParsedExpense), (line, first)
    assert (first.amount_minor, first.currency) == (amount_minor, currency)
    again = parser.parse_line(f"{first.description} {money.format_amount(first.amount_minor, first.currency)}",
                              default_currency="USD", today=TODAY)
    assert again == first


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
events = st.fixed_dictionaries({}, optional={
    "sender": st.one_of(json_values, st.fixed_dictionaries({"id": json_values})),
    "recipient": json_values,
    "timestamp": json_values,
    "message": st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "mid": json_values, "text": st.one_of(json_values, lines), "is_echo": json_values,
        "quick_reply": json_values, "attachments": json_values})),
    "message_edit": json_values, "postback": json_values, "delivery": json_values, "read": json_values,
})
bodies = st.fixed_dictionaries({"object": st.sampled_from(["page", "instagram"]) | json_values}, optional={
    "entry": st.one_of(json_values, st.lists(st.fixed_dictionaries({}, optional={
        "id": json_values, "time": json_values,
        "messaging": st.one_of(json_values, st.lists(st.one_of(events, json_values), max_size=4)),
        "standby": json_values}), max_size=3)),
})


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, open_module_service):
    service = open_module_service(make_config(tmp_path_factory.mktemp("fuzz")))
    return Client(service), service


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies)
def test_signed_garbage_never_gets_a_5xx_or_a_bad_row(fuzz_client, body):
    client, service = fuzz_client
    response = client.post_webhook(json.dumps(body).encode())
    assert response.status == 200
    with service.db.connection() as conn:
        bad = conn.execute("SELECT count(*) FROM expenses WHERE amount_minor <= 0 OR amount_minor > ?",
                           (money.MAX_AMOUNT_MINOR,)).fetchone()[0]
    assert bad == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_unsigned_or_unparseable_bytes_get_a_4xx(fuzz_client, raw):
    client, _ = fuzz_client
    assert client.post_webhook(raw).status in (200, 400)
    assert client.post_webhook(raw, secret="wrong").status == 403
