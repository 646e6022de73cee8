"""Invariant 3: when the database cannot take the write, the spool does, and replay catches up."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from conftest import (
    META_DEADLINE,
    Client,
    delivery,
    make_config,
    message_event,
    psid_hash,
    wait_for,
)

from expensebot import __version__
from expensebot.events import Message
from expensebot.ingest.spool import Spool

T0 = 1764075600000


def count(db_path, sql="SELECT count(*) FROM messages_raw"):
    conn = sqlite3.connect(db_path, timeout=0.1)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def locker(service):
    """Another connection holding the write lock, as a sqlite3 CLI session with an open transaction would."""
    conn = sqlite3.connect(service.config.db_path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def test_locked_database_spools_answers_200_then_replays(service, client, locker, caplog):
    started = time.monotonic()
    response = client.post_webhook(delivery(message_event("111", "m_1", "coffee 100")))
    first_answer = time.monotonic() - started
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    # It tried the database for its write timeout, then spooled; within Meta's deadline, lock or not.
    assert service.db.write_timeout * 0.9 <= first_answer < META_DEADLINE
    assert locker.execute("SELECT count(*) FROM messages_raw").fetchone()[0] == 0
    assert service.ingest.spool.depth() == 1

    # While the spool drains, new events queue behind it at once instead of waiting again: a second
    # try of the database would take its write timeout once more.
    started = time.monotonic()
    assert client.post_webhook(delivery(message_event("111", "m_2", "tea 3"))).status == 200
    assert time.monotonic() - started < service.db.write_timeout / 2
    assert client.get("/healthz").json() == {"status": "ok", "spool_depth": 2, "version": __version__}

    locker.execute("ROLLBACK")
    assert wait_for(lambda: count(service.config.db_path) == 2)
    assert count(service.config.db_path, "SELECT sum(amount_minor) FROM expenses") == 10300
    assert count(service.config.db_path, "SELECT count(*) FROM jobs") == 2
    assert wait_for(lambda: service.ingest.spool.files() == [])
    assert wait_for(lambda: not service.ingest.spooling)  # cleared just after the last file goes
    events = [(r.msg, r.fields.get("mid")) for r in caplog.records if hasattr(r, "fields")]
    assert ("event_spooled", "m_1") in events and ("event_logged", "m_1") in events
    assert events.index(("event_spooled", "m_1")) < events.index(("event_logged", "m_1"))


def test_database_and_spool_both_failing_is_503_and_health_says_so_until_a_write_is_taken(service, client, locker):
    spool_dir = service.config.spool_dir
    spool_dir.rmdir()
    spool_dir.write_text("a file where the spool directory should be")
    response = client.post_webhook(delivery(message_event("111", "m_1")))
    assert response.status == 503
    assert "redeliver" in response.json()["error"]
    health = client.get("/healthz")
    assert health.status == 503 and health.json()["reason"].startswith("the last delivery was stored nowhere")
    spool_dir.unlink()
    spool_dir.mkdir()
    locker.execute("ROLLBACK")
    assert client.post_webhook(delivery(message_event("111", "m_1"))).status == 200  # Meta's redelivery
    assert client.get("/healthz").status == 200


def test_spool_files_replay_in_the_order_written_whatever_the_clock_says(tmp_path):
    spool = Spool(tmp_path / "spool").open()
    first = Message(psid_hash("111"), "m_1", "message", "coffee 1", T0, T0, "{}")
    second = Message(psid_hash("111"), "m_2", "message", "undo", T0, T0, "{}")
    a = spool.append([first])
    b = spool.append([second])
    os.utime(b, ns=(0, 0))  # the clock stepped back between the two writes
    os.utime(a, ns=(2**62, 2**62))
    assert spool.files() == [a, b]
    c = Spool(tmp_path / "spool").open().append([first])  # after a restart, numbering goes on
    assert spool.files() == [a, b, c]


def test_replay_is_idempotent(service):
    service.ingest.replayer.stop()
    ingest = service.ingest
    first = Message(psid_hash("111"), "m_1", "message", "coffee 1", 1764000000000, 1764000000000, "{}")
    second = Message(psid_hash("111"), "m_2", "message", "tea 2", 1764000000000, 1764000000000, "{}")
    ingest.write([first])
    ingest.spool.append([first, second])
    ingest.spool.append([second])
    assert ingest.replay() == 1
    assert count(service.config.db_path) == 2
    assert count(service.config.db_path, "SELECT count(*) FROM expenses") == 2
    assert ingest.spool.files() == []


def test_spool_left_by_a_previous_run_is_replayed_on_start(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config, replay_interval=0.05)
    service.ingest.replayer.stop()
    service.ingest.spooling = True  # as if the database had been locked
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 5")))
    service.close()  # the run ends with its event still spooled
    (config.spool_dir / "00000000000000000001-1-000000-1.tmp").write_text("half a line")
    assert count(config.db_path) == 0

    restarted = open_service(config, replay_interval=0.05)
    assert wait_for(lambda: count(config.db_path) == 1)
    assert wait_for(lambda: list(config.spool_dir.iterdir()) == [])  # removed after the commit


def test_unreadable_spool_file_is_set_aside_and_the_rest_replayed(service, caplog):
    spool = service.ingest.spool
    service.ingest.spooling = True
    bad = spool.directory / "00000000000000000001-1-000000-1.jsonl"
    bad.write_text("{not json\n")
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 5")))
    assert wait_for(lambda: count(service.config.db_path) == 1)
    assert wait_for(lambda: [p.name for p in spool.directory.iterdir()] == [bad.with_suffix(".bad").name])
    assert [r.fields["file"] for r in caplog.records if r.msg == "spool_file_rejected"] == [bad.with_suffix(".bad").name]


def test_spool_files_hold_psid_hash_never_the_psid(service, locker):
    client = Client(service)
    client.post_webhook(delivery(message_event("987654321012345", "m_1", "coffee 5")))
    (path,) = service.ingest.spool.files()
    content = path.read_text()
    assert "987654321012345" not in content
    assert json.loads(content)["psid_hash"] == psid_hash("987654321012345")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def set_immutable(path, on: bool) -> bool:
    """chattr +i: read-only even for root (which ignores file modes); False where unsupported."""
    import subprocess
    try:
        return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_read_only_database_file_spools_then_replays_when_writable(service, client, caplog):
    db_path = service.config.db_path
    if not set_immutable(db_path, True):
        pytest.skip("chattr +i is not available here (needs root and ext4-like file systems)")
    try:
        started = time.monotonic()
        response = client.post_webhook(delivery(message_event("111", "m_ro", "coffee 5")))
        assert response.status == 200
        assert time.monotonic() - started < META_DEADLINE
        assert service.ingest.spool.depth() == 1
        reasons = [r.fields["reason"] for r in caplog.records if r.msg == "database_unavailable"]
        assert reasons and "read-only" in reasons[0]
    finally:
        set_immutable(db_path, False)
    assert wait_for(lambda: count(db_path) == 1)
    assert wait_for(lambda: service.ingest.spool.depth() == 0)
