"""AI enrichment against a real local model server: it can be slow, down or wrong, and nothing is lost."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time

import pytest
from conftest import Client, delivery, make_config, message_event, query, wait_for
from test_ai import CUT_OFF, TIMEOUT, answers_raw, hangs, model, says, trickles_body  # noqa: F401  (model is a fixture)

from expensebot import store, times
from expensebot.ai import MAX_TIMEOUT, AiClient
from expensebot.background import enrich
from expensebot.background.enrich import Enricher
from expensebot.db import Database
from expensebot.limits import RateLimiter

T0 = 1764075600000


rows = query


class Clock:
    def __init__(self, ms: int = T0):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def bot(tmp_path, model, open_service):
    """The bot, and an Enricher with the AI that the tests drive themselves on a fake clock.

    The service's own enricher has AI off and a parked timer, so it never touches these jobs, and
    its ingest leaves them pending (as with AI on) instead of writing them `skipped`.
    """
    config = make_config(tmp_path, ai_rate_per_minute=6)
    service = open_service(config, enrich_interval=3600)
    service.ingest.ai_enabled = True
    clock = Clock()
    enricher = Enricher(service.db, AiClient(model.url, "", "test-model", TIMEOUT, clock=lambda: clock.ms / 1000),
                        RateLimiter(config.ai_rate_per_minute, 100, clock=lambda: clock.ms / 1000), now_ms=clock)
    yield service, enricher, clock
    enricher.stop()


def say(service, text, mid, psid="111"):
    """Send one message; return its id, committed by the time the webhook answered (not spooled)."""
    response = Client(service).post_webhook(delivery(message_event(psid, mid, text, timestamp=T0)))
    assert response.status == 200
    [(message_id,)] = rows(service, "SELECT id FROM messages_raw WHERE mid = ?", mid)
    return message_id


def test_ai_off_makes_zero_calls_and_jobs_end_skipped(tmp_path, model, caplog, open_service):
    config = make_config(tmp_path, ai_enabled=False, ai_url=model.url, ai_model="m")
    service = open_service(config, enrich_interval=0.05)
    for n in range(5):
        say(service, f"gizmo {n + 1}", f"m_{n}")
    assert wait_for(lambda: rows(service, "SELECT count(*) FROM jobs WHERE status = 'skipped'") == [(5,)])
    service.close()  # stopped: every ai_enriched line is written
    assert model.requests == []
    events = [(r.msg, r.fields.get("mid")) for r in caplog.records if r.msg in ("event_logged", "ai_enriched")]
    for n in range(5):
        assert events.index(("event_logged", f"m_{n}")) < events.index(("ai_enriched", f"m_{n}"))
    assert {r.fields["status"] for r in caplog.records if r.msg == "ai_enriched"} == {"skipped"}


def test_ai_off_skips_a_backlog_larger_than_a_batch_in_one_turn(tmp_path, monkeypatch, open_service):
    monkeypatch.setattr(enrich, "SKIP_BATCH", 3)
    service = open_service(make_config(tmp_path, ai_enabled=False),
                           enrich_interval=3600)  # the timer stays parked: the test calls dispatch()
    service.ingest.ai_enabled = True  # a backlog pending, as a run with AI on leaves it
    events = [message_event("111", f"m_{n}", f"gizmo {n + 1}", timestamp=T0) for n in range(10)]
    assert Client(service).post_webhook(delivery(*events)).status == 200
    assert service.enricher.dispatch() == 10
    assert rows(service, "SELECT status, count(*) FROM jobs GROUP BY status") == [("skipped", 10)]
    assert service.enricher.dispatch() == 0


def test_model_category_is_stored_with_source_ai(bot, model, caplog):
    service, enricher, _ = bot
    model.will(says('{"category": "shopping"}'))
    message_id = say(service, "gizmo 12", "m_1")
    enricher.run_job(message_id)
    assert rows(service, "SELECT category, category_source FROM expenses") == [("shopping", "ai")]
    assert rows(service, "SELECT status, attempts FROM jobs") == [("ok", 1)]
    assert [r.fields["status"] for r in caplog.records if r.msg == "ai_enriched"] == ["ok"]
    assert model.requests[0]["json"]["messages"][1]["content"] == "gizmo"


@pytest.mark.parametrize("meanwhile", ["edited", "erased and written again"])
def test_a_late_answer_never_lands_on_a_row_that_took_the_place_of_the_one_asked_about(bot, model, meanwhile,
                                                                                        caplog):
    service, enricher, _ = bot
    model.will(says('{"category": "shopping"}', after=TIMEOUT / 2))
    message_id = say(service, "gizmo 12", "m_1")
    asking = threading.Thread(target=enricher.run_job, args=(message_id,))
    asking.start()
    assert wait_for(lambda: model.requests, 10)  # the model is thinking about "gizmo"
    client = Client(service)
    if meanwhile == "edited":
        client.post_webhook(delivery({"sender": {"id": "111"}, "recipient": {"id": "1"}, "timestamp": T0 + 1000,
                                      "message_edit": {"mid": "m_1", "text": "widget 12", "num_edit": 1}}))
    else:
        client.post_webhook(delivery(message_event("111", "m_2", "Yes, delete", timestamp=T0 + 1000,
                                                   quick_reply={"payload": "DELETE_MY_DATA_CONFIRM"}),
                                     message_event("111", "m_3", "widget 12", timestamp=T0 + 2000)))
    asking.join(10)
    assert [r.fields["status"] for r in caplog.records if r.msg == "ai_enriched" and r.fields["mid"] == "m_1"] == [
        "ok"]  # it did answer
    assert rows(service, "SELECT description, category FROM expenses") == [("widget", None)]


def test_a_persons_category_and_the_rules_come_first(bot, model):
    service, enricher, _ = bot
    for message_id in (say(service, "gizmo 12 #toys", "m_1"), say(service, "coffee 3", "m_2")):
        enricher.run_job(message_id)
    assert rows(service, "SELECT description, category, category_source FROM expenses ORDER BY id") == [
        ("gizmo", "toys", "user"), ("coffee", "food", "rule")]
    assert model.requests == []
    assert rows(service, "SELECT status FROM jobs") == [("skipped",), ("skipped",)]


def test_ai_never_overwrites_a_category_set_meanwhile(bot, model):
    service, enricher, _ = bot
    model.will(says('{"category": "shopping"}'))
    message_id = say(service, "gizmo 12", "m_1")
    conn = sqlite3.connect(service.config.db_path)
    conn.execute("UPDATE expenses SET category = 'gifts', category_source = 'user'")
    conn.commit()
    conn.close()
    enricher.run_job(message_id)
    assert rows(service, "SELECT category, category_source FROM expenses") == [("gifts", "user")]


BAD_MODELS = {
    "hangs": hangs,
    "trickles": trickles_body,
    "answers 500": answers_raw(500, b'{"error": "overloaded"}'),
    "answers garbage": answers_raw(200, b"<html>not json"),
    "answers prose": says("I think this is probably shopping, but it could be anything."),
    "answers an unknown category": says('{"category": "yachts"}'),
}


@pytest.mark.parametrize("behaviour", BAD_MODELS)
def test_a_bad_model_never_costs_a_write_and_the_job_ends_error(bot, model, caplog, behaviour):
    service, enricher, clock = bot
    model.will(BAD_MODELS[behaviour])
    message_id = say(service, "gizmo 12", "m_1")  # committed and answered at once
    assert rows(service, "SELECT amount_minor, category FROM expenses") == [(1200, None)]
    for attempt in range(1, enrich.MAX_ATTEMPTS + 1):
        started = time.monotonic()
        enricher.run_job(message_id)
        assert time.monotonic() - started < CUT_OFF  # cut off at TIMEOUT, not after the model's HANG
        clock.ms += 60_000
        status, attempts, error = rows(service, "SELECT status, attempts, last_error FROM jobs")[0]
        assert attempts == attempt and error
        assert status == ("error" if attempt == enrich.MAX_ATTEMPTS else "pending")
    assert [r.fields["status"] for r in caplog.records if r.msg == "ai_enriched"] == ["error"]
    # AI failures are warnings, so a level filter on the log finds every one of them.
    assert {r.levelname for r in caplog.records if r.msg in ("ai_enriched", "ai_postponed")} == {"WARNING"}
    assert rows(service, "SELECT amount_minor, category FROM expenses") == [(1200, None)]
    assert Client(service).get("/healthz").status == 200


def test_a_model_that_is_down_is_asked_once_a_rest_and_the_other_jobs_wait_untouched(bot, model):
    service, enricher, clock = bot
    model.will(answers_raw(503, b""))
    ids = [say(service, f"gizmo {n + 1}", f"m_{n}", psid=f"{n}00") for n in range(6)]
    enricher.run_job(ids[0])  # fails: the model rests a second
    assert enricher.dispatch() == 0  # no job is taken while it rests
    clock.ms += 1000
    for message_id in ids[1:]:
        enricher.run_job(message_id)  # the first one asks (and fails: two seconds' rest), the others wait
    assert len(model.requests) == 2
    assert rows(service, "SELECT status, attempts FROM jobs ORDER BY message_id") == [
        ("pending", 1), ("pending", 1), *[("pending", 0)] * 4]
    model.will(says('{"category": "shopping"}'))
    clock.ms += 2000
    for message_id in ids:
        enricher.run_job(message_id)
    assert rows(service, "SELECT DISTINCT status FROM jobs") == [("ok",)]


def test_failed_job_waits_for_its_backoff(bot, model):
    service, enricher, clock = bot
    model.will(answers_raw(500, b"{}"))
    message_id = say(service, "gizmo 12", "m_1")
    enricher.run_job(message_id)
    with service.db.connection() as conn:
        assert store.due_jobs(conn, times.iso_utc(clock.ms), 10) == []
        due = store.due_jobs(conn, times.iso_utc(clock.ms + enrich.RETRY_AFTER_MS), 10)
        assert [job["message_id"] for job in due] == [message_id]


def test_rate_limit_per_person_while_another_persons_jobs_run(bot, model):
    service, enricher, clock = bot
    enricher.rate.per_minute = 2
    model.will(says('{"category": "shopping"}'))
    first = [say(service, f"gizmo {n + 1}", f"a_{n}", psid="111") for n in range(3)]
    other = say(service, "widget 5", "b_0", psid="222")
    for message_id in (*first, other):
        enricher.run_job(message_id)
    assert rows(service, "SELECT mid, status, attempts FROM jobs JOIN messages_raw ON id = message_id ORDER BY mid") == [
        ("a_0", "ok", 1), ("a_1", "ok", 1), ("a_2", "pending", 0), ("b_0", "ok", 1)]
    assert len(model.requests) == 3
    clock.ms += 61_000  # the minute has passed: the waiting job runs
    enricher.run_job(first[2])
    assert rows(service, "SELECT count(*) FROM jobs WHERE status = 'ok'") == [(4,)]


def test_writes_are_never_rate_limited(bot, model):
    service, _, _ = bot
    for n in range(20):
        say(service, f"gizmo {n + 1}", f"m_{n}")
    assert rows(service, "SELECT count(*) FROM expenses") == [(20,)]


def test_restart_with_pending_jobs_resumes_them(tmp_path, model, open_service):
    config = make_config(tmp_path, ai_enabled=True, ai_url=model.url, ai_model="m", ai_timeout=TIMEOUT)
    model.will(says('{"category": "shopping"}'))
    # A first run that stops before its jobs ran (as a crash or a restart would leave them).
    first = open_service(dataclasses.replace(config, ai_enabled=False),
                         enrich_interval=3600)
    first.ingest.ai_enabled = True  # left pending, as a crash with AI on would leave them
    for n in range(3):
        say(first, f"gizmo {n + 1}", f"m_{n}")
    first.close()
    assert rows(first, "SELECT status FROM jobs") == [("pending",)] * 3
    second = open_service(config, enrich_interval=0.05)
    assert wait_for(lambda: rows(second, "SELECT count(*) FROM jobs WHERE status = 'ok'") == [(3,)], 10)
    assert rows(second, "SELECT DISTINCT category_source FROM expenses") == [("ai",)]


def test_pending_jobs_wait_in_the_database_not_in_memory(bot, model):
    service, _, clock = bot
    model.will(hangs)
    conn = sqlite3.connect(service.config.db_path)
    conn.executemany("INSERT INTO messages_raw (id, psid_hash, mid, received_at, sent_at, kind, event)"
                     " VALUES (?, 'h', ?, 'x', 'x', 'message', '{}')", [(n, f"m_{n}") for n in range(1, 5001)])
    conn.executemany("INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
                     " occurred_at, created_at) VALUES (?, 'h', ?, 0, 100, 'USD', 'gizmo', 'x', 'x')",
                     [(n, f"m_{n}") for n in range(1, 5001)])
    conn.executemany("INSERT INTO jobs (message_id, run_after, updated_at) VALUES (?, '2000', 'x')",
                     [(n,) for n in range(1, 5001)])
    conn.commit()
    conn.close()
    # Calls that wait for the hanging model as long as a client may: longer than a write waits for the
    # lock, so a lock held across a call would push the next message into the spool.
    ai = AiClient(model.url, "", "test-model", MAX_TIMEOUT)
    assert ai.timeout > service.db.write_timeout
    enricher = Enricher(service.db, ai, RateLimiter(6, 100, clock=lambda: clock.ms / 1000), now_ms=clock).start()
    try:
        for _ in range(5):
            enricher.dispatch()
        assert len(enricher._in_flight) == enricher.capacity
        say(service, "coffee 3", "m_new")  # committed at once, not spooled, while every worker waits
        assert service.ingest.spool.depth() == 0
    finally:
        model.stopped.set()  # the hanging calls answer now, so the pool can stop
        enricher.stop()
        ai.close()


# --- summaries, rephrased ------------------------------------------------------------------------

@pytest.fixture
def chatty(tmp_path, model, graph, open_service):
    config = make_config(tmp_path, ai_enabled=True, ai_url=model.url, ai_model="m", ai_timeout=TIMEOUT,
                         fb_page_access_token="t", fb_graph_url=graph.url)
    service = open_service(config, enrich_interval=3600, reply_backoff=(0, 0, 0))
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 100", timestamp=int(time.time() * 1000))))
    return service


PLAIN = "This month: 100.00 USD in 1 expense\nTop: food 100.00 USD"


@pytest.mark.parametrize("behaviour, expected", [
    (says("You spent 100.00 USD this month across 1 expense, all on food (100.00 USD)."),
     "You spent 100.00 USD this month across 1 expense, all on food (100.00 USD)."),
    (says("You spent 120.00 USD this month on 1 expense."), PLAIN),  # a number not in the summary
    (says("That's 50% of your budget: 100.00 USD."), PLAIN),
    (says("You spent 100.00 EUR this month across 1 expense, all on food."), PLAIN),  # another currency
    (says("You spent €100.00 this month across 1 expense."), PLAIN),
    (says("You spent 100.00 USD this week across 1 expense."), PLAIN),             # another period
    (says("You spent 100.00 USD this month, all on travel."), PLAIN),              # another category
    (hangs, PLAIN),
    (answers_raw(500, b"{}"), PLAIN),
])
def test_rephrased_summary_is_used_only_when_faithful(chatty, model, graph, behaviour, expected):
    model.will(behaviour)
    started = time.monotonic()
    Client(chatty).post_webhook(delivery(message_event("111", "m_2", "summary", timestamp=int(time.time() * 1000))))
    assert time.monotonic() - started < CUT_OFF  # the plain summary after TIMEOUT, not after the model's HANG
    assert graph.texts[-1] == expected


def test_a_locked_database_fails_jobs_with_one_warning_not_a_traceback_each(bot, model, caplog):
    service, enricher, clock = bot
    model.will(says('{"category": "food"}'))
    message_ids = [say(service, f"gizmo {n}", f"m_{n}") for n in range(1, 4)]
    enricher.db = Database(service.config.db_path, write_timeout=0.05)  # give up on the lock quickly
    locker = sqlite3.connect(service.config.db_path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        for message_id in message_ids:
            enricher.run_job(message_id)
        locker.execute("ROLLBACK")
        enricher.run_job(message_ids[0])
    finally:
        locker.close()
    events = [(r.levelname, r.msg) for r in caplog.records if r.name == "expensebot.background.enrich"]
    assert [e for e in events if e[1] != "ai_enriched"] == [("WARNING", "enrich_unavailable"),
                                                              ("WARNING", "enrich_available")]
    assert not [r for r in caplog.records if r.exc_info or "traceback" in getattr(r, "fields", {})]
    assert rows(service, "SELECT status FROM jobs WHERE message_id = ?", message_ids[0]) == [("ok",)]


def test_ai_off_jobs_are_skipped_in_the_messages_own_transaction(tmp_path, caplog, open_service):
    """No poller needed: the timer is parked, and every job is already `skipped`, logged after its event."""
    service = open_service(make_config(tmp_path, ai_enabled=False),
                           enrich_interval=3600)
    events = [message_event("111", f"m_{n}", f"gizmo {n + 1}", timestamp=T0) for n in range(3)]
    assert Client(service).post_webhook(delivery(*events)).status == 200
    assert rows(service, "SELECT status, attempts, count(*) FROM jobs GROUP BY status") == [("skipped", 0, 3)]
    assert service.enricher.dispatch() == 0
    service.close()  # stopped: every line it logs is in
    logged = [(r.msg, r.fields.get("mid")) for r in caplog.records if r.msg in ("event_logged", "ai_enriched")]
    assert logged == [(event, f"m_{n}") for n in range(3) for event in ("event_logged", "ai_enriched")]


def test_with_ai_on_a_message_with_nothing_to_categorise_is_skipped_at_once(tmp_path, model, open_service, caplog):
    config = make_config(tmp_path, ai_enabled=True, ai_url=model.url, ai_model="m", ai_timeout=TIMEOUT)
    service = open_service(config, enrich_interval=0.05)
    for mid, text in (("m_1", "coffee 3"), ("m_2", "gizmo 5 #toys"), ("m_3", "hello"), ("m_4", "help")):
        say(service, text, mid)
    assert rows(service, "SELECT mid, status FROM job_details ORDER BY mid") == [
        ("m_1", "skipped"), ("m_2", "skipped"), ("m_3", "skipped"), ("m_4", "skipped")]
    assert model.requests == []
    assert sorted(r.fields["mid"] for r in caplog.records if r.msg == "ai_enriched") == ["m_1", "m_2", "m_3", "m_4"]
