"""Replies through a real local Send API stand-in: what people read, and that nothing is sent twice."""

from __future__ import annotations

import json

import pytest
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

from expensebot.replies import words
from expensebot.replies.graph import appsecret_proof

T0 = 1764075600000  # 2025-11-25T13:00:00Z


def say(bot, text, mid, psid="111", timestamp=T0, **fields):
    event = message_event(psid, mid, text, timestamp=timestamp, **fields)
    response = Client(bot).post_webhook(delivery(event))
    assert response.status == 200
    return response


def test_expense_reply_says_how_it_was_read_and_the_running_total(bot, graph):
    say(bot, "coffee 100", "m_1")
    say(bot, "lunch 12,50 #food\nbus", "m_2")
    assert graph.texts == [
        "coffee — 100.00 USD, today\nToday: 100.00 USD",
        "lunch — 12.50 USD, today #food\nLine 2 not read: no amount.\nToday: 112.50 USD",
    ]
    first = graph.requests[0]
    assert first["path"] == "/v25.0/me/messages"
    assert first["query"] == {}  # the token travels in a header, never in a URL
    assert first["headers"]["Authorization"] == "Bearer test-page-token"
    assert first["json"]["appsecret_proof"] == appsecret_proof("test-page-token", APP_SECRET)
    assert first["json"]["recipient"] == {"id": "111"}
    assert first["json"]["messaging_type"] == "RESPONSE"


def test_currencies_are_totalled_apart(bot, graph):
    say(bot, "coffee 100", "m_1")
    say(bot, "€12 lunch", "m_2")
    assert graph.texts[-1] == "lunch — 12.00 EUR, today\nToday: 12.00 EUR, 100.00 USD"


def test_one_delivery_for_several_people_totals_each_person_apart(bot, graph):
    say(bot, "coffee 1", "m_0", psid="111", timestamp=T0 - 86_400_000)  # yesterday: not in today's total
    events = [message_event("111", "m_1", "coffee 100", timestamp=T0),
              message_event("222", "m_2", "tea 7", timestamp=T0),
              message_event("111", "m_3", "€5 cake", timestamp=T0),
              message_event("222", "m_4", "hello", timestamp=T0)]
    assert Client(bot).post_webhook(delivery(*events)).status == 200
    replies = sorted((d["recipient"]["id"], d["message"]["text"]) for d in graph.delivered[1:])
    # Two people's replies go together as one batch, each person's in order: two batches of two.
    batches = [json.loads(r["form"]["batch"]) for r in graph.requests[1:]]
    assert [len(b) for b in batches] == [2, 2]
    # Each reply's total is the day as its own message left it.
    assert replies == sorted([
        ("111", "coffee — 100.00 USD, today\nToday: 100.00 USD"),
        ("111", "cake — 5.00 EUR, today\nToday: 5.00 EUR, 100.00 USD"),
        ("222", "tea — 7.00 USD, today\nToday: 7.00 USD"),
        ("222", words.HINT),
    ])


def test_yesterday_is_named(bot, graph):
    say(bot, "taxi 20 yesterday", "m_1")
    assert graph.texts == ["taxi — 20.00 USD, yesterday"]


@pytest.mark.parametrize("text, reply", [
    ("hello", words.HINT),
    ("what is this", words.HINT),
    ("🍕", words.HINT),
    ("-5 coffee", 'Not saved: amount must be positive.\nTry "coffee 4.50" — or "help".'),
    ("yacht 99999999999999", 'Not saved: amount too large.\nTry "coffee 4.50" — or "help".'),
])
def test_unparseable_text_gets_a_hint_and_is_stored(bot, graph, text, reply):
    say(bot, text, "m_1")
    assert graph.texts == [reply]
    assert query(bot, "SELECT text FROM messages_raw") == [(text,)]
    assert query(bot, "SELECT count(*) FROM expenses") == [(0,)]


def test_attachment_only_message_gets_a_hint_and_a_photo_is_a_receipt(bot, graph):
    from expensebot.receipts import ocr

    audio = message_event("111", "m_audio", None, attachments=[{"type": "audio", "payload": {"url": "https://x/a.mp4"}}])
    Client(bot).post_webhook(delivery(audio))
    image = message_event("111", "m_img", None, attachments=[{"type": "image", "payload": {"url": "https://x/y.png"}}])
    Client(bot).post_webhook(delivery(image))
    receipt = words.receipt_unreadable("the photo is not on Messenger's servers") if ocr.available() \
        else words.RECEIPTS_OFF
    assert graph.texts == [words.HINT, receipt]


def test_help_lists_examples(bot, graph):
    say(bot, "help", "m_1")
    assert graph.texts == [words.HELP]
    assert "coffee 4.50" in words.HELP


def test_no_reply_for_duplicates_echoes_and_receipts(bot, graph):
    say(bot, "coffee 1", "m_1")
    say(bot, "coffee 1", "m_1")
    client = Client(bot)
    for event in ({"message": {"mid": "m_echo", "text": "coffee 1", "is_echo": True}},
                  {"delivery": {"mids": ["m_1"], "watermark": T0}}, {"read": {"watermark": T0}},
                  {"reaction": {"reaction": "love", "action": "react", "mid": "m_1"}}):
        client.post_webhook(delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": T0, **event}))
    assert len(graph.requests) == 1


def test_edit_reply_says_updated(bot, graph):
    say(bot, "coffee 100", "m_1")
    Client(bot).post_webhook(delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": T0 + 5000,
                                           "message_edit": {"mid": "m_1", "text": "coffee 120", "num_edit": 1}}))
    assert graph.texts[-1] == "Updated: coffee — 120.00 USD, today\nToday: 120.00 USD"


def test_undo_removes_the_latest_expense_and_names_it(bot, graph):
    say(bot, "coffee 100", "m_1")
    say(bot, "taxi 12,50", "m_2")
    say(bot, "undo", "m_3")
    assert graph.texts[-1] == "Removed: taxi — 12.50 USD."
    assert query(bot, "SELECT description FROM expenses") == [("coffee",)]
    say(bot, "undo", "m_3")  # redelivered: not undone twice
    assert query(bot, "SELECT description FROM expenses") == [("coffee",)]
    say(bot, "Undo!", "m_4")
    say(bot, "undo", "m_5")
    assert graph.texts[-2:] == ["Removed: coffee — 100.00 USD.", "Nothing to undo."]


def test_undo_only_touches_that_person(bot, graph):
    say(bot, "coffee 100", "m_1", psid="111")
    say(bot, "tea 3", "m_2", psid="222")
    say(bot, "undo", "m_3", psid="111")
    assert query(bot, "SELECT psid_hash, description FROM expenses") == [(psid_hash("222"), "tea")]


def test_delete_my_data_asks_then_erases_only_that_person(bot, graph):
    say(bot, "coffee 100", "m_1", psid="111")
    say(bot, "tea 3\nbus 2", "m_2", psid="111")
    say(bot, "tea 3", "m_3", psid="222")
    say(bot, "delete my data", "m_4", psid="111")
    ask = graph.requests[-1]["json"]["message"]
    assert ask["text"].endswith("Are you sure?")
    assert [q["payload"] for q in ask["quick_replies"]] == [words.DELETE_CONFIRM, words.DELETE_CANCEL]
    assert query(bot, "SELECT count(*) FROM expenses WHERE psid_hash = ?", psid_hash("111")) == [(3,)]

    say(bot, "Yes, delete", "m_5", psid="111", quick_reply={"payload": words.DELETE_CONFIRM})
    assert graph.texts[-1].startswith("Done: I erased your 4 messages and 3 expenses.")
    for table in ("messages_raw", "expenses"):
        assert query(bot, f"SELECT count(*) FROM {table} WHERE psid_hash = ?", psid_hash("111")) == [(0,)]
    assert query(bot, "SELECT count(*) FROM jobs") == [(1,)]
    assert query(bot, "SELECT psid_hash, description FROM expenses") == [(psid_hash("222"), "tea")]
    assert query(bot, "SELECT count(*) FROM messages_raw") == [(1,)]


def test_delete_cancel_keeps_everything(bot, graph):
    say(bot, "coffee 100", "m_1")
    say(bot, "No, keep", "m_2", quick_reply={"payload": words.DELETE_CANCEL})
    assert graph.texts[-1] == "Kept. Nothing was deleted."
    assert query(bot, "SELECT count(*) FROM expenses") == [(1,)]


def test_summary_reply_comes_from_the_rows(bot, graph):
    say(bot, "coffee 100 #drinks", "m_1")
    say(bot, "lunch 12,50 #food", "m_2")
    say(bot, "tea 3,25 #drinks", "m_3")
    say(bot, "summary all", "m_4")
    assert graph.texts[-1] == ("All time: 115.75 USD in 3 expenses\n"
                               "Top: drinks 103.25 USD, food 12.50 USD")


# --- Send API errors, each code class -----------------------------------------------------------

@pytest.mark.parametrize("code, subcode, status, attempts", [
    (1200, None, 500, 2),   # temporary: retried, then the scripted success
    (613, None, 400, 2),    # rate limited: retried
    (4, None, 400, 2),
    (None, None, 502, 2),   # a proxy's 5xx without a Graph error: retried
    (551, None, 400, 1),    # person unavailable: never retried
    (10, 2018278, 400, 1),  # outside the 24-hour window
    (100, 2018001, 400, 1),  # no matching user
    (190, None, 401, 1),    # bad token
])
def test_send_api_errors_are_retried_only_when_it_helps(bot, graph, caplog, code, subcode, status, attempts):
    if code is None:
        graph.script.append((status, b"<html>bad gateway</html>"))
    else:
        graph.error(code, subcode, status)
    say(bot, "coffee 100", "m_1")
    assert len(graph.requests) == attempts
    assert query(bot, "SELECT amount_minor FROM expenses") == [(10000,)]
    failed = [r.fields for r in caplog.records if r.msg == "reply_failed"]
    if attempts == 1:
        assert [(f["psid_hash"], f["code"]) for f in failed] == [(psid_hash("111"), code)]
    else:
        assert failed == []


def test_retries_give_up_after_a_bound_and_log(bot, graph, caplog):
    for _ in range(10):
        graph.error(1200, status=500)
    say(bot, "coffee 100", "m_1")
    assert len(graph.requests) == 4
    assert [r.fields["code"] for r in caplog.records if r.msg == "reply_failed"] == [1200]


def test_send_api_down_never_affects_the_write(tmp_path, caplog, open_service):
    from conftest import free_port
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=f"http://127.0.0.1:{free_port()}/v25.0")
    bot = open_service(config, reply_backoff=(0, 0, 0))
    assert say(bot, "coffee 100", "m_1").text == "EVENT_RECEIVED"
    assert query(bot, "SELECT amount_minor FROM expenses") == [(10000,)]
    assert [r.fields["reason"] for r in caplog.records if r.msg == "reply_failed"] == [
        "request failed: ConnectionRefusedError"]


def test_without_a_page_token_replies_are_logged_not_sent(tmp_path, caplog, open_service):
    bot = open_service(make_config(tmp_path))
    say(bot, "coffee 100", "m_1", psid="98765432101234")
    (logged,) = [r.fields for r in caplog.records if r.msg == "reply_logged"]
    assert logged == {"psid_hash": psid_hash("98765432101234"), "mid": "m_1",
                      "text": "coffee — 100.00 USD, today\nToday: 100.00 USD"}
    assert "98765432101234" not in json.dumps([getattr(r, "fields", {}) for r in caplog.records])


def test_replies_stay_under_2000_characters(bot, graph):
    say(bot, "\n".join(f"item number {i} with a rather long description {i + 1}" for i in range(50)), "m_1")
    assert len(graph.texts[0]) < 2000
    assert graph.texts[0].endswith("…")


def test_replies_go_out_in_commit_order_on_the_real_senders(tmp_path, graph, open_service):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)  # the real sender threads
    for i in range(1, 21):
        say(bot, f"item {i}", f"m_{i}")
    say(bot, "summary all", "m_21")
    assert wait_for(lambda: len(graph.delivered) >= 21, 10)
    assert [t.split(",")[0] for t in graph.texts[:20]] == [f"item — {i}.00 USD" for i in range(1, 21)]
    assert "210.00 USD in 20 expenses" in graph.texts[20]


def say_only(bot, text, mid, psid="111"):
    """Post a message; return once it is committed, before its reply is sent."""
    assert Client(bot.app).post_webhook(delivery(message_event(psid, mid, text, timestamp=T0))).status == 200


def test_a_long_outage_drops_a_persons_oldest_replies_never_a_row(tmp_path, graph, caplog, open_service):
    graph.delay = 1.0  # the first reply holds this person's queue while the others pile up behind it
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    bot.outbox.max_per_person = 3
    say_only(bot, "item 1", "m_1")
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    for i in range(2, 7):
        say_only(bot, f"item {i}", f"m_{i}")
    assert bot.outbox.drain(30)
    assert [t.split(",")[0] for t in graph.texts] == [f"item — {i}.00 USD" for i in (1, 4, 5, 6)]
    assert [(r.fields["mid"], r.fields["reason"]) for r in caplog.records if r.msg == "reply_dropped"] == [
        ("m_2", "too many replies queued for this person"), ("m_3", "too many replies queued for this person")]
    assert query(bot, "SELECT count(*) FROM expenses") == [(6,)]


def test_the_total_cap_drops_new_replies_and_logs_each(tmp_path, graph, caplog, open_service):
    graph.delay = 1.0
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url)
    bot = open_service(config)
    bot.outbox.senders, bot.outbox.max_queued = 1, 2  # one batch in flight: the rest stay queued meanwhile
    say_only(bot, "item 1", "m_1", psid="101")
    assert wait_for(lambda: len(graph.requests) == 1, 10)
    for i in range(2, 6):
        say_only(bot, f"item {i}", f"m_{i}", psid=str(100 + i))
    assert bot.outbox.drain(30)
    assert sorted(t.split(",")[0] for t in graph.texts) == [f"item — {i}.00 USD" for i in (1, 2, 3)]
    assert [(r.fields["mid"], r.fields["reason"]) for r in caplog.records if r.msg == "reply_dropped"] == [
        ("m_4", "reply queue full"), ("m_5", "reply queue full")]
    assert query(bot, "SELECT count(*) FROM expenses") == [(5,)]


def test_a_message_committed_after_close_keeps_its_row_and_has_its_reply_refused(tmp_path, caplog, open_service):
    bot = open_service(make_config(tmp_path))
    bot.close()  # on purpose, mid-test: a request still finishing after close is what this test checks
    say_only(bot, "tea 3", "m_2")
    assert [(r.fields["mid"], r.fields["reason"]) for r in caplog.records if r.msg == "reply_dropped"] == [
        ("m_2", "shutting down")]
    assert query(bot, "SELECT count(*) FROM expenses") == [(1,)]


def test_every_command_has_its_reply_and_every_reply_its_command():
    from expensebot.chat.meaning import COMMAND_NAMES
    from expensebot.replies.compose import REPLIES
    assert set(REPLIES) == {None, *COMMAND_NAMES}
