"""The outbox: each person's replies in commit order, people in parallel, batches, retries, bounded close."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.parse

import pytest
import requests
from conftest import (
    APP_SECRET,
    Client,
    delivery,
    make_config,
    message_event,
    psid_hash,
    query,
    wait_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from standins import ScriptedSendApi
from test_ai import hangs, model  # noqa: F401  (model is a fixture)

from expensebot.ingest import webhook
from expensebot.replies import words

T0 = 1764075600000


def post(bot, *events):
    """Post one delivery; return once its replies are sent or given up."""
    assert Client(bot).post_webhook(delivery(*events)).status == 200


def post_only(bot, *events):
    """Post one delivery; return once it is committed, before its replies are sent."""
    assert Client(bot.app).post_webhook(delivery(*events)).status == 200


def batch_recipients(request) -> list[str]:
    items = json.loads(request["form"]["batch"])
    return [json.loads(urllib.parse.parse_qs(i["body"])["recipient"][0])["id"] for i in items]


def events_of(caplog, name):
    return [r.fields for r in caplog.records if r.msg == name]


def test_batch_items_fail_and_retry_each_on_their_own(bot, graph, caplog):
    graph.fail_item("222", 551)  # person unavailable: never retried
    graph.fail_item("333", 613)  # rate limited: retried
    post(bot, *(message_event(psid, f"m_{psid}", "coffee 1", timestamp=T0) for psid in ("111", "222", "333")))
    first, retry = graph.requests
    assert batch_recipients(first) == ["111", "222", "333"]
    assert retry["json"]["recipient"] == {"id": "333"}  # a lone retry goes as a plain call
    assert sorted(d["recipient"]["id"] for d in graph.delivered) == ["111", "333"]
    assert [(f["psid_hash"], f["code"]) for f in events_of(caplog, "reply_failed")] == [(psid_hash("222"), 551)]
    assert sorted(f["mid"] for f in events_of(caplog, "reply_sent")) == ["m_111", "m_333"]


def test_a_whole_batch_failing_is_retried_for_every_reply(bot, graph, caplog):
    graph.error(1200, status=500)
    post(bot, message_event("111", "m_1", "coffee 1", timestamp=T0), message_event("222", "m_2", "tea 2", timestamp=T0))
    assert [r["path"] for r in graph.requests] == ["/v25.0/", "/v25.0/"]
    assert sorted(d["recipient"]["id"] for d in graph.delivered) == ["111", "222"]
    assert events_of(caplog, "reply_failed") == []


def test_a_plain_429_window_delays_replies_and_drops_none(bot, graph, caplog):
    graph.throttle()  # no Graph error object, no Retry-After: both batches of the 100 replies
    graph.throttle()
    post(bot, *(message_event(str(10**15 + n), f"m_{n}", "coffee 1", timestamp=T0) for n in range(100)))
    assert len(graph.delivered) == 100
    assert events_of(caplog, "reply_failed") == [] and events_of(caplog, "reply_dropped") == []


def test_a_retry_waits_as_long_as_retry_after_asks(tmp_path, graph, open_service):
    graph.throttle(retry_after=1)  # longer than the first backoff (0.5 s)
    bot = open_service(make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url))
    bot.outbox.gather = 0.0
    post(bot, message_event("111", "m_1", "coffee 1", timestamp=T0))
    assert wait_for(lambda: len(graph.delivered) == 1, 10)
    throttled, sent = graph.requests
    assert sent["at"] - throttled["at"] >= 1.0 * 0.9


def test_a_graph_error_that_echoes_the_psid_is_logged_without_it(bot, graph, caplog):
    psid = "1234567890123456"
    graph.fail_item(psid, 100, 2018001, message=f"(#100) No matching user found for {psid}")
    post(bot, message_event(psid, "m_1", "coffee 1", timestamp=T0))
    [failed] = events_of(caplog, "reply_failed")
    assert failed["reason"] == "HTTP 400, code 100: (#100) No matching user found for [number]"
    assert not [r for r in caplog.records if psid in r.getMessage() + json.dumps(getattr(r, "fields", {}))]


def items_of(request) -> int:
    """How many replies a Send API request carried: a batch's items, or one."""
    return len(json.loads(request["form"]["batch"])) if "form" in request else 1


def test_a_persons_replies_in_one_body_go_in_separate_batches_in_order(bot, graph):
    post(bot, *(message_event("111", f"m_{i}", f"item {i}", timestamp=T0) for i in range(1, 4)),
         message_event("222", "m_x", "tea 2", timestamp=T0))
    assert [items_of(r) for r in graph.requests] == [2, 1, 1]
    assert [t.split(",")[0] for t in graph.texts if t.startswith("item")] == [
        "item — 1.00 USD", "item — 2.00 USD", "item — 3.00 USD"]


@pytest.fixture(scope="module")
def slow_graph():
    """A Send API that takes a little while a call, so replies overlap."""
    graph = ScriptedSendApi(delay=0.005, jitter=0.03)
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def busy_bot(slow_graph, tmp_path_factory, open_module_service):
    """The real sender threads on slow_graph (requested first, so it is closed after the service)."""
    config = make_config(tmp_path_factory.mktemp("order"), fb_page_access_token="t", fb_graph_url=slow_graph.url)
    service = open_module_service(config)
    service.outbox.gather = 0.0  # senders take replies at once: the person's previous one may still be in flight
    return service, slow_graph


# (person, starts a new webhook body, waits first until the Send API has taken one more call)
examples = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.booleans()), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None)
@given(examples)
def test_each_persons_replies_go_out_in_commit_order_under_concurrency(busy_bot, messages):
    """People and messages interleaved at random, some in one body, some posted while replies are in flight."""
    bot, graph = busy_bot
    run = time.monotonic_ns()
    before = len(graph.delivered)
    bodies, body = [], []
    for n, (person, new_body, pause) in enumerate(messages, start=1):
        if (new_body or pause) and body:
            bodies.append((body, pause))
            body = []
        body.append(message_event(f"9{person}", f"m_{run}_{n}", f"item {n}", timestamp=T0))
    bodies.append((body, False))
    posted = 0
    for events, pause in bodies:
        post(bot, *events)
        posted += len(events)
        if pause:  # the next body arrives while a call is in flight
            calls = len(graph.requests)
            assert wait_for(lambda: len(graph.requests) > calls or len(graph.delivered) >= before + posted, 10)
    assert wait_for(lambda: len(graph.delivered) >= before + len(messages), 30)
    seen: dict[str, list[int]] = {}
    for sent in graph.delivered[before:]:
        amount = re.match(r"item — (\d+)\.00", sent["message"]["text"]).group(1)
        seen.setdefault(sent["recipient"]["id"], []).append(int(amount))
    expected: dict[str, list[int]] = {}
    for n, (person, _, _) in enumerate(messages, start=1):
        expected.setdefault(f"9{person}", []).append(n)
    assert seen == expected


def test_a_summary_waiting_for_the_model_holds_only_that_persons_replies(tmp_path, graph, model, open_service):
    model.will(*[hangs] * 3)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, ai_enabled=True,
                         ai_url=model.url, ai_model="m", ai_timeout=2.0)
    bot = open_service(config, enrich_interval=3600)
    now = int(time.time() * 1000)
    post(bot, message_event("111", "m_1", "coffee 3", timestamp=now))
    assert wait_for(lambda: len(graph.delivered) == 1, 10)
    post(bot, message_event("111", "m_2", "summary", timestamp=now),
         message_event("111", "m_3", "cake 4", timestamp=now),
         message_event("222", "m_4", "tea 3", timestamp=now))  # ready at once, but not batched together
    assert wait_for(lambda: len(graph.delivered) == 4, 20)
    order = [(d["recipient"]["id"], d["message"]["text"].split("\n")[0]) for d in graph.delivered]
    # 222's tea went out while 111's summary waited for the model; 111's cake waited behind it.
    assert order[1] == ("222", "tea — 3.00 USD, today")
    assert order[2][0] == "111" and order[2][1].startswith("This month")
    assert order[3] == ("111", "cake — 4.00 USD, today")


def test_a_question_the_model_reads_holds_only_that_persons_replies(tmp_path, graph, model, open_service):
    model.will(*[hangs] * 3)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, ai_enabled=True,
                         ai_url=model.url, ai_model="m", ai_timeout=2.0)
    bot = open_service(config, enrich_interval=3600)
    now = int(time.time() * 1000)
    post_only(bot, message_event("111", "m_1", "how much went on wine and cheese over the holidays?", timestamp=now),
              message_event("222", "m_2", "tea 3", timestamp=now))
    assert wait_for(lambda: len(graph.delivered) == 2, 20)
    tea, question = graph.requests
    assert [d["recipient"]["id"] for d in graph.delivered] == ["222", "111"]  # not one batch: tea did not wait
    assert question["at"] - tea["at"] >= 1.5  # the question's reply waited for the model's deadline, alone
    assert graph.texts[1] == words.DID_YOU_MEAN["question"]


def test_a_call_the_send_api_never_answers_holds_nobody_else(tmp_path, graph, open_service):
    graph.behave("hang")  # the first call only
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    post_only(bot, message_event("111", "m_1", "coffee 1", timestamp=T0))
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    post_only(bot, message_event("222", "m_2", "tea 2", timestamp=T0))
    assert wait_for(lambda: len(graph.delivered) == 1, 10)
    assert graph.delivered[0]["recipient"] == {"id": "222"}


def test_close_is_bounded_while_the_send_api_hangs_and_keeps_every_reply_for_the_restart(tmp_path, graph, caplog,
                                                                                          open_service):
    for _ in range(10):
        graph.behave("hang")
    psid = "6543210987654321"
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    post_only(bot, message_event(psid, "m_1", "coffee 1", timestamp=T0))
    post_only(bot, message_event(psid, "m_2", "coffee 2", timestamp=T0))
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    started = time.monotonic()
    bot.close()  # on purpose, mid-test, while a call hangs: how long close takes is what this test measures
    assert time.monotonic() - started < 10
    assert events_of(caplog, "reply_dropped") == [] and events_of(caplog, "reply_sent") == []
    assert [f["replies"] for f in events_of(caplog, "replies_kept")] == [2]
    on_disk = b"".join(path.read_bytes() for path in tmp_path.glob("expensebot.db*") if path.is_file())
    assert psid.encode() not in on_disk  # kept sealed, never as the PSID


def test_replies_kept_at_a_stop_go_out_after_the_restart_in_order(tmp_path, graph, caplog, open_service):
    graph.behave("hang")
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    post_only(bot, message_event("111", "m_1", "coffee 1", timestamp=int(time.time() * 1000)))
    post_only(bot, message_event("111", "m_2", "tea 2", timestamp=int(time.time() * 1000)))
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    bot.close()
    restarted = open_service(config)
    assert wait_for(lambda: len(graph.delivered) == 2, 10)
    assert [t.split("\n")[0] for t in graph.texts] == ["coffee — 1.00 USD, today", "tea — 2.00 USD, today"]
    assert [f["replies"] for f in events_of(caplog, "replies_restored")] == [2]
    assert restarted.outbox.drain(10)


def test_a_reply_kept_past_the_24_hour_window_is_dropped_not_sent(tmp_path, graph, caplog, open_service):
    graph.behave("hang")
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    post_only(bot, message_event("111", "m_1", "coffee 1", timestamp=int(time.time() * 1000) - 25 * 3600 * 1000))
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    bot.close()
    open_service(config)
    assert wait_for(lambda: events_of(caplog, "reply_dropped"), 10)
    assert [f["reason"] for f in events_of(caplog, "reply_dropped")] == [
        "the person's 24-hour window closed while the bot was stopped"]
    assert len(graph.requests) == 1  # only the call that hung before the stop


def test_close_sends_what_is_queued_first(tmp_path, graph, caplog, open_service):
    graph.delay = 0.05
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    post(bot, *(message_event(str(100 + i), f"m_{i}", f"item {i}", timestamp=T0) for i in range(20)))
    bot.close()  # on purpose, mid-test: that close sends the queued replies before it returns is what this checks
    assert len(graph.delivered) == 20
    assert events_of(caplog, "reply_dropped") == []


def test_sigterm_stops_a_real_server_within_ten_seconds_while_the_send_api_hangs(server_process):
    graph = ScriptedSendApi()
    for _ in range(10):
        graph.behave("hang")
    try:
        server = server_process(FB_PAGE_ACCESS_TOKEN="secret-page-token", FB_GRAPH_URL=graph.url)
        for i in range(3):
            body = json.dumps(delivery(message_event("111", f"m_{i}", f"coffee {i + 1}", timestamp=T0))).encode()
            response = requests.post(f"{server.url}/webhook", data=body, timeout=10, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(APP_SECRET, body)})
            assert response.status_code == 200
        assert wait_for(lambda: len(graph.requests) >= 1, 10)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=15)
        assert time.monotonic() - started < 10
        lines = server.log_lines()
        assert lines[-1]["event"] == "stopped"
        assert [line["replies"] for line in lines if line.get("event") == "replies_kept"] == [3]
        assert not [line for line in lines if "secret-page-token" in json.dumps(line)]
        assert not [r["url"] for r in graph.requests if "secret-page-token" in r["url"]]
    finally:
        graph.close()


def test_inline_sending_without_a_token_logs_replies(tmp_path, caplog, open_service):
    bot = open_service(make_config(tmp_path))
    post(bot, message_event("111", "m_1", "coffee 1", timestamp=T0), message_event("222", "m_2", "tea 2", timestamp=T0))
    assert sorted(f["mid"] for f in events_of(caplog, "reply_logged")) == ["m_1", "m_2"]


def wording_fails_for(bot, psid: str) -> None:
    """Make composing this person's replies raise, as a bug in the wording would."""
    compose = bot.outbox.replier.compose

    def broken(record, *args, **kwargs):
        if record.message.psid_hash == psid_hash(psid):
            raise RuntimeError("a bug in the wording")
        return compose(record, *args, **kwargs)

    bot.outbox.replier.compose = broken


def test_a_bug_wording_one_reply_is_one_json_line_and_the_others_still_go(bot, graph, caplog):
    wording_fails_for(bot, "222")
    post(bot, message_event("111", "m_1", "coffee 1", timestamp=T0), message_event("222", "m_2", "tea 2", timestamp=T0))
    assert [d["recipient"]["id"] for d in graph.delivered] == ["111"]
    [failure] = events_of(caplog, "reply_compose_failed")
    assert failure["psid_hash"] == psid_hash("222") and failure["mid"] == "m_2"
    assert "RuntimeError: a bug in the wording" in failure["traceback"]
    assert [r for r in caplog.records if r.exc_info] == []  # the traceback is a field, not a second format


def test_a_line_logged_wording_a_batch_is_written_before_the_send_api_answers(tmp_path, graph, open_service,
                                                                              stream):
    # With the Send API hanging, the line about the reply that could not be worded is already written.
    graph.behave("hang")  # the first call only
    bot = open_service(make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url))
    wording_fails_for(bot, "222")
    post_only(bot, message_event("111", "m_1", "coffee 1", timestamp=T0),
         message_event("222", "m_2", "tea 2", timestamp=T0))
    assert wait_for(lambda: len(graph.requests) == 1, 10)  # the call is hanging now
    # Well within the call's own 10 s timeout: the call is still hanging when the line is there.
    assert wait_for(lambda: '"reply_compose_failed"' in stream.getvalue(), 3)
    assert '"reply_sent"' not in stream.getvalue() and '"reply_failed"' not in stream.getvalue()


# --- batches ------------------------------------------------------------------------------------------

def test_fifty_peoples_replies_ready_together_go_as_one_batch(bot, graph):
    post(bot, *(message_event(f"8{person:02d}", f"m_{person}", "coffee 1", timestamp=T0) for person in range(50)))
    assert wait_for(lambda: len(graph.delivered) == 50)
    assert [items_of(r) for r in graph.requests] == [50]




def test_a_reply_to_a_message_erased_before_the_stop_is_not_kept(tmp_path, graph, caplog, open_service):
    for _ in range(10):
        graph.behave("hang")
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    now = int(time.time() * 1000)
    post_only(bot, message_event("111", "m_1", "tea at the clinic 3", timestamp=now))
    assert wait_for(lambda: len(graph.requests) == 1, 10)  # its reply hangs
    post_only(bot, message_event("111", "m_2", "Yes, delete", timestamp=now + 1000,
                                 quick_reply={"payload": "DELETE_MY_DATA_CONFIRM"}))
    bot.close()
    kept = query(bot, "SELECT mid, message FROM pending_replies")
    assert [mid for mid, _ in kept] == ["m_2"]  # only the answer to the erasure itself
    assert "clinic" not in str(kept)
