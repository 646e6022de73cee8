"""The monthly digest, end to end through the real app: given once per person and month, with the
first reply to their first message of a new month in their zone, from the same sums as `summary`."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from conftest import Client, delivery, make_config, message_event, psid_hash, query, services_closed_at_exit, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expensebot.chat.meaning import DELETE_CONFIRM

HEADING = "Your digest of October 2026:"


def ms(moment: str) -> int:
    """'2026-10-20T12:00:00Z' as epoch milliseconds."""
    return int(dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


class Chat:
    """People texting the bot, each message sent at its own moment, the bot's clock at that moment."""

    def __init__(self, service, graph, clock: list):
        self.client, self.graph, self.clock = Client(service), graph, clock
        self.mids = itertools.count()

    def event(self, psid: str, text: str, at: int, **fields) -> dict:
        return message_event(psid, f"m_{psid}_{next(self.mids)}", text, timestamp=at, **fields)

    def send(self, *events: dict) -> list[str]:
        """Post events as one delivery (the clock at the latest); return the texts sent in reply."""
        self.clock[0] = dt.datetime.fromtimestamp(max(e["timestamp"] for e in events) / 1000, dt.timezone.utc)
        before = len(self.graph.delivered)
        assert self.client.post_webhook(delivery(*events)).status == 200
        return self.graph.texts[before:]

    def say(self, psid: str, text: str, at: str | int, **fields) -> str:
        [reply] = self.send(self.event(psid, text, ms(at) if isinstance(at, str) else at, **fields))
        return reply


def digests(replies: list[str]) -> list[str]:
    return [reply for reply in replies if "Your digest of" in reply]


@pytest.fixture
def clock():
    return [dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)]


@pytest.fixture
def chat(tmp_path, graph, open_service, clock):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, replay_interval=0.05, now=lambda: clock[0], reply_backoff=(0, 0, 0))
    return Chat(service, graph, clock)


@pytest.mark.parametrize("zone, october_end_utc, november_start_utc", [
    # 14 hours ahead of UTC: their November starts while it is still October in UTC.
    ("Pacific/Kiritimati", "2026-10-31T09:30:00Z", "2026-10-31T10:30:00Z"),
    # 7 hours behind: it is November in UTC while still October there.
    ("America/Los_Angeles", "2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z"),
], ids=["Kiritimati", "Los_Angeles"])
def test_the_first_message_of_the_persons_november_gets_octobers_digest_once(chat, zone, october_end_utc,
                                                                             november_start_utc):
    chat.say("1", f"timezone {zone}", "2026-10-10T12:00:00Z")
    chat.say("1", "lunch 12 #food", "2026-10-10T12:01:00Z")
    late = chat.say("1", "coffee 4.50", october_end_utc)  # still October in their zone
    assert HEADING not in late
    first = chat.event("1", "taxi 8", ms(november_start_utc))
    [reply] = chat.send(first)
    assert reply.startswith("taxi — 8.00 USD, today\nToday: 8.00 USD\n\n" + HEADING)
    assert reply.split(HEADING + "\n")[1].split("\n") == [
        "October 2026: 16.50 USD in 2 expenses", "Top: food 16.50 USD",
        "Change: first month (no expenses in September 2026).", '("digest off" stops these.)']
    assert chat.send(first) == []  # redelivered: not stored again, so no second reply and no second digest
    second = chat.say("1", "coffee 3", ms(november_start_utc) + 60_000)
    assert second == "coffee — 3.00 USD, today\nToday: 11.00 USD"
    assert len(digests(chat.graph.texts)) == 1
    assert query(chat.client.service, "SELECT psid_hash, month FROM digests") == [(psid_hash("1"), "2026-10")]


def test_two_messages_of_the_month_in_one_delivery_get_one_digest_on_the_earlier(chat):
    chat.say("1", "lunch 12", "2026-10-20T12:00:00Z")
    t = ms("2026-11-02T09:00:00Z")
    later, earlier = chat.event("1", "coffee 2", t + 5000), chat.event("1", "coffee 1", t)
    replies = chat.send(later, earlier)  # in the body, the later one comes first
    [digest] = digests(replies)
    assert digest.startswith("coffee — 1.00 USD, today")
    assert chat.send(earlier, later) == []  # the whole delivery again: nothing new


def test_the_digest_says_the_change_and_the_budgets_october_went_over(chat):
    chat.say("1", "groceries 20 #food", "2026-09-15T12:00:00Z")
    chat.say("1", "sushi 500 JPY", "2026-09-16T12:00:00Z")
    chat.say("1", "budget food 40", "2026-10-01T12:00:00Z")
    chat.say("1", "lunch 12 #food", "2026-10-20T12:00:00Z")
    chat.say("1", "dinner 30 #food", "2026-10-21T12:00:00Z")
    chat.say("1", "taxi 8", "2026-10-22T12:00:00Z")
    reply = chat.say("1", "coffee 3", "2026-11-01T08:00:00Z")
    assert reply.split(HEADING + "\n")[1].split("\n") == [
        "October 2026: 50.00 USD in 3 expenses", "Top: food 42.00 USD, transport 8.00 USD",
        "Change against September 2026: +30.00 USD, -500 JPY",  # per currency: this bot converts nothing
        "Food: 42.00 of 40.00 USD — over budget by 2.00 USD.", '("digest off" stops these.)']


def test_digest_off_stops_it_and_digest_on_brings_it_back(chat):
    chat.say("1", "lunch 12", "2026-10-20T12:00:00Z")
    off = chat.say("1", "digest off", "2026-10-21T12:00:00Z")
    assert off == 'Monthly digest off. Send "digest on" to have it again.'
    assert query(chat.client.service, "SELECT digest FROM people") == [(0,)]
    assert HEADING not in chat.say("1", "coffee 3", "2026-11-01T08:00:00Z")
    assert query(chat.client.service, "SELECT count(*) FROM digests") == [(0,)]
    back = chat.say("1", "digest on", "2026-11-01T09:00:00Z")  # October's was never given: it comes now
    assert back.startswith("Monthly digest on: my first reply in a new month sums up the month before")
    assert HEADING in back
    assert HEADING not in chat.say("1", "digest off", "2026-11-01T10:00:00Z")
    assert chat.say("1", "digest", "2026-11-01T11:00:00Z").startswith("Did you mean the monthly digest?")


def test_a_digest_setting_that_arrives_after_a_later_one_does_not_override_it(chat):
    chat.say("1", "lunch 12", "2026-10-20T12:00:00Z")
    on, off = chat.event("1", "digest on", ms("2026-10-21T12:00:00Z")), chat.event("1", "digest off", ms(
        "2026-10-21T13:00:00Z"))
    chat.send(off)
    [late] = chat.send(on)
    assert late == "That change reached me after a later one about the digest, so the later one stands."
    assert query(chat.client.service, "SELECT digest FROM people") == [(0,)]
    assert HEADING not in chat.say("1", "coffee 3", "2026-11-01T08:00:00Z")


def test_nobody_gets_a_digest_of_a_month_without_expenses(chat):
    chat.say("1", "lunch 12", "2026-09-20T12:00:00Z")  # September only
    chat.say("2", "coffee 3", "2026-10-20T12:00:00Z")
    chat.say("2", "undo", "2026-10-20T12:05:00Z")  # October's only expense taken back
    assert HEADING not in chat.say("1", "coffee 3", "2026-11-01T08:00:00Z")
    assert HEADING not in chat.say("2", "coffee 3", "2026-11-01T08:00:00Z")
    assert HEADING not in chat.say("3", "coffee 3", "2026-11-01T08:00:00Z")  # a newcomer
    assert "Your digest of September 2026:" in chat.say("1", "tea 2", "2026-10-01T08:00:00Z")  # by time, not arrival
    assert query(chat.client.service, "SELECT month FROM digests") == [("2026-09",)]


def test_the_digest_is_given_once_across_a_restart(tmp_path, graph, clock):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    for n, (text, at) in enumerate([("lunch 12", "2026-10-20T12:00:00Z"), ("coffee 3", "2026-11-01T08:00:00Z"),
                                    ("coffee 4", "2026-11-01T09:00:00Z")]):
        with services_closed_at_exit() as open_service:  # a restart before each message
            chat = Chat(open_service(config, now=lambda: clock[0], reply_backoff=(0, 0, 0)), graph, clock)
            chat.mids = itertools.count(n)
            chat.say("1", text, at)
    assert len(digests(graph.texts)) == 1 and HEADING in graph.texts[1]


def test_the_digest_carries_the_report_button_when_reports_are_set_up(tmp_path, graph, open_service, clock):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url,
                         public_url="https://bot.example.org")
    chat = Chat(open_service(config, now=lambda: clock[0], reply_backoff=(0, 0, 0)), graph, clock)
    chat.say("1", "lunch 12", "2026-10-20T12:00:00Z")
    chat.say("1", "coffee 3", "2026-11-01T08:00:00Z")
    payload = graph.delivered[-1]["message"]["attachment"]["payload"]
    assert HEADING in payload["text"] and len(payload["text"]) <= 640
    [button] = payload["buttons"]
    assert button["title"] == "Open report" and button["url"].startswith("https://bot.example.org/report/")
    assert graph.delivered[-1]["messaging_type"] == "RESPONSE"


def test_delete_my_data_leaves_no_digest_mark_and_no_setting(chat):
    chat.say("1", "lunch 12", "2026-10-20T12:00:00Z")
    chat.say("1", "digest on", "2026-11-01T08:00:00Z")
    assert query(chat.client.service, "SELECT count(*) FROM digests") == [(1,)]
    asked = chat.say("1", "delete my data", "2026-11-01T09:00:00Z")
    assert HEADING not in asked
    chat.say("1", "Yes, delete", "2026-11-01T09:01:00Z", quick_reply={"payload": DELETE_CONFIRM})
    service = chat.client.service
    assert query(service, "SELECT count(*) FROM digests") == [(0,)]
    assert query(service, "SELECT count(*) FROM people") == [(0,)]


amounts = st.integers(min_value=1, max_value=10**7)


def expense_line(amount: int, currency: str, tag: str) -> str:
    written = str(amount) if currency == "JPY" else f"{amount // 100}.{amount % 100:02d}"
    return f"thing {written} {currency}{tag}"


expense_lines = st.builds(expense_line, amounts, st.sampled_from(["USD", "EUR", "JPY"]),
                          st.sampled_from(["", " #food", " #transport", " #travel", " #fun"]))


@pytest.fixture
def converting_chat(tmp_path, graph, ecb, open_service, clock):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05, now=lambda: clock[0], reply_backoff=(0, 0, 0))
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)
    return Chat(service, graph, clock)


_people = itertools.count(1000)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(october=st.lists(st.tuples(expense_lines, st.integers(0, 30 * 24 * 3600 - 1)), min_size=1, max_size=6),
       september=st.lists(st.tuples(expense_lines, st.integers(0, 29 * 24 * 3600 - 1)), max_size=3),
       currency=st.sampled_from(["USD", "EUR", "JPY"]))
def test_the_digests_totals_are_summarys_for_that_month(converting_chat, october, september, currency):
    chat, psid = converting_chat, str(next(_people))
    chat.say(psid, f"currency {currency}", "2026-09-01T00:00:00Z")
    for month, lines in (("2026-09-01T00:00:01Z", september), ("2026-10-01T00:00:00Z", october)):
        for line, second in lines:
            chat.say(psid, line, ms(month) + second * 1000)
    digest = chat.say(psid, "hello", "2026-11-01T09:00:00Z")
    summary = chat.say(psid, "summary 2026-10", "2026-11-01T09:01:00Z")
    assert f"Your digest of October 2026:\n{summary}\nChange" in digest
