"""Time, not arrival order: a sender's events apply in the order they were sent, however they arrive.

Meta documents that events may arrive out of order (after a failed delivery, in another body, in
another entry of the same body). What is stored must be what applying the same events in the
order they were sent stores.
"""

from __future__ import annotations

import pytest
from conftest import Client, delivery, make_config, message_event, psid_hash, query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expensebot import times
from expensebot.replies import words

T0 = 1764075600000  # 2025-11-25T13:00:00Z
MINUTE = 60_000


def confirm(psid: str, mid: str, timestamp: int) -> dict:
    """The erasure confirmation, as the quick reply's button sends it."""
    return message_event(psid, mid, "Yes, delete", timestamp=timestamp,
                         quick_reply={"payload": words.DELETE_CONFIRM})


def deliver(client: Client, *bodies: list[dict]) -> None:
    for events in bodies:
        assert client.post_webhook(delivery(*events)).status == 200


def expenses(service, psid: str) -> list[tuple]:
    return query(service, "SELECT description, amount_minor, currency FROM expenses WHERE psid_hash = ?"
                          " ORDER BY occurred_at, line", psid_hash(psid))


# --- an erasure removes what was sent up to it, and only that ----------------------------------------

@pytest.mark.parametrize("arrival", ["one body", "two entries", "two deliveries", "confirmation redelivered last"])
def test_an_expense_sent_after_the_erasure_confirmation_is_kept_however_it_arrives(service, arrival):
    client = Client(service)
    deliver(client, [message_event("111", "m_tea", "tea 3", timestamp=T0)])  # sent before: erased
    yes, coffee = confirm("111", "m_yes", T0 + 1000), message_event("111", "m_coffee", "coffee 5", timestamp=T0 + 2000)
    if arrival == "one body":
        deliver(client, [coffee, yes])
    elif arrival == "two entries":
        assert client.post_webhook(delivery(coffee, yes, entries=2)).status == 200
    else:
        deliver(client, [coffee], [yes])
    assert expenses(service, "111") == [("coffee", 500, "USD")]
    assert query(service, "SELECT erased_at FROM erasures") == [(times.iso_utc(T0 + 1000),)]
    deliver(client, [yes], [message_event("111", "m_tea", "tea 3", timestamp=T0)])  # redelivered: nothing changes
    assert expenses(service, "111") == [("coffee", 500, "USD")]


def test_typed_delete_my_data_confirm_erases_nothing(bot, graph):
    client = Client(bot)
    deliver(client, [message_event("111", "m_1", "coffee 5", timestamp=T0)],
            [message_event("111", "m_2", words.DELETE_CONFIRM, timestamp=T0 + 1000)])
    assert expenses(bot, "111") == [("coffee", 500, "USD")]
    assert query(bot, "SELECT count(*) FROM erasures") == [(0,)]
    assert graph.texts[-1] == words.HINT
    deliver(client, [confirm("111", "m_3", T0 + 2000)])  # the button does
    assert expenses(bot, "111") == []


# --- settings apply to what was sent after them ---------------------------------------------------------

@pytest.mark.parametrize("arrival", ["one body", "two entries", "two deliveries", "currency redelivered last"])
def test_a_currency_set_before_an_expense_applies_to_it_however_they_arrive(bot, graph, arrival):
    client = Client(bot)
    lunch = message_event("111", "m_lunch", "lunch 12", timestamp=T0 + 2000)
    currency = message_event("111", "m_eur", "currency EUR", timestamp=T0 + 1000)
    if arrival == "one body":
        deliver(client, [lunch, currency])
    elif arrival == "two entries":
        assert client.post_webhook(delivery(lunch, currency, entries=2)).status == 200
    elif arrival == "two deliveries":
        deliver(client, [currency], [lunch])
    else:
        deliver(client, [lunch], [currency])
        assert graph.texts[-1].endswith("It reached me late: 1 expense you sent after it now follow it too.")
    assert expenses(bot, "111") == [("lunch", 1200, "EUR")]


def test_a_message_that_arrives_after_a_later_setting_is_read_with_the_settings_of_its_own_time(service):
    client = Client(service)
    deliver(client, [message_event("111", "m_eur", "currency EUR", timestamp=T0 + 2000)],
            [message_event("111", "m_coffee", "coffee 5", timestamp=T0 + 1000)])
    assert expenses(service, "111") == [("coffee", 500, "USD")]


def test_a_setting_that_arrives_after_a_later_one_does_not_override_it(bot, graph):
    client = Client(bot)
    deliver(client, [message_event("111", "m_php", "currency PHP", timestamp=T0 + 3000)],
            [message_event("111", "m_tea", "tea 3", timestamp=T0 + 2000)],
            [message_event("111", "m_eur", "currency EUR", timestamp=T0 + 1000)])
    assert query(bot, "SELECT currency FROM people") == [("PHP",)]
    assert expenses(bot, "111") == [("tea", 300, "EUR")]  # sent while EUR was the currency
    assert graph.texts[-1].startswith("That change reached me after a later one, so the later one stands.\n"
                                      "Currency: PHP")


# --- undo takes back the latest expense sent before it --------------------------------------------------

def test_undo_after_editing_an_older_message_removes_the_latest_sent(service):
    client = Client(service)
    deliver(client, [message_event("111", "m_1", "tea 3", timestamp=T0)],
            [message_event("111", "m_2", "coffee 5", timestamp=T0 + 1000)],
            [{"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": T0 + 2000,
              "message_edit": {"mid": "m_1", "text": "tea 4", "num_edit": 1}}],
            [message_event("111", "m_3", "undo", timestamp=T0 + 3000)])
    assert expenses(service, "111") == [("tea", 400, "USD")]


def test_an_undo_that_arrives_after_a_later_expense_takes_back_the_one_before_it(service):
    client = Client(service)
    deliver(client, [message_event("111", "m_1", "tea 3", timestamp=T0)],
            [message_event("111", "m_3", "coffee 5", timestamp=T0 + 2000)],
            [message_event("111", "m_2", "undo", timestamp=T0 + 1000)])
    assert expenses(service, "111") == [("coffee", 500, "USD")]


# --- any order: the rows of applying the events in the order they were sent ----------------------------

SPENDING = st.builds(lambda n, currency: f"item{n} {n}" + (f" {currency}" if currency else ""),
                     st.integers(1, 99), st.sampled_from([None, "EUR", "JPY"]))
DATED = st.builds(lambda n: f"snack{n} {n} yesterday", st.integers(1, 99))
SETTING = st.sampled_from(["currency EUR", "currency JPY", "currency PHP", "timezone Asia/Manila",
                           "timezone America/Los_Angeles"])
ERASE, UNDO = "<erase>", "undo"


def as_event(psid: str, n: int, text: str) -> dict:
    """The n-th event a person sent (a minute apart), with a mid of its own."""
    if text == ERASE:
        return confirm(psid, f"{psid}_m{n}", T0 + n * MINUTE)
    return message_event(psid, f"{psid}_m{n}", text, timestamp=T0 + n * MINUTE)


def rows_of(service, psid: str) -> dict:
    """Everything stored of a person, with mids and identities that name no run."""
    who = (psid_hash(psid),)
    return {
        "expenses": sorted((mid.split("_", 1)[1], *rest) for mid, *rest in query(
            service, "SELECT mid, line, amount_minor, currency, description, occurred_at FROM expenses"
                     " WHERE psid_hash = ?", *who)),
        "messages": sorted(mid.split("_", 1)[1] for (mid,) in query(
            service, "SELECT mid FROM messages_raw WHERE psid_hash = ?", *who)),
        "people": query(service, "SELECT currency, timezone FROM people WHERE psid_hash = ?", *who),
        "erasures": query(service, "SELECT erased_at FROM erasures WHERE psid_hash = ?", *who),
    }


@pytest.fixture(scope="module")
def ordering_service(tmp_path_factory, open_module_service):
    return open_module_service(make_config(tmp_path_factory.mktemp("order")))


_runs = iter(range(10**9))


def check_any_order(service, texts: list[str], arrival: list[int], cuts: list[int]) -> None:
    """Send the events in time order, one delivery each, as one person; and in `arrival` order, cut into
    deliveries at `cuts`, as another; the two must have the same rows."""
    run = next(_runs)
    in_order, any_order = f"9{run:09d}1", f"9{run:09d}2"
    client = Client(service.app)
    for n, text in enumerate(texts):
        assert client.post_webhook(delivery(as_event(in_order, n, text))).status == 200
    shuffled = [as_event(any_order, n, texts[n]) for n in arrival]
    for start, end in zip([0, *cuts], [*cuts, len(shuffled)]):
        if start < end:
            assert client.post_webhook(delivery(*shuffled[start:end])).status == 200
    assert rows_of(service, any_order) == rows_of(service, in_order)


@st.composite
def orders(draw, alphabet):
    texts = draw(st.lists(alphabet, min_size=1, max_size=8))
    arrival = draw(st.permutations(range(len(texts))))
    cuts = sorted(draw(st.lists(st.integers(0, len(texts)), max_size=3)))
    return texts, arrival, cuts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=orders(st.one_of(SPENDING, DATED, SETTING, st.just(ERASE), st.just(UNDO))))
def test_in_one_delivery_any_order_stores_what_time_order_stores(ordering_service, case):
    texts, arrival, _ = case
    check_any_order(ordering_service, texts, arrival, [])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=orders(st.one_of(SPENDING, DATED, SETTING, st.just(ERASE))))
def test_across_deliveries_any_order_stores_what_time_order_stores(ordering_service, case):
    texts, arrival, cuts = case
    check_any_order(ordering_service, texts, arrival, cuts)


def test_a_late_setting_never_moves_an_amount_onto_another_item(service):
    client = Client(service)
    deliver(client, [message_event("111", "m_1", "coffee 4.50\nlunch 1200", timestamp=T0 + 2000)],
            [message_event("111", "m_jpy", "currency JPY", timestamp=T0 + 1000)])
    # Read in yen the first line is no amount (4.50 has cents), so the lines no longer line up:
    # each item keeps its own amount rather than take the other's.
    assert expenses(service, "111") == [("coffee", 450, "USD"), ("lunch", 120000, "USD")]


def test_a_budget_turned_off_stays_off_when_an_earlier_budget_arrives_last(bot):
    client = Client(bot)
    deliver(client, [message_event("111", "m_1", "budget food 300", timestamp=T0)],
            [message_event("111", "m_3", "budget food off", timestamp=T0 + 3000)],
            [message_event("111", "m_2", "budget food 200", timestamp=T0 + 2000)])
    deliver(client, [message_event("111", "m_4", "budgets", timestamp=T0 + 4000)])
    assert query(bot, "SELECT category, amount_minor FROM budgets") == [("food", None)]
    assert bot.outbox.drain(10)
