"""Garbage gets a clear answer, loses nothing, and leaves the server healthy."""

from __future__ import annotations

import json

import pytest
from conftest import delivery, message_event, psid_hash

from expensebot.ingest import webhook


@pytest.mark.parametrize("body, status", [
    (b"", 400),
    (b"not json", 400),
    (b"[1, 2, 3]", 400),
    (b'"a string"', 400),
    (b"null", 400),
    (b"42", 400),
    (b"\xff\xfe\x00garbage", 400),
    (b"{" * 100_000, 400),
    (b"[" * 500_000 + b"]" * 500_000, 400),
    (b'{"object": "page", "entry": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", 400),
    (b'{"object": "page"', 400),
])
def test_body_that_is_not_a_json_object_is_400(client, rows, body, status):
    response = client.post_webhook(body)
    assert response.status == status
    assert response.json()["error"]
    assert client.get("/healthz").status == 200


def test_body_over_one_mib_is_413_before_anything_is_read(client, rows):
    body = json.dumps(delivery(message_event("111", "m_big", "x" * webhook.MAX_BODY_BYTES))).encode()
    response = client.post_webhook(body)
    assert response.status == 413
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]


def test_body_of_exactly_one_mib_is_accepted(client, rows):
    event = message_event("111", "m_edge", "")
    skeleton = len(json.dumps(delivery(event)).encode())
    event["message"]["text"] = "y" * (webhook.MAX_BODY_BYTES - skeleton)
    body = json.dumps(delivery(event)).encode()
    assert len(body) == webhook.MAX_BODY_BYTES
    assert client.post_webhook(body).status == 200
    assert rows("SELECT length(text) FROM messages_raw") == [(webhook.MAX_BODY_BYTES - skeleton,)]


ODD_EVENTS = {
    "numeric ids": ({"sender": {"id": 1234567890123}, "recipient": {"id": 99}, "timestamp": 1764000000000,
                     "message": {"mid": 555, "text": "tea 2"}}, [("555", "tea 2")]),
    "missing sender": ({"recipient": {"id": "1"}, "message": {"mid": "m_x", "text": "tea 2"}}, []),
    "sender without id": ({"sender": {}, "message": {"mid": "m_x", "text": "tea 2"}}, []),
    "float sender id": ({"sender": {"id": 1.5}, "message": {"mid": "m_x", "text": "tea 2"}}, []),
    "boolean mid": ({"sender": {"id": "111"}, "message": {"mid": True, "text": "tea 2"}}, []),
    "text null": ({"sender": {"id": "111"}, "message": {"mid": "m_null", "text": None}}, [("m_null", None)]),
    "text is a number": ({"sender": {"id": "111"}, "message": {"mid": "m_num", "text": 12}}, [("m_num", None)]),
    "no text no attachments": ({"sender": {"id": "111"}, "message": {"mid": "m_empty"}}, [("m_empty", None)]),
    "10,000 characters": ({"sender": {"id": "111"}, "message": {"mid": "m_long", "text": "é" * 10_000}},
                          [("m_long", "é" * 10_000)]),
    "NUL bytes": ({"sender": {"id": "111"}, "message": {"mid": "m\x00nul", "text": "tea\x00 2"}},
                  [("m\x00nul", "tea\x00 2")]),
    "SQL-looking text": ({"sender": {"id": "111"}, "message": {"mid": "m_sql'; DROP TABLE expenses; --",
                                                              "text": "'); DROP TABLE expenses; --"}},
                         [("m_sql'; DROP TABLE expenses; --", "'); DROP TABLE expenses; --")]),
    "emoji": ({"sender": {"id": "111"}, "message": {"mid": "m_emoji", "text": "🍕🍕🍕 🎉"}}, [("m_emoji", "🍕🍕🍕 🎉")]),
    "lone surrogate": ({"sender": {"id": "\ud800"}, "message": {"mid": "m_\udfff", "text": "tea \ud83d 2"}},
                       [("m_?", "tea ? 2")]),
    "huge mid": ({"sender": {"id": "111"}, "message": {"mid": "m" * 100_000, "text": "tea 2"}}, []),
    "string timestamp": ({"sender": {"id": "111"}, "timestamp": "yesterday",
                          "message": {"mid": "m_ts", "text": "tea 2"}}, [("m_ts", "tea 2")]),
    "absurd timestamp": ({"sender": {"id": "111"}, "timestamp": 10 ** 30,
                          "message": {"mid": "m_ts2", "text": "tea 2"}}, [("m_ts2", "tea 2")]),
    "negative timestamp": ({"sender": {"id": "111"}, "timestamp": -5,
                            "message": {"mid": "m_ts3", "text": "tea 2"}}, [("m_ts3", "tea 2")]),
    "quick reply payload not a string": ({"sender": {"id": "111"}, "message": {
        "mid": "m_qr", "text": "tea 2", "quick_reply": {"payload": {"x": 1}}}}, [("m_qr", "tea 2")]),
    "postback payload null": ({"sender": {"id": "111"}, "postback": {"payload": None}}, []),
    "edit without text": ({"sender": {"id": "111"}, "message_edit": {"mid": "m_x", "num_edit": 1}}, []),
    "edit with silly num_edit": ({"sender": {"id": "111"}, "message_edit": {"mid": "m_ed", "text": "tea 2",
                                                                           "num_edit": "many"}},
                                 [("m_ed", "tea 2")]),
    "deeply nested attachment": ({"sender": {"id": "111"}, "message": {
        "mid": "m_deep", "attachments": json.loads("[" * 500 + "]" * 500)}}, [("m_deep", None)]),
}


@pytest.mark.parametrize("name", ODD_EVENTS)
def test_odd_event_gets_200_and_is_stored_right_or_skipped(client, rows, name):
    event, expected = ODD_EVENTS[name]
    body = json.dumps({"object": "page", "entry": [{"id": "1", "time": 1764000000000, "messaging": [event]}]})
    response = client.post_webhook(body.encode("utf-8", "surrogatepass"))
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    assert rows("SELECT mid, text FROM messages_raw") == expected
    assert client.get("/healthz").status == 200


def test_lone_surrogate_psid_is_hashed_not_stored(client, rows):
    body = json.dumps(delivery(message_event("\ud800", "m_s", "tea 2")))
    client.post_webhook(body.encode())
    assert rows("SELECT psid_hash FROM messages_raw") == [(psid_hash("\ud800"),)]


@pytest.mark.parametrize("text", [
    "coffee -100", "-5 taxi", "coffee 0", "lunch 0.00", "rent 99999999999999999999",
    "yacht 10000000000000", "coffee", "🍕", "'; DROP TABLE expenses; -- ",
])
def test_negative_zero_absurd_or_missing_amounts_never_become_expenses(client, rows, text):
    assert client.post_webhook(delivery(message_event("111", "m_1", text))).status == 200
    assert rows("SELECT text FROM messages_raw") == [(text,)]
    assert rows("SELECT count(*) FROM expenses") == [(0,)]


def test_absurd_timestamp_falls_back_to_the_entry_time(client, rows):
    event = message_event("111", "m_1", "tea 2", timestamp=10 ** 30)
    client.post_webhook(delivery(event))
    assert rows("SELECT sent_at, occurred_at FROM messages_raw JOIN expenses USING (mid)") == [
        ("2025-11-24T16:00:00.000Z", "2025-11-24T16:00:00.000Z")]


@pytest.mark.parametrize("method, path", [
    ("PUT", "/webhook"), ("DELETE", "/webhook"), ("POST", "/healthz"), ("GET", "/nope"),
    ("GET", "/webhook/../etc/passwd"), ("POST", "/ops/stats"),
])
def test_unknown_routes_and_methods_get_a_json_4xx(client, method, path):
    response = client.request(method, path)
    assert response.status in (404, 405)
    assert "error" in response.json()
