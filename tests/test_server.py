"""The app on real waitress (port 0), and the JSON-line logs it writes."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests
from conftest import APP_SECRET, delivery, message_event

from expensebot import logs
from expensebot.ingest import webhook


def signed_post(url: str, body: bytes, **kwargs) -> requests.Response:
    return requests.post(f"{url}/webhook", data=body, timeout=5,
                         headers={"X-Hub-Signature-256": webhook.sign(APP_SECRET, body)}, **kwargs)


def test_signed_webhook_through_waitress_is_committed(live_server, rows):
    response = signed_post(live_server, json.dumps(delivery(message_event("111", "m_1", "coffee 100"))).encode())
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
    assert rows("SELECT mid, amount_minor FROM messages_raw JOIN expenses USING (mid)") == [("m_1", 10000)]


def test_chunked_body_is_read_whole(live_server, rows):
    body = json.dumps(delivery(message_event("111", "m_chunked", "taxi 12,50"))).encode()
    chunks = (body[i:i + 7] for i in range(0, len(body), 7))
    response = requests.post(f"{live_server}/webhook", data=chunks, timeout=5,
                             headers={"X-Hub-Signature-256": webhook.sign(APP_SECRET, body)})
    assert response.status_code == 200
    assert rows("SELECT amount_minor FROM expenses") == [(1250,)]


def body_of_size(size: int) -> bytes:
    """A page object with no entries, padded to exactly `size` bytes of JSON."""
    head, tail = b'{"object": "page", "entry": [], "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_1_mib_is_taken_and_one_byte_more_is_413_through_waitress(live_server, chunked):
    def post(body: bytes) -> requests.Response:
        data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
        return requests.post(f"{live_server}/webhook", data=data, timeout=10,
                             headers={"X-Hub-Signature-256": webhook.sign(APP_SECRET, body)})
    exact = post(body_of_size(1024 * 1024))
    assert (exact.status_code, exact.text) == (200, "EVENT_RECEIVED")
    assert post(body_of_size(1024 * 1024 + 1)).status_code == 413


def test_a_body_of_exactly_1_mib_is_taken_and_one_byte_more_is_413_by_the_app(client):
    exact = client.post_webhook(body_of_size(1024 * 1024))
    assert (exact.status, exact.text) == (200, "EVENT_RECEIVED")
    assert client.post_webhook(body_of_size(1024 * 1024 + 1)).status == 413


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_far_over_1_mib_is_refused_by_waitress_before_the_app_reads_it(live_server, rows, chunked):
    body = body_of_size(2 * webhook.MAX_BODY_BYTES)
    data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    response = requests.post(f"{live_server}/webhook", data=data, timeout=10,
                             headers={"X-Hub-Signature-256": webhook.sign(APP_SECRET, body)})
    assert (response.status_code, response.text.splitlines()[0]) == (413, "Request Entity Too Large")
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]
    assert requests.get(f"{live_server}/healthz", timeout=5).status_code == 200


def test_log_lines_are_json_objects():
    stream = io.StringIO()
    logs.configure(stream)
    try:
        logs.log_event(logging.getLogger("expensebot.test"), "event_logged", psid_hash="ab", mid="m_1", expense_id=3)
        logging.getLogger("some.library").warning("plain %s", "message")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("event", "psid_hash", "mid", "expense_id", "level")} == {
        "event": "event_logged", "psid_hash": "ab", "mid": "m_1", "expense_id": 3, "level": "info"}
    assert first["ts"].endswith("Z")
    assert (second["event"], second["message"], second["logger"]) == ("log", "plain message", "some.library")


def test_waitress_queue_depth_warnings_do_not_flood_the_log():
    stream = io.StringIO()
    logs.configure(stream)
    try:
        queue_logger = logging.getLogger("waitress.queue")
        for depth in range(1000):
            queue_logger.warning("Task queue depth is %d", depth)
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["Task queue depth is 0"]


def test_held_back_lines_are_counted_when_the_next_one_passes():
    now = [0.0]
    limiter = logs.EverySoOften(interval=60, clock=lambda: now[0])
    records = [logging.LogRecord("waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (n,), None)
               for n in range(5)]
    assert [limiter.filter(r) for r in records[:4]] == [True, False, False, False]
    now[0] = 61.0
    assert limiter.filter(records[4])
    assert records[4].getMessage() == "Task queue depth is 4 (3 similar lines held back)"
