"""A database file is one file: one swapped in under the bot is never opened beside the old -wal."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import ROOT, Client, delivery, make_config, message_event, query, wait_for

from expensebot import db
from expensebot.ops import checks
from expensebot.receipts import ocr

T0 = 1764075600000


def test_a_file_moved_in_under_the_running_bot_is_never_written_and_health_says_why(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config, replay_interval=0.05)
    client = Client(service)
    assert client.post_webhook(delivery(message_event("111", "m_1", "coffee 5", timestamp=T0))).status == 200
    other = tmp_path / "other.db"
    db.init(other)
    before = other.read_bytes()
    os.rename(other, config.db_path)  # the operator's mv, with the bot running

    response = client.post_webhook(delivery(message_event("111", "m_2", "tea 3", timestamp=T0 + 1000)))
    assert response.status == 200  # acknowledged: the spool took it
    assert service.ingest.spool.depth() == 1
    health = client.get("/healthz")
    assert health.status == 503 and "was replaced by another file" in health.json()["reason"]
    service.close()  # the bot stops; nothing of the old file's -wal went into the new one
    assert config.db_path.read_bytes() == before
    assert not (tmp_path / "expensebot.db-wal").exists()
    assert db.quick_check(config.db_path) is None
    [saved] = tmp_path.glob("expensebot.db.replaced-*")  # the file it replaced, kept whole
    with sqlite3.connect(saved) as conn:
        assert conn.execute("SELECT mid FROM messages_raw").fetchall() == [("m_1",)]

    restarted = open_service(config, replay_interval=0.05)  # restarted on the new file: the spool replays
    assert wait_for(lambda: query(restarted, "SELECT mid FROM messages_raw") == [("m_2",)])


def run_py(*args, env):
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=60)


def test_check_and_serve_refuse_a_damaged_file_with_one_line(tmp_path):
    path = tmp_path / "expensebot.db"
    db.init(path)
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO erasures VALUES (?, ?)", ((f"p{n:04d}" * 8, "x" * 100) for n in range(3000)))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(path, "r+b") as file:  # a page in the middle of the file overwritten, as a bad disk or copy would
        file.seek(4096 * 5)
        file.write(b"\xff" * 4096)
    env = {"EXPENSEBOT_DB": str(path), "EXPENSEBOT_PORT": "0", "FB_APP_SECRET": "s" * 16, "FB_VERIFY_TOKEN": "v" * 16,
           "PSID_HASH_KEY": "k" * 32}
    for command in ("check", "serve"):
        result = run_py(command, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        [line] = [json.loads(raw) for raw in result.stdout.splitlines()]
        assert line["event"] == "config_error" and line["problem"].startswith(f"EXPENSEBOT_DB: {path} is damaged")
        assert "Traceback" not in result.stdout + result.stderr


def first_schema_file(path):
    """A database as the first release left it (schema version 1), with a row in every table."""
    conn = sqlite3.connect(path)
    conn.executescript((ROOT / "tests" / "data" / "schema-v1.sql").read_text())
    conn.executescript("""
        PRAGMA user_version = 1;
        INSERT INTO messages_raw VALUES (7, 'h', 'm_7', '2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.000Z',
                                         'message', 'coffee 5', 0, '{}');
        INSERT INTO expenses VALUES (3, 7, 'h', 'm_7', 0, 500, 'USD', 'coffee', 'food', 'rule',
                                     '2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.000Z');
        INSERT INTO jobs VALUES (7, 'ok', 1, NULL, '2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.000Z');
        INSERT INTO people VALUES ('h', 'EUR', NULL, '2026-11-02T00:00:00.000Z');
        INSERT INTO rejected_events VALUES (1, 'h', 'm_bad', '{}', 'too big', '2026-11-01T00:00:00.000Z');
    """)
    conn.commit()
    conn.close()
    return path


def test_a_database_of_the_first_schema_is_upgraded_keeping_every_row(tmp_path):
    path = first_schema_file(tmp_path / "old.db")
    db.Database(path).open()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert conn.execute("SELECT id, mid, text FROM messages_raw").fetchall() == [(7, "m_7", "coffee 5")]
        assert conn.execute("SELECT id, amount_minor, category FROM expenses").fetchall() == [(3, 500, "food")]
        assert conn.execute("SELECT currency, currency_at FROM people").fetchall() == [
            ("EUR", "2026-11-02T00:00:00.000Z")]
        assert conn.execute("SELECT setting, value FROM settings_log").fetchall() == [("currency", "EUR")]
        assert conn.execute("SELECT count(*) FROM job_details").fetchone()[0] == 1  # the view is back
        conn.execute("DELETE FROM expenses")
        conn.execute("INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
                     " occurred_at, created_at) VALUES (7, 'h', 'm_7', 0, 1, 'USD', 'x', 'a', 'b')")
        assert conn.execute("SELECT id FROM expenses").fetchone()[0] == 4  # never 3 again
    finally:
        conn.close()


def test_a_schema_step_that_fails_leaves_the_file_as_it_was(tmp_path):
    path = first_schema_file(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:  # a table in the way of step 2, as an operator might have made
        conn.execute("CREATE TABLE settings_log (x)")
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="settings_log already exists"):
        db.init(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT id, mid, text FROM messages_raw").fetchall() == [(7, "m_7", "coffee 5")]
        assert conn.execute("SELECT name FROM sqlite_schema WHERE name LIKE '%\\_2' ESCAPE '\\'").fetchall() == []
    finally:
        conn.close()


def test_check_passes_on_a_file_with_a_row_in_every_table(tmp_path, ecb, open_service, graph):
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)  # rates loaded
    client = Client(service)
    texts = ["currency EUR", "timezone Asia/Manila", "budget food 300", "budget fun 20", "budget fun off",
             "lunch 12 #food", "coffee 3", "rent 100 monthly"]
    for n, text in enumerate(texts):
        assert client.post_webhook(delivery(message_event("111", f"m_{n}", text, timestamp=T0 + n))).status == 200
    next_month = T0 + 10 * 24 * 3600 * 1000
    client.post_webhook(delivery(message_event("111", "m_next_month", "tea 2", timestamp=next_month)))  # digests
    huge_edit = {"sender": {"id": "222"}, "recipient": {"id": "1"}, "timestamp": T0,
                 "message_edit": {"mid": "m_x", "text": "tea 3", "num_edit": 2**64}}
    client.post_webhook(delivery(huge_edit))  # rejected_events
    client.post_webhook(delivery(message_event("333", "m_y", "tea 3", timestamp=T0),
                                 message_event("333", "m_z", "yes", timestamp=T0 + 1,
                                               quick_reply={"payload": "DELETE_MY_DATA_CONFIRM"})))  # erasures
    client.post_webhook(delivery(message_event("111", "m_photo", None, timestamp=next_month + 1, attachments=[
        {"type": "image", "payload": {"url": "https://elsewhere.example/r.jpg"}}])))  # receipt_drafts, unreadable
    graph.behave("hang")
    Client(service.app).post_webhook(delivery(message_event("444", "m_w", "tea 3", timestamp=int(time.time() * 1000))))
    assert wait_for(lambda: graph.requests and graph.requests[-1]["path"].endswith("messages"), 10)
    service.close()  # the hanging reply is kept in pending_replies
    tables = [name for (name,) in query(service, "SELECT name FROM sqlite_schema WHERE type = 'table'"
                                                 " AND name NOT LIKE 'sqlite_%'")]
    empty = [name for name in tables if query(service, f"SELECT count(*) FROM {name}") == [(0,)]]
    assert empty == ([] if ocr.available() else ["receipt_drafts"])  # photos are receipts with the extra only
    assert checks.database_problems(config.db_path, must_exist=True, write=True) == []
