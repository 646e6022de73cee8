"""POST /webhook and the GET handshake through the real WSGI app and real SQLite files."""

from __future__ import annotations

import json

import pytest
from conftest import (
    APP_SECRET,
    PAYLOADS,
    VERIFY_TOKEN,
    delivery,
    make_config,
    message_event,
    psid_hash,
)

from expensebot.ingest import webhook


def wrap(event: dict) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": "1", "time": 1764000000000,
                                                     "messaging": [event]}]}).encode()


def payload_body(name: str) -> bytes:
    raw = (PAYLOADS / name).read_bytes()
    return wrap(json.loads(raw)) if name.endswith("_event.json") else raw


# --- signature -----------------------------------------------------------------------------

def test_published_signature_vector_with_escaped_unicode_is_accepted(tmp_path, open_service):
    """Meta signs the escaped bytes (\\u00e4): the check must hash them exactly as received."""
    secret = "e6af24be1d683c8c911949f897eea1f6"
    service = open_service(make_config(tmp_path, fb_app_secret=secret))
    from conftest import Client
    body = (PAYLOADS / "01_text_unicode_escaped_signed.json").read_bytes()
    signature = "sha256=3bf62d5bc657e3a17e55fa0095fa29964db507393b05209c260e2c845254968b"
    response = Client(service).post_webhook(body, signature=signature)
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    with service.db.connection() as conn:
        assert conn.execute("SELECT text FROM messages_raw").fetchall()[0][0] == "Test äëï"


def test_escaped_slashes_are_signed_as_sent(client, rows):
    body = (PAYLOADS / "08_fallback_escaped_slash_docs.json").read_bytes()
    assert b"\\/" in body
    assert client.post_webhook(body).status == 200
    reserialized = json.dumps(json.loads(body)).encode()
    assert client.post_webhook(body, signature=webhook.sign(APP_SECRET, reserialized)).status == 403
    assert rows("SELECT text FROM messages_raw") == [("This is where I want to go: https://youtu.be/bbo_fZAjIhg",)]


@pytest.mark.parametrize("signature", [
    None,
    "",
    "sha256=",
    "sha256=" + "0" * 64,
    "sha1=da611bd448dc12acdf0cd3ab33fdb3adaee26145",
    "md5=abc",
    "sha256=zzzz",
    "sha256=\u00e9" + "0" * 63,
    "Sha256=" + "0" * 64,
])
def test_missing_or_wrong_signature_is_403_and_stores_nothing(client, rows, signature):
    body = json.dumps(delivery(message_event("111", "m_1"))).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = client.request("POST", "/webhook", body, headers)
    assert response.status == 403
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]


def test_signature_with_another_secret_is_403(client, rows):
    response = client.post_webhook(delivery(message_event("111", "m_1")), secret="not-the-secret")
    assert response.status == 403
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]


# --- handshake -----------------------------------------------------------------------------

def test_handshake_answers_the_challenge(client):
    response = client.get(f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")
    assert (response.status, response.text) == (200, "1158201444")


@pytest.mark.parametrize("query", [
    "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
    f"hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
    "hub.challenge=1",
    "",
    "hub.mode=subscribe&hub.verify_token=%FF%FE&hub.challenge=1",
])
def test_handshake_refuses_wrong_token_or_mode(client, query, caplog):
    assert client.get(f"/webhook?{query}").status == 403
    [refused] = [r for r in caplog.records if r.msg == "verify_token_rejected"]  # the operator sees why Meta failed
    assert "wrong" not in str(refused.fields) and VERIFY_TOKEN not in str(refused.fields)


# --- what is stored ------------------------------------------------------------------------

def test_text_message_commits_message_expense_and_job(client, rows, caplog):
    response = client.post_webhook(delivery(message_event("111", "m_1", "coffee 100", timestamp=1764075600000)))
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    h = psid_hash("111")
    assert rows("SELECT psid_hash, mid, kind, text, sent_at FROM messages_raw") == [
        (h, "m_1", "message", "coffee 100", "2025-11-25T13:00:00.000Z")]
    assert rows("SELECT psid_hash, mid, amount_minor, currency, description, occurred_at FROM expenses") == [
        (h, "m_1", 10000, "USD", "coffee", "2025-11-25T13:00:00.000Z")]
    # AI off (the default): the job is written `skipped` in the message's own transaction.
    assert rows("SELECT message_id, status, attempts FROM jobs") == [(rows("SELECT id FROM messages_raw")[0][0], "skipped", 0)]
    logged = [r for r in caplog.records if r.msg == "event_logged"]
    assert [(r.fields["psid_hash"], r.fields["mid"]) for r in logged] == [(h, "m_1")]
    assert logged[0].fields["expense_id"] == rows("SELECT id FROM expenses")[0][0]


def test_stored_event_has_no_identity_fields(client, rows):
    client.post_webhook(delivery(message_event("111", "m_1", "coffee 100")))
    (event,) = rows("SELECT event FROM messages_raw")[0]
    stored = json.loads(event)
    assert "sender" not in stored and "recipient" not in stored
    assert stored["message"] == {"mid": "m_1", "text": "coffee 100"}


def test_batch_of_entries_and_events_stores_every_message(client, rows):
    events = [message_event(f"{100 + i % 3}", f"m_{i}", f"item{i} {i + 1}") for i in range(9)]
    assert client.post_webhook(delivery(*events, entries=3)).status == 200
    assert rows("SELECT count(*) FROM messages_raw") == [(9,)]
    assert rows("SELECT sum(amount_minor), count(*) FROM expenses") == [(sum(range(1, 10)) * 100, 9)]
    assert rows("SELECT count(*) FROM jobs") == [(9,)]


def test_duplicate_delivery_creates_one_message_one_expense_one_job(client, rows, caplog):
    body = json.dumps(delivery(message_event("111", "m_dup", "lunch 12,50"))).encode()
    for _ in range(3):
        assert client.post_webhook(body).status == 200
    # The same mid inside another batch is a duplicate too.
    client.post_webhook(delivery(message_event("111", "m_dup", "lunch 12,50"), message_event("111", "m_new", "tea 3")))
    assert rows("SELECT mid, count(*) FROM messages_raw GROUP BY mid ORDER BY mid") == [("m_dup", 1), ("m_new", 1)]
    assert rows("SELECT mid, amount_minor FROM expenses ORDER BY mid") == [("m_dup", 1250), ("m_new", 300)]
    assert rows("SELECT count(*) FROM jobs") == [(2,)]
    assert len([r for r in caplog.records if r.msg == "event_duplicate"]) == 3


def test_same_mid_from_two_people_is_two_messages(client, rows):
    client.post_webhook(delivery(message_event("111", "m_1"), message_event("222", "m_1")))
    assert rows("SELECT count(*) FROM messages_raw") == [(2,)]


def test_numeric_ids_are_read_as_strings(client, rows):
    assert client.post_webhook((PAYLOADS / "19_numeric_ids_unicode_escaped.json").read_bytes()).status == 200
    assert rows("SELECT psid_hash FROM messages_raw") == [(psid_hash("982337261802700"),)]


def test_quick_reply_is_read_from_its_payload(client, rows):
    event = message_event("111", "m_q", "Yes please", quick_reply={"payload": "taxi 12"})
    client.post_webhook(delivery(event))
    assert rows("SELECT kind, text FROM messages_raw") == [("quick_reply", "taxi 12")]
    assert rows("SELECT amount_minor, description FROM expenses") == [(1200, "taxi")]


def test_postback_is_read_from_its_payload_and_redelivery_is_deduplicated(client, rows):
    event = {"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": 1764000000000,
             "postback": {"title": "Log a coffee", "payload": "coffee 3"}}
    client.post_webhook(delivery(event))
    client.post_webhook(delivery(event))
    assert rows("SELECT kind, text FROM messages_raw") == [("postback", "coffee 3")]
    assert rows("SELECT amount_minor FROM expenses") == [(300,)]


def test_a_postback_with_neither_mid_nor_timestamp_is_stored_once_however_often_it_is_redelivered(client, rows):
    event = {"sender": {"id": "111"}, "recipient": {"id": "1"}, "postback": {"title": "Log", "payload": "coffee 3"}}
    for entry_time in (1764000000000, 1764000300000, None):  # each redelivery arrives at another time
        body = delivery(event)
        body["entry"][0]["time"] = entry_time
        assert client.post_webhook(body).status == 200
    assert rows("SELECT kind, text FROM messages_raw") == [("postback", "coffee 3")]
    assert rows("SELECT amount_minor FROM expenses") == [(300,)]


def test_message_edit_updates_the_expense_of_the_original_mid(client, rows):
    client.post_webhook(delivery(message_event("111", "m_e", "coffee 100", timestamp=1764000000000)))
    edit = {"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": 1764500000000,
            "message_edit": {"mid": "m_e", "text": "coffee 120", "num_edit": 1}}
    client.post_webhook(delivery(edit))
    client.post_webhook(delivery(edit))  # redelivered edit: no change
    older = {**edit, "message_edit": {"mid": "m_e", "text": "coffee 999", "num_edit": 1}}
    client.post_webhook(delivery(older))
    assert rows("SELECT text, edit_count FROM messages_raw") == [("coffee 120", 1)]
    # The expense keeps the original message's time, not the edit's.
    assert rows("SELECT amount_minor, occurred_at FROM expenses") == [(12000, "2025-11-24T16:00:00.000Z")]
    assert rows("SELECT count(*), status FROM jobs") == [(1, "skipped")]  # AI off: skipped again, once


def test_edit_into_no_amount_removes_the_expense(client, rows):
    client.post_webhook(delivery(message_event("111", "m_e", "coffee 100")))
    client.post_webhook(delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": 1764000001000,
                                  "message_edit": {"mid": "m_e", "text": "coffee", "num_edit": 1}}))
    assert rows("SELECT count(*) FROM expenses") == [(0,)]


def test_edit_arriving_before_its_original_wins(client, rows):
    client.post_webhook(delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": 1764000001000,
                                  "message_edit": {"mid": "m_late", "text": "taxi 20", "num_edit": 1}}))
    client.post_webhook(delivery(message_event("111", "m_late", "taxi 2")))
    assert rows("SELECT amount_minor FROM expenses") == [(2000,)]
    assert rows("SELECT count(*) FROM messages_raw") == [(1,)]


@pytest.mark.parametrize("event, kind", [
    ({"message": {"mid": "m_echo", "text": "coffee 100", "is_echo": True, "app_id": 1}}, "echo"),
    ({"delivery": {"mids": ["m_1"], "watermark": 1764000000000}}, "delivery"),
    ({"read": {"watermark": 1764000000000}}, "read"),
    ({"reaction": {"reaction": "love", "emoji": "❤", "action": "react", "mid": "m_1"}}, "reaction"),
    ({"optin": {"ref": "x"}}, "optin"),
    ({"referral": {"ref": "x", "source": "SHORTLINK"}}, "referral"),
    ({"something_new": {"mid": "m_x", "text": "coffee 100"}}, "unknown"),
])
def test_events_without_a_message_are_acknowledged_not_stored(client, rows, caplog, event, kind):
    body = delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": 1764000000000, **event})
    assert client.post_webhook(body).status == 200
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]
    assert [r.fields["kinds"] for r in caplog.records if r.msg == "event_skipped"] == [{kind: 1}]


def test_standby_events_are_acknowledged_not_stored(client, rows):
    body = {"object": "page", "entry": [{"id": "1", "time": 1, "standby": [message_event("111", "m_s", "coffee 1")]}]}
    assert client.post_webhook(body).status == 200
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]


@pytest.mark.parametrize("body", [
    {"object": "instagram", "entry": [{"id": "1", "time": 1, "messaging": [message_event("111", "m_i")]}]},
    {"object": "page", "entry": [{"id": "1", "time": 1, "changes": [{"field": "feed", "value": {}}]}]},
    {"object": "page"},
    {"object": "page", "entry": "nope"},
    {"object": "page", "entry": [None, 1, "x", {"messaging": "x"}, {"messaging": [None, 7]}]},
    {},
])
def test_other_objects_and_odd_shapes_are_acknowledged(client, rows, body):
    assert client.post_webhook(body).status == 200
    assert rows("SELECT count(*) FROM messages_raw") == [(0,)]


def test_one_bad_event_does_not_spoil_the_batch(client, rows):
    good = message_event("111", "m_good", "bus 2")
    bad = [{"sender": {"id": {"x": 1}}, "message": {"mid": "m_bad", "text": "x 1"}},
           {"sender": {"id": "111"}, "message": {"mid": ["list"], "text": "x 1"}},
           {"sender": {"id": "111"}, "message": "not an object"},
           {"message": {"mid": "m_nosender", "text": "x 1"}}]
    assert client.post_webhook(delivery(bad[0], bad[1], good, bad[2], bad[3])).status == 200
    assert rows("SELECT mid FROM messages_raw") == [("m_good",)]


# --- the 25 real payloads --------------------------------------------------------------------

# file -> the mids it must store (none of them names an amount, so none is an expense)
REAL_PAYLOADS = {
    "01_text_unicode_escaped_signed.json": ["mid.1460923697625:5c96e8279b55505308"],
    "02_text_modern_mid_nlp.json": ["m_bWelEDyH_VUB2asdGYWNskansOeR_J9rheTeWjyz7SOKVtTieg4N7cKiLIioB-p1jMGHO81pvH3M7g5zBOzppQ"],
    "03_audio_attachment_escaped_slashes_event.json": ["mid.$cAAFSsSTn2XdcvE-1U1i5wpqbrOHw"],
    "04_quick_reply.json": ["mid.1472028637817:ae2763cc036a664b43"],
    "05_image_attachment.json": ["mid.1485138994684:de9ac97e92"],
    "06_location_attachment.json": ["mid.1486805183939:9a54bad501"],
    "07_text_with_link_fallback_null_payload.json": ["mid.1485139320804:9b07d2f851"],
    "08_fallback_escaped_slash_docs.json": ["m_toDnmD..."],
    "09_echo_text.json": [],
    "10_echo_template_attachment.json": [],
    "11_delivery_timestamp_zero.json": [],
    "12_read.json": [],
    "13_postback_payload_only.json": ["postback.{}"],
    "14_postback_with_title.json": ["postback.{}"],
    "15_postback_with_referral.json": ["postback.{}"],
    "16_standby_postback_empty.json": [],
    "17_standby_echo_media_template_docs.json": [],
    "18_batched_multi_entry_multi_messaging.json": [
        "mid.$cAADC6JqUd5piBUHSi1b0_yV7_q5D", "mid.$cAADC6JqUd5piBUNlilb0_4pAIyJP",
        "mid.$cAADC6JqUd5piBUMhiFb0_3k8oII5", "mid.$cAADC6JqUd5piBUJHWFb0_0KieOC9",
        "mid.$cAADC6JqUd5piBUJmk1b0_0qCq5Wv"],
    "19_numeric_ids_unicode_escaped.json": ["mid.1460923697625:5c96e8279b55505308"],
    "20_sticker_and_text_two_messaging_escaped_slashes.json": [
        "mid.1463910455008:68160c45703c925412", "mid.1463910479218:dcf4367d3dcbd4ac22"],
    "21_policy_enforcement_no_sender.json": [],
    "22_reply_to_event.json": ["m_1457764197618:41d102a3e1ae206a38"],
    "23_message_edit_event.json": ["m_1457764197618:41d102a3e1ae206a38"],
    "24_reaction_event.json": [],
    "25_delivery_no_timestamp_docs_event.json": [],
}


def test_every_real_payload_is_listed():
    assert sorted(REAL_PAYLOADS) == sorted(p.name for p in PAYLOADS.glob("*.json"))


@pytest.mark.parametrize("name", sorted(REAL_PAYLOADS))
def test_real_payload_is_answered_200_and_handled_as_its_kind(client, rows, name):
    response = client.post_webhook(payload_body(name))
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    stored = sorted(mid for (mid,) in rows("SELECT mid FROM messages_raw"))
    expected = REAL_PAYLOADS[name]
    assert len(stored) == len(expected)
    for mid, want in zip(stored, sorted(expected)):
        assert mid.startswith(want.replace("{}", "")) if "{}" in want else mid == want
    assert rows("SELECT count(*) FROM expenses") == [(0,)]
    assert rows("SELECT count(*) FROM jobs") == [(len(expected),)]


def test_real_quick_replies_store_their_payload(client, rows):
    client.post_webhook(payload_body("04_quick_reply.json"))
    assert rows("SELECT kind, text FROM messages_raw") == [("quick_reply", "PICK_ACTION")]


def test_reply_then_edit_then_reaction_real_events(client, rows):
    for name in ("22_reply_to_event.json", "23_message_edit_event.json", "24_reaction_event.json"):
        assert client.post_webhook(payload_body(name)).status == 200
    assert rows("SELECT text, edit_count FROM messages_raw") == [("hello, world! (edited)", 1)]


def test_a_failure_after_the_commit_never_turns_into_an_error(service, client, rows, caplog):
    def broken(saved):
        raise RuntimeError("reply pool is gone")
    service.ingest.after_commit = broken
    response = client.post_webhook(delivery(message_event("111", "m_1", "coffee 100")))
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    assert rows("SELECT amount_minor FROM expenses") == [(10000,)]
    [failure] = [r.fields for r in caplog.records if r.msg == "after_commit_failed"]
    assert "RuntimeError: reply pool is gone" in failure["traceback"]


def test_rules_give_common_items_a_category(client, rows):
    client.post_webhook(delivery(message_event("111", "m_1", "taxi 12\ngizmo 3\ncoffee 2 #treats")))
    assert rows("SELECT description, category, category_source FROM expenses ORDER BY line") == [
        ("taxi", "transport", "rule"), ("gizmo", None, None), ("coffee", "treats", "user")]
