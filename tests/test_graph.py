"""The Graph client against a real local Send API stand-in: where the token goes, the proof, errors, batches."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import sys
import threading
import time

import pytest
from conftest import ROOT, free_port, wait_for

from expensebot import outbound
from expensebot.replies.graph import MAX_BATCH, GraphClient, GraphError, error_from

TOKEN = "EAAGtestpagetoken0123456789"
SECRET = "test-app-secret-for-proof"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def stand_in(graph):
    """The Send API stand-in (conftest's `graph`), by the name these tests read best with."""
    return graph


@pytest.fixture
def client(stand_in):
    client = GraphClient(stand_in.url, TOKEN, SECRET, timeout=2.0)
    yield client
    client.close()


def every_call(client: GraphClient) -> None:
    client.send_message("111", {"text": "hi"})
    assert client.send_batch([("111", {"text": "a"}), ("222", {"text": "b"})]) == [None, None]
    client.post_json("me/messenger_profile", {"greeting": [{"locale": "default", "text": "Hello"}]})
    client.get("me", {"fields": "id,name"})


def test_every_call_sends_the_token_as_bearer_and_a_correct_appsecret_proof(client, stand_in):
    every_call(client)
    plain, batch, profile, me = stand_in.requests
    for request in stand_in.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert plain["json"]["appsecret_proof"] == PROOF
    assert batch["form"]["appsecret_proof"] == PROOF
    assert profile["json"]["appsecret_proof"] == PROOF
    assert me["query"] == {"fields": ["id,name"], "appsecret_proof": [PROOF]}
    assert [r["path"] for r in stand_in.requests] == [
        "/v25.0/me/messages", "/v25.0/", "/v25.0/me/messenger_profile", "/v25.0/me"]


def test_the_token_is_in_no_url_and_in_no_log_line_even_when_answers_are_broken(stand_in, caplog):
    caplog.set_level(logging.DEBUG)  # whatever any library would log, at any level
    client = GraphClient(stand_in.url, TOKEN, SECRET, timeout=0.5)
    stand_in.behave("malformed")
    stand_in.behave("trickle")
    stand_in.error(190, status=401)
    for _ in range(3):
        try:
            client.send_message("111", {"text": "hi"})
        except GraphError as exc:
            assert TOKEN not in str(exc)
    every_call(client)
    client.close()
    assert len(stand_in.requests) == 7
    assert not [r["url"] for r in stand_in.requests if TOKEN in r["url"]]
    logged = [r.getMessage() + json.dumps(getattr(r, "fields", {})) for r in caplog.records]
    assert not [line for line in logged if TOKEN in line]


def test_a_malformed_header_block_is_an_answer_or_a_graph_error_never_a_crash(client, stand_in):
    stand_in.behave("malformed")
    try:
        client.send_message("111", {"text": "hi"})
    except GraphError as exc:
        assert exc.retryable
    client.send_message("111", {"text": "again"})  # the client is fine afterwards
    assert stand_in.texts == ["again"]


def test_a_trickled_body_cannot_hold_a_call_past_its_deadline(stand_in):
    client = GraphClient(stand_in.url, TOKEN, SECRET, timeout=1.0)
    stand_in.behave("trickle")  # a byte every 0.2 s: each read alone would be on time
    started = time.monotonic()
    with pytest.raises(GraphError) as raised:
        client.send_message("111", {"text": "hi"})
    assert time.monotonic() - started < 5  # 1 s deadline; generous for a busy machine
    assert str(raised.value) == "no answer in time"
    assert raised.value.retryable
    client.close()


def test_a_hanging_call_ends_when_the_cutoff_is_brought_forward(stand_in):
    client = GraphClient(stand_in.url, TOKEN, SECRET, timeout=60)
    stand_in.behave("hang")
    errors = []

    def call():
        try:
            client.send_message("111", {"text": "hi"})
        except GraphError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: len(stand_in.requests) == 1)
    client.cutoff = time.monotonic() + 0.2  # what the outbox does on close
    caller.join(10)
    assert not caller.is_alive()
    assert [str(e) for e in errors] == ["no answer in time"]


def test_connections_are_kept_alive_and_reused(client, stand_in):
    for i in range(5):
        client.send_message("111", {"text": f"hi {i}"})
    assert len({r["client"] for r in stand_in.requests}) == 1


@pytest.mark.parametrize("calls_before", [0, 1])
def test_a_call_the_server_drops_is_a_retryable_error_and_is_not_sent_twice(client, stand_in, calls_before):
    # The Send API may have taken the message: the outbox decides about trying again, after a backoff.
    for _ in range(calls_before):
        client.send_message("111", {"text": "before"})
    stand_in.behave("drop")
    with pytest.raises(GraphError) as raised:
        client.send_message("111", {"text": "once"})
    assert (raised.value.retryable, raised.value.status) == (True, None)
    assert len(stand_in.requests) == calls_before + 1


def test_a_batch_reads_each_items_own_answer(client, stand_in):
    stand_in.fail_item("222", 551)
    stand_in.fail_item("333", 613)
    outcomes = client.send_batch([("111", {"text": "a"}), ("222", {"text": "b"}), ("333", {"text": "c"})])
    assert outcomes[0] is None
    assert (outcomes[1].code, outcomes[1].retryable) == (551, False)
    assert (outcomes[2].code, outcomes[2].retryable) == (613, True)
    items = json.loads(stand_in.requests[0]["form"]["batch"])
    assert [i["relative_url"] for i in items] == ["me/messages"] * 3
    assert "access_token" not in stand_in.requests[0]["form"]


def test_a_whole_batch_failing_raises_and_null_items_are_retryable(client, stand_in):
    stand_in.error(1200, status=500)
    with pytest.raises(GraphError) as raised:
        client.send_batch([("111", {"text": "a"}), ("222", {"text": "b"})])
    assert (raised.value.code, raised.value.retryable) == (1200, True)
    stand_in.script.append((200, b'[{"code": 200, "body": "{}"}, null]', {}))
    first, second = client.send_batch([("111", {"text": "a"}), ("222", {"text": "b"})])
    assert first is None and second.retryable


def test_batch_items_answered_429_are_retryable_and_item_messages_lose_psids(client, stand_in):
    unavailable = {"error": {"code": 551, "message": "(#551) 1234567890123456 is unavailable"}}
    stand_in.script.append((200, json.dumps([{"code": 429, "body": ""}, {"code": 200, "body": "{}"},
                                             {"code": 400, "body": json.dumps(unavailable)}]).encode(), {}))
    throttled, sent, gone = client.send_batch([("111", {"text": "a"}), ("222", {"text": "b"}),
                                               ("1234567890123456", {"text": "c"})])
    assert (throttled.status, throttled.retryable, sent) == (429, True, None)
    assert (gone.code, gone.retryable, str(gone)) == (551, False, "HTTP 400, code 551: (#551) [number] is unavailable")


@pytest.mark.parametrize("size", [0, MAX_BATCH + 1])
def test_a_batch_holds_one_to_fifty_items(client, size):
    with pytest.raises(ValueError):
        client.send_batch([("111", {"text": "a"})] * size)


def test_nobody_listening_is_a_retryable_graph_error():
    client = GraphClient(f"http://127.0.0.1:{free_port()}/v25.0", TOKEN, SECRET, timeout=2)
    with pytest.raises(GraphError) as raised:
        client.send_message("111", {"text": "hi"})
    assert raised.value.retryable
    assert str(raised.value) == "request failed: ConnectionRefusedError"


@pytest.mark.parametrize("status, answer, code, subcode, retryable", [
    (500, {"error": {"code": 1200}}, 1200, None, True),
    (400, {"error": {"code": 613}}, 613, None, True),
    (400, {"error": {"code": 4}}, 4, None, True),
    (400, {"error": {"code": 2}}, 2, None, True),
    (502, None, None, None, True),                       # a proxy's page, no Graph error
    (429, None, None, None, True),                       # a plain 429: throttled, try later
    (429, {"error": {"code": 4}}, 4, None, True),
    (429, {"error": {"code": 190}}, 190, None, False),
    (503, {"error": {"code": 190}}, 190, None, False),    # a 5xx carrying a never-retry code
    (400, {"error": {"code": 551}}, 551, None, False),
    (400, {"error": {"code": 10, "error_subcode": 2018278}}, 10, 2018278, False),
    (400, {"error": {"code": 100, "error_subcode": 2018001}}, 100, 2018001, False),
    (401, {"error": {"code": 190}}, 190, None, False),
    (400, {"error": "odd"}, None, None, False),
    (400, {"error": {"code": "613"}}, None, None, False),  # not a number: not trusted
    (400, [1, 2], None, None, False),
])
def test_graph_errors_are_classified(status, answer, code, subcode, retryable):
    error = error_from(status, answer)
    assert (error.code, error.subcode, error.retryable, error.status) == (code, subcode, retryable, status)


@pytest.mark.parametrize("retry_after", [None, 30])
def test_a_plain_429_is_retryable_with_the_wait_it_asks_for(client, stand_in, retry_after):
    stand_in.throttle(retry_after)
    with pytest.raises(GraphError) as raised:
        client.send_message("111", {"text": "hi"})
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (429, None, True)
    assert raised.value.retry_after == retry_after
    client.send_message("111", {"text": "later"})
    assert stand_in.texts == ["later"]


def test_a_graph_message_that_echoes_a_psid_is_kept_without_it(client, stand_in):
    stand_in.fail_item("1234567890123456", 100, 2018001,
                       message="(#100) No matching user found for 1234567890123456 (id 4242)")
    with pytest.raises(GraphError) as raised:
        client.send_message("1234567890123456", {"text": "hi"})
    assert str(raised.value) == "HTTP 400, code 100: (#100) No matching user found for [number] (id 4242)"
    assert not raised.value.retryable


@pytest.mark.parametrize("status", [302, 404])
def test_an_answer_that_is_not_graphs_is_a_graph_error_with_its_status(client, stand_in, status):
    stand_in.script.append((status, b"<html>not Graph</html>", {"Location": f"{stand_in.url}/elsewhere"}))
    with pytest.raises(GraphError) as raised:
        client.get("me")
    assert (str(raised.value), raised.value.status, raised.value.retryable) == (f"HTTP {status}", status, False)
    assert len(stand_in.requests) == 1  # a redirect is not followed


def test_an_answer_over_the_cap_is_refused_unread_and_not_retried(client, stand_in):
    stand_in.script.append((200, b" " * (outbound.MAX_ANSWER_BYTES + 1), {}))
    with pytest.raises(GraphError) as raised:
        client.send_message("111", {"text": "hi"})
    assert (raised.value.status, raised.value.retryable) == (200, False)
    assert str(raised.value) == f"answer over {outbound.MAX_ANSWER_BYTES} bytes"


@pytest.mark.parametrize("texts", [
    ["a"],
    ["coffee \u2014 100.00 USD, today #food\nToday: 197.59 USD", "100% & more = less + \"quotes\""],
    ["", " ", "\u00e9\u00fc\u65e5\u672c \U0001F600", "a+b=c&d%26", "~_.-*'()!"],
    [f"reply {i}" for i in range(MAX_BATCH)],
])
def test_a_batch_delivers_every_text_as_written(client, stand_in, texts):
    messages = [(str(10**15 + i), {"text": text}) for i, text in enumerate(texts)]
    assert client.send_batch(messages) == [None] * len(messages)
    assert [(d["recipient"]["id"], d["message"]["text"]) for d in stand_in.delivered] == [
        (psid, message["text"]) for psid, message in messages]


def test_a_batch_of_rich_messages_arrives_whole(client, stand_in):
    # Quick replies and button templates (nested lists and dicts, numbers, non-ASCII), and ids that
    # JSON must escape.
    messages = [
        ("123", {"text": "Which currency?", "quick_replies": [
            {"content_type": "text", "title": "¥ JPY", "payload": "currency JPY"},
            {"content_type": "text", "title": "CN¥", "payload": 'currency "CNY"'}]}),
        ('4"5\\6é', {"attachment": {"type": "template", "payload": {
            "template_type": "button", "text": "Your report", "buttons": [
                {"type": "web_url", "url": "https://example.org/report/a?b=c&d=%20", "title": "Open"}]}}}),
        ("7", {"text": "n", "count": 3, "ratio": 0.5, "none": None, "yes": True}),
    ]
    assert client.send_batch(messages) == [None] * len(messages)
    assert [(d["recipient"]["id"], d["message"]) for d in stand_in.delivered] == messages
    [request] = stand_in.requests
    assert request["form"]["include_headers"] == "false"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_throughput_benchmarks_nginx_answers_plain_calls_and_batches(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import harness
    with harness.nginx(tmp_path) as url:
        client = GraphClient(url, TOKEN, SECRET)
        assert client.send_message("111", {"text": "hi"})["recipient_id"] == "1"
        assert client.send_batch([(str(i), {"text": "hi"}) for i in range(MAX_BATCH)]) == [None] * MAX_BATCH
        client.close()
