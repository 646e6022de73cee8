"""Nothing acknowledged is lost or jammed, at the edges: events that can never be stored, odd times,
erasure, a spool that cannot be written, a database file gone, floods of receipts."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import sqlite3
import subprocess
import sys
import threading

import pytest
import requests
from conftest import (
    APP_SECRET,
    META_DEADLINE,
    OPS_TOKEN,
    ROOT,
    Client,
    delivery,
    make_config,
    message_event,
    psid_hash,
    query,
    wait_for,
)

from expensebot import __version__, errors, store, times
from expensebot.events import Message
from expensebot.ingest import webhook
from expensebot.ingest.spool import Spool
from expensebot.ingest.webhook import MAX_COUNTER
from expensebot.replies import words
from expensebot.web.app import create_app

T0 = 1764075600000  # 2025-11-25T13:00:00Z
YEAR_9999_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: in UTC+9 that is already year 10000


def edit_event(psid: str, mid: str, text: str, num_edit, timestamp: int = T0 + 1000) -> dict:
    return {"sender": {"id": psid}, "recipient": {"id": "1"}, "timestamp": timestamp,
            "message_edit": {"mid": mid, "text": text, "num_edit": num_edit}}


def rejected(service) -> list[tuple]:
    return query(service, "SELECT psid_hash, mid, reason, event FROM rejected_events ORDER BY id")


# --- one event that can never be stored ------------------------------------------------------------

@pytest.mark.parametrize("num_edit", [MAX_COUNTER + 1, 2**64 + 5, 10**30])
def test_huge_num_edit_is_rejected_alone_and_the_good_message_beside_it_is_stored(client, service, caplog, num_edit):
    body = delivery(message_event("111", "m_good", "coffee 100", timestamp=T0),
                    edit_event("111", "m_good", "coffee 999", num_edit))
    response = client.post_webhook(body)
    assert (response.status, response.text) == (200, "EVENT_RECEIVED")
    assert query(service, "SELECT mid, amount_minor FROM expenses") == [("m_good", 10000)]
    [(who, mid, reason, event)] = rejected(service)
    assert (who, mid) == (psid_hash("111"), "m_good") and "num_edit" in reason
    assert json.loads(event)["message_edit"]["num_edit"] == num_edit  # kept as received
    assert "sender" not in json.loads(event) and "111" not in event
    assert [r.fields["mid"] for r in caplog.records if r.msg == "event_rejected"] == ["m_good"]
    stats = client.get("/ops/stats", token=OPS_TOKEN).json()
    assert stats["rejected_events"] == 1 and stats["messages"] == 1


def read_past_the_check(service, mid: str) -> None:
    """Read message `mid`'s expense as 10^13 (over the expenses CHECK, which the parser never reads)."""
    original_read = service.ingest.read

    def read(message, sent_ms, settings=None):
        reading = original_read(message, sent_ms, settings)
        if message.mid != mid:
            return reading
        expense = dataclasses.replace(reading.expenses[0], amount_minor=10**13)
        return dataclasses.replace(reading, parsed=dataclasses.replace(reading.parsed, expenses=(expense,)))

    service.ingest.read = read


def test_a_constraint_broken_inside_the_write_rejects_that_event_only(tmp_path, open_service):
    # An amount over the expenses CHECK (the parser refuses it; a row written by a bug would not be).
    # The write path is the real one: only the reading is forced past the parser's own bound.
    service = open_service(make_config(tmp_path))
    read_past_the_check(service, "m_bad")
    response = Client(service).post_webhook(delivery(
        message_event("111", "m_before", "tea 3"), message_event("111", "m_bad", "yacht 5"),
        message_event("111", "m_after", "bus 2")))
    assert response.status == 200
    assert query(service, "SELECT mid FROM messages_raw ORDER BY id") == [("m_before",), ("m_after",)]
    assert query(service, "SELECT mid FROM expenses ORDER BY id") == [("m_before",), ("m_after",)]
    [(_, mid, reason, _)] = rejected(service)
    assert mid == "m_bad" and reason.startswith("IntegrityError: CHECK constraint failed")


class TakenByThisThread:
    """The process' write lock, counting how often the thread that made it took it."""

    def __init__(self, lock):
        self.lock, self.taken, self.thread = lock, 0, threading.current_thread()

    def acquire(self, *args, **kwargs):
        taken = self.lock.acquire(*args, **kwargs)
        self.taken += taken and threading.current_thread() is self.thread
        return taken

    def release(self):
        self.lock.release()


def test_a_failed_write_undoes_the_first_attempt_and_runs_each_command_once(tmp_path, open_service):
    # Each message is written in a savepoint of its own: m_bad's failed writes are undone alone. The
    # undo before it runs once (one expense gone, not two), the currency set before it still applies
    # to the message after it, and the rest of the delivery is committed in one hold of the lock.
    service = open_service(make_config(tmp_path))
    client = Client(service)
    assert client.post_webhook(delivery(message_event("111", "m_old", "coffee 1", timestamp=T0))).status == 200
    read_past_the_check(service, "m_bad")
    lock = service.db._write_lock = TakenByThisThread(service.db._write_lock)
    response = client.post_webhook(delivery(
        *(message_event("111", mid, text, timestamp=T0 + n * 1000) for n, (mid, text) in enumerate(
            (("m_tea", "tea 3"), ("m_undo", "undo"), ("m_eur", "currency EUR"), ("m_bad", "yacht 5"),
             ("m_bus", "bus 2")), start=1))))
    assert response.status == 200
    assert lock.taken == 1
    assert query(service, "SELECT mid, currency FROM expenses ORDER BY id") == [("m_old", "USD"), ("m_bus", "EUR")]
    assert query(service, "SELECT mid FROM messages_raw ORDER BY id") == [
        ("m_old",), ("m_tea",), ("m_undo",), ("m_eur",), ("m_bus",)]
    assert query(service, "SELECT count(*) FROM jobs") == [(5,)]
    [(_, mid, reason, _)] = rejected(service)
    assert mid == "m_bad" and reason.startswith("IntegrityError: CHECK constraint failed")


@contextlib.contextmanager
def lock_held_by_another_process(db_path):
    """Hold SQLite's write lock on db_path from another process until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"conn = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
         "conn.execute('BEGIN IMMEDIATE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "conn.execute('ROLLBACK')\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.communicate("\n", timeout=10)


def test_huge_num_edit_while_the_database_is_locked_then_released(tmp_path, server_process):
    """A lock held by another process: everything is spooled, then stored once it is released."""
    server = server_process()
    with lock_held_by_another_process(tmp_path / "expensebot.db"):
        body = json.dumps(delivery(message_event("111", "m_1", "coffee 100", timestamp=T0),
                                   edit_event("111", "m_1", "coffee 5", 2**63))).encode()
        response = post(server.url, body)
        assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
        assert post(server.url, json.dumps(delivery(message_event("111", "m_2", "tea 3"))).encode()).status_code == 200
        assert ops(server.url, "/ops/stats")["spool_depth"] == 3
    assert wait_for(lambda: ops(server.url, "/ops/stats")["spool_depth"] == 0, timeout=15)
    stats = ops(server.url, "/ops/stats")
    assert (stats["messages"], stats["expenses"], stats["rejected_events"]) == (2, 2, 1)
    assert post(server.url, json.dumps(delivery(message_event("111", "m_3", "bus 2"))).encode()).status_code == 200
    # Stored at once, or (if it came in the moment between the last file's removal and the replayer
    # lowering its flag) spooled and replayed within a turn: either way, stored.
    assert wait_for(lambda: ops(server.url, "/ops/stats")["messages"] == 3)
    lines = server.log_lines()
    assert not [line for line in lines if line.get("event") == "not-json" or "Traceback" in json.dumps(line)]
    assert [line["event"] for line in lines].count("database_unavailable") == 1  # one warning per incident
    [ended] = [line for line in lines if line.get("event") == "database_available"]
    assert ended["count"] == 1 and ended["seconds"] > 0 and "locked" in ended["reason"]


def post(url: str, body: bytes) -> requests.Response:
    return requests.post(f"{url}/webhook", data=body, timeout=30,
                         headers={"Content-Type": "application/json",
                                  "X-Hub-Signature-256": webhook.sign(APP_SECRET, body)})


def ops(url: str, path: str) -> dict:
    return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=30).json()


# --- times outside a sane window -------------------------------------------------------------------

@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize("timestamp", [YEAR_9999_MS, 2**63, 10**20, 0, -1, 1_000_000_000_000])
def test_event_times_out_of_the_window_become_the_receive_time(tmp_path, tz, timestamp, open_service):
    service = open_service(make_config(tmp_path, tz=tz))
    event = message_event("111", "m_1", "coffee 100", timestamp=timestamp)
    body = {"object": "page", "entry": [{"id": "1", "time": timestamp, "messaging": [event]}]}
    before = times.iso_utc(times.now_ms())
    assert Client(service).post_webhook(body).status == 200
    [(sent_at, received_at, stored)] = query(service, "SELECT sent_at, received_at, event FROM messages_raw")
    assert sent_at == received_at and sent_at >= before
    assert json.loads(stored)["timestamp"] == timestamp  # the original stays in the stored event
    [(occurred_at,)] = query(service, "SELECT occurred_at FROM expenses")
    assert occurred_at == sent_at


def test_a_spooled_event_that_can_never_be_stored_does_not_jam_replay(tmp_path, caplog, open_service):
    """A spool file from before the edge checks: an edit with num_edit 2^64, then a good file behind it."""
    config = make_config(tmp_path, tz="Asia/Tokyo")
    spool = Spool(config.spool_dir).open()
    event = '{"message_edit": {"num_edit": 18446744073709551616}}'
    spool.append([Message(psid_hash("111"), "m_old", "edit", "coffee 100", T0, T0, event, num_edit=2**64)])
    spool.append([Message(psid_hash("111"), "m_new", "message", "tea 3", T0, T0, "{}")])
    service = open_service(config, replay_interval=0.05)
    assert wait_for(lambda: service.ingest.spool.files() == [])
    assert query(service, "SELECT mid FROM messages_raw") == [("m_new",)]
    [(_, mid, reason, stored)] = rejected(service)
    assert mid == "m_old" and stored == event and reason.startswith("OverflowError")
    assert wait_for(lambda: not service.ingest.spooling)  # lowered after the last file went
    assert [r.msg for r in caplog.records].count("event_duplicate") == 0


# --- erasure is final ------------------------------------------------------------------------------

def test_erasure_then_redelivery_of_the_confirmation_and_of_an_old_message(bot, graph):
    client = Client(bot)

    def say(text, mid, at, **fields):
        assert client.post_webhook(delivery(message_event("111", mid, text, timestamp=at, **fields))).status == 200

    say("coffee 100", "m_1", T0)
    client.post_webhook(delivery(edit_event("111", "m_1", "coffee 5", 2**64)))  # a rejected event of theirs
    say("delete my data", "m_2", T0 + 2000)
    say("Yes, delete", "m_3", T0 + 3000, quick_reply={"payload": words.DELETE_CONFIRM})
    assert graph.texts[-1].startswith("Done: I erased")
    say("tea 3", "m_4", T0 + 4000)  # after the erasure: kept

    say("Yes, delete", "m_3", T0 + 3000, quick_reply={"payload": words.DELETE_CONFIRM})  # redelivered
    say("coffee 100", "m_1", T0)  # redelivered, from before the erasure
    client.post_webhook(delivery(edit_event("111", "m_1", "coffee 5", 2**64)))  # its rejected event too
    assert query(bot, "SELECT mid, description FROM expenses") == [("m_4", "tea")]
    assert query(bot, "SELECT mid FROM messages_raw") == [("m_4",)]
    assert query(bot, "SELECT count(*) FROM rejected_events") == [(0,)]
    assert query(bot, "SELECT psid_hash, erased_at FROM erasures") == [(psid_hash("111"), times.iso_utc(T0 + 3000))]
    assert not graph.texts[-1].startswith("Done")  # no second "erased" reply


def test_a_redelivered_event_that_can_never_be_stored_is_kept_once(bot):
    client = Client(bot)
    for _ in range(3):
        client.post_webhook(delivery(edit_event("111", "m_1", "coffee 5", 2**64)))
    assert query(bot, "SELECT mid FROM rejected_events") == [("m_1",)]


def test_within_one_body_an_erasure_holds_for_the_events_after_it(bot, graph):
    # One body: the confirmation, then an event sent before it (late), then one after. Each
    # sender's settings and erasure are read once per body: what a message changes must still
    # hold for the messages after it in the same body.
    client = Client(bot)
    client.post_webhook(delivery(message_event("111", "m_1", "currency EUR", timestamp=T0)))
    client.post_webhook(delivery(message_event("111", "m_2", "delete my data", timestamp=T0 + 1000)))
    assert client.post_webhook(delivery(
        message_event("111", "m_3", "Yes, delete", timestamp=T0 + 3000, quick_reply={"payload": words.DELETE_CONFIRM}),
        message_event("111", "m_4", "coffee 5", timestamp=T0 + 2000),  # sent before the erasure
        message_event("111", "m_5", "tea 3", timestamp=T0 + 4000),
    )).status == 200
    assert query(bot, "SELECT mid, amount_minor, currency FROM expenses") == [("m_5", 300, "USD")]  # EUR was erased too
    assert query(bot, "SELECT mid FROM messages_raw") == [("m_5",)]


# --- edits into commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, word", [("undo", "undo"), ("Undo!", "undo"), ("delete my data", "delete my data")])
def test_an_edit_into_a_command_is_answered_and_runs_nothing(bot, graph, text, word):
    client = Client(bot)
    client.post_webhook(delivery(message_event("111", "m_1", "tea 3", timestamp=T0)))
    client.post_webhook(delivery(message_event("111", "m_2", "coffee 100", timestamp=T0 + 1000)))
    response = client.post_webhook(delivery(edit_event("111", "m_2", text, 1, timestamp=T0 + 2000)))
    assert response.status == 200
    assert graph.texts[-1] == (f"Edits are not carried out as commands, so nothing changed. "
                               f"Send \"{word if word != 'undo' else text}\" as a new message.")
    assert query(bot, "SELECT mid FROM expenses ORDER BY id") == [("m_1",), ("m_2",)]  # nothing changed
    assert query(bot, "SELECT count(*) FROM messages_raw") == [(2,)]


def test_an_edit_into_undo_whose_original_was_never_seen_undoes_nothing(bot, graph):
    client = Client(bot)
    client.post_webhook(delivery(message_event("111", "m_1", "tea 3", timestamp=T0)))
    client.post_webhook(delivery(edit_event("111", "m_unseen", "undo", 1)))
    assert graph.texts[-1] == words.edited_command_reply("undo")
    assert query(bot, "SELECT mid FROM expenses") == [("m_1",)]


# --- floods of events without a message ------------------------------------------------------------

def test_ten_thousand_read_receipts_are_one_log_line_and_answered_quickly(tmp_path, server_process):
    server = server_process()
    receipt = {"sender": {"id": "1"}, "recipient": {"id": "2"}, "read": {"watermark": T0}}
    body = json.dumps({"object": "page", "entry": [{"id": "2", "time": T0, "messaging": [receipt] * 10_000}]},
                      separators=(",", ":")).encode()
    assert len(body) < 1024 * 1024
    lines_before = len(server.log_lines())
    response = post(server.url, body)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < META_DEADLINE  # it takes well under a tenth of a second
    new = server.log_lines()[lines_before:]
    skipped = [line for line in new if line.get("event") == "event_skipped"]
    assert [(line["count"], line["kinds"]) for line in skipped] == [(10_000, {"read": 10_000})]
    assert len(new) < 10


# --- a spool that cannot be written ----------------------------------------------------------------

def mounted_tmpfs(tmp_path, size: str):
    """A tmpfs of the test's own, to fill up (needs root: skipped otherwise)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """64 KiB: a spool that is nearly full."""
    yield from mounted_tmpfs(tmp_path, "64k")


@pytest.fixture
def small_tmpfs(tmp_path):
    """2 MiB: room for a database, then filled."""
    yield from mounted_tmpfs(tmp_path, "2m")


def test_nearly_full_spool_never_acknowledges_a_cut_short_file(tmp_path, tiny_tmpfs, open_service):
    spool_dir = tiny_tmpfs / "spool"
    config = make_config(tmp_path, spool_dir=spool_dir)
    service = open_service(config, replay_interval=3600)
    locker = sqlite3.connect(config.db_path, isolation_level=None)
    try:
        (tiny_tmpfs / "filler").write_bytes(b"x" * (40 * 1024))
        locker.execute("BEGIN IMMEDIATE")
        big = delivery(*[message_event("111", f"m_{n}", "coffee 1 " + "y" * 900) for n in range(40)])
        response = Client(service).post_webhook(big)
        assert response.status == 503  # neither the database nor the spool took it: Meta redelivers
        assert sorted(p.name for p in spool_dir.iterdir()) == []  # no partial file, no temporary
        small = delivery(message_event("111", "m_small", "tea 3"))
        assert Client(service).post_webhook(small).status == 200  # what fits is spooled whole
        [spooled] = service.ingest.spool.files()
        assert [m.mid for m in service.ingest.spool.load(spooled)] == ["m_small"]
        locker.execute("ROLLBACK")
        service.ingest.replay()
        assert query(service, "SELECT mid FROM messages_raw") == [("m_small",)]
    finally:
        locker.close()


def test_a_database_on_a_full_disk_spools_then_stores_once_there_is_room(tmp_path, small_tmpfs, caplog,
                                                                         open_service):
    config = make_config(tmp_path, db_path=small_tmpfs / "expensebot.db", spool_dir=tmp_path / "spool")
    service = open_service(config, replay_interval=3600)
    client = Client(service)
    filler = small_tmpfs / "filler"
    with open(filler, "wb", buffering=0) as file:  # every byte left on the filesystem
        with contextlib.suppress(OSError):
            while file.write(b"x" * 1024):
                pass
    body = delivery(*[message_event("111", f"m_{n}", "coffee 1 " + "y" * 500) for n in range(20)])
    assert client.post_webhook(body).status == 200
    assert service.ingest.spool.depth() == 20
    reasons = [r.fields["reason"] for r in caplog.records if r.msg == "database_unavailable"]
    assert len(reasons) == 1 and "full" in reasons[0]
    filler.unlink()
    service.ingest.replay()
    assert query(service, "SELECT count(*) FROM messages_raw") == [(20,)]
    assert service.ingest.spool.depth() == 0


def test_replay_failing_for_a_while_makes_health_503(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config, replay_interval=3600)
    locker = sqlite3.connect(config.db_path, isolation_level=None)
    try:
        client = Client(service)
        locker.execute("BEGIN IMMEDIATE")
        assert client.post_webhook(delivery(message_event("111", "m_1"))).status == 200
        service.ingest.replayer.run_once()  # fails: still locked
        assert client.get("/healthz").status == 200  # a lock for a moment is not a problem
        strict = Client(create_app(config, service.db, service.ingest, spool_stale_after=0))
        response = strict.get("/healthz")
        assert response.status == 503 and "replay failing" in response.json()["reason"]
        locker.execute("ROLLBACK")
        service.ingest.replayer.run_once()
        assert strict.get("/healthz").status == 200
    finally:
        locker.close()


@contextlib.contextmanager
def make_immutable(path):
    """chattr +i, or else a read-only bind mount, for the block; skip when neither works here."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        return
    if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode != 0:
        pytest.skip("neither chattr +i nor a bind mount works here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_an_immutable_spool_folder_does_not_stop_writes_while_the_database_takes_them(tmp_path, caplog,
                                                                                      open_service):
    config = make_config(tmp_path)
    spool = Spool(config.spool_dir).open()
    spool.append([Message(psid_hash("111"), "m_spooled", "message", "coffee 100", T0, T0, "{}")])
    with make_immutable(config.spool_dir):
        service = open_service(config, replay_interval=3600)
        assert service.ingest.spooling
        client = Client(service)
        # The spool waits to drain and cannot take more: the database, which can, takes it.
        assert client.post_webhook(delivery(message_event("111", "m_1", "tea 3"))).status == 200
        service.ingest.replay()  # written, but the file cannot be removed: passed by from now on
        assert not service.ingest.spooling
        assert client.post_webhook(delivery(message_event("111", "m_2", "bus 2"))).status == 200
        assert query(service, "SELECT mid FROM messages_raw ORDER BY id") == [
            ("m_1",), ("m_spooled",), ("m_2",)]
        service.ingest.replay()
        assert query(service, "SELECT count(*) FROM messages_raw") == [(3,)]
        # Honest health: the file has waited, though the database takes writes.
        strict = Client(create_app(config, service.db, service.ingest, spool_stale_after=0))
        response = strict.get("/healthz")
        assert response.status == 503 and "not drained" in response.json()["reason"]
        assert [r.msg for r in caplog.records].count("spool_file_kept") == 1


def test_a_spool_folder_that_cannot_be_listed_is_an_error_not_empty(tmp_path, caplog, open_service):
    service = open_service(make_config(tmp_path), replay_interval=3600)
    client = Client(service)
    service.config.spool_dir.rmdir()
    service.config.spool_dir.write_text("a file where the spool folder was")
    response = client.get("/healthz")
    assert response.status == 503 and "cannot list" in response.json()["reason"]
    assert client.get("/ops/stats", token=OPS_TOKEN).json()["spool_depth"] is None
    for _ in range(5):
        service.ingest.replayer.run_once()
    # An operator's problem, not a bug: one warning, no traceback.
    assert [(r.levelname, r.msg) for r in caplog.records] == [("WARNING", "task_unavailable")]
    assert "cannot list" in caplog.records[0].fields["reason"]


def test_a_file_put_in_the_spool_by_hand_is_counted_and_replayed_or_set_aside(service, client):
    service.ingest.replayer.stop()  # the test replays; the thread's turn every 0.05 s could set the file aside first
    (service.config.spool_dir / "notes.jsonl").write_text("not an event\n")
    assert client.get("/healthz").json() == {"status": "ok", "spool_depth": 1, "version": __version__}
    service.ingest.replay()
    assert [p.name for p in service.config.spool_dir.iterdir()] == ["notes.bad"]
    assert client.get("/healthz").json() == {"status": "ok", "spool_depth": 0, "version": __version__}


# --- the database file gone or replaced ------------------------------------------------------------

def test_database_renamed_away_is_unhealthy_events_spooled_then_stored_when_back(tmp_path, server_process):
    server = server_process()
    db_path = tmp_path / "expensebot.db"
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    db_path.rename(tmp_path / "moved.db")
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert health.status_code == 503 and "is gone" in health.json()["reason"]
    response = post(server.url, json.dumps(delivery(message_event("111", "m_1", "coffee 100"))).encode())
    assert response.status_code == 200
    assert not db_path.exists()  # no new empty file where the database was
    (tmp_path / "moved.db").rename(db_path)
    assert wait_for(lambda: requests.get(f"{server.url}/healthz", timeout=10).status_code == 200, timeout=15)
    assert wait_for(lambda: ops(server.url, "/ops/stats")["messages"] == 1, timeout=15)


def test_database_replaced_by_another_file_is_unhealthy(service, client):
    path = service.config.db_path
    other = path.with_name("other.db")
    sqlite3.connect(other).close()
    other.replace(path)
    response = client.get("/healthz")
    assert response.status == 503 and "replaced" in response.json()["reason"]


# --- CSV export ------------------------------------------------------------------------------------

@pytest.mark.parametrize("description", ["=HYPERLINK(\"http://x\")", "+SUM(A1:A9)", "-2+3", "@cmd",
                                         "\tlead", "\rcr"])
def test_run_py_export_neutralises_formula_cells(tmp_path, description, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    with service.db.transaction() as conn:
        message = Message(psid_hash("111"), "m_1", "message", "x", T0, T0, "{}")
        message_id = store.insert_message(conn, message, "2025-11-25T13:00:00.000Z", "2025-11-25T13:00:00.000Z")
        store.insert_expenses(conn, message_id, message.psid_hash, message.mid, [
            (0, 100, "USD", description, "food", "user", "2025-11-25T13:00:00.000Z", *(None,) * 5)],
            "2025-11-25T13:00:00.000Z")
    service.close()  # stopped before the command reads its files
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "export", "--psid-hash", psid_hash("111")],
                            cwd=ROOT, capture_output=True, timeout=60,
                            env={"EXPENSEBOT_DB": str(config.db_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    # Bytes, then newline="": a carriage return inside a cell must reach the CSV reader as is.
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode("utf-8"), newline="")))
    [cell] = [value for row in rows for value in row.values() if value and value.lstrip("'") == description]
    assert cell == "'" + description


# --- the operator's view ---------------------------------------------------------------------------

def test_run_py_rejected_lists_rejected_events_without_raw_ids(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    Client(service).post_webhook(delivery(edit_event("1234567", "m_x", "coffee 1", 2**70)))
    service.close()  # stopped before the command reads its files
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "rejected", "--events"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={"EXPENSEBOT_DB": str(config.db_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["event"], line.get("count")) for line in lines] == [("rejected_events", 1), ("rejected_event", None)]
    assert lines[1]["mid"] == "m_x" and lines[1]["reason"].startswith("num_edit out of range")
    assert json.loads(lines[1]["received"])["message_edit"]["num_edit"] == 2**70
    assert "1234567" not in result.stdout


def test_a_bug_in_a_route_is_a_json_500_and_one_json_log_line(service, client, caplog):
    service.ingest.replayer.stop()  # else its next turn fails on the same bug, a second error line
    service.ingest.spool = None  # a bug: the route now fails with AttributeError
    response = client.get("/healthz")
    assert response.status == 500 and response.json() == {"error": "internal error"}
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.msg == "request_failed" and "AttributeError" in record.fields["traceback"]


@pytest.mark.parametrize("make_error, unavailable", [
    (lambda db: _raise(db, "BEGIN IMMEDIATE; BEGIN IMMEDIATE", locked=True), True),
    (lambda db: _raise(db, "INSERT INTO budgets VALUES ('h', '', -1, 'USD', 't')"), False),
    (lambda db: _raise(db, "INSERT INTO erasures VALUES (NULL, NULL)"), False),
    (lambda db: _raise(db, "CREATE TABLE t (x)", read_only=True), True),
    (lambda db: _raise(db, "SELECT * FROM no_such_table"), True),
    (lambda db: _raise(db, "SELEC nonsense"), False),
    (lambda db: OverflowError("Python int too large to convert to SQLite INTEGER"), False),
    (lambda db: KeyError("a bug"), False),
    (lambda db: errors.DatabaseUnavailable("gone"), True),
])
def test_errors_are_classified_once(tmp_path, make_error, unavailable):
    db = tmp_path / "x.db"
    sqlite3.connect(db).executescript((ROOT / "schema.sql").read_text())
    exc = make_error(db)
    kind = errors.DatabaseUnavailable if unavailable else errors.EventRejected
    assert isinstance(errors.classify(exc), kind)
    assert errors.is_unavailable(exc) is unavailable


def _raise(db, sql, locked=False, read_only=False):
    holder = None
    if locked:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        sql = "BEGIN IMMEDIATE"
    conn = sqlite3.connect(f"file:{db}?mode=ro" if read_only else db, uri=read_only, timeout=0.05,
                           isolation_level=None)
    try:
        conn.execute(sql)
    except (sqlite3.Error, OverflowError) as exc:
        return exc
    finally:
        conn.close()
        if holder is not None:
            holder.close()
    raise AssertionError(f"{sql} did not fail")
