"""The edge cases again, against `python run.py serve` as a real child process."""

from __future__ import annotations

import contextlib
import json
import sqlite3

from conftest import delivery, message_event, wait_for
from test_edges import (  # noqa: F401  (tiny_tmpfs is a fixture)
    T0,
    lock_held_by_another_process,
    make_immutable,
    post,
    tiny_tmpfs,
)

from expensebot import times
from expensebot.replies import words


def rows(db_path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def body(*events) -> bytes:
    return json.dumps(delivery(*events)).encode()


def test_nearly_full_spool_answers_503_never_a_cut_short_200(tmp_path, tiny_tmpfs, server_process):
    spool_dir = tiny_tmpfs / "spool"
    server = server_process(EXPENSEBOT_SPOOL=str(spool_dir))
    (tiny_tmpfs / "filler").write_bytes(b"x" * (40 * 1024))
    db_path = tmp_path / "expensebot.db"
    with lock_held_by_another_process(db_path):
        big = body(*[message_event("111", f"m_{n}", "coffee 1 " + "y" * 900) for n in range(40)])
        assert post(server.url, big).status_code == 503
        assert list(spool_dir.iterdir()) == []
        assert post(server.url, body(message_event("111", "m_small", "tea 3"))).status_code == 200
    assert wait_for(lambda: rows(db_path, "SELECT mid FROM messages_raw") == [("m_small",)], timeout=15)
    lines = server.log_lines()
    assert [line["event"] for line in lines].count("spool_failed") == 1
    assert not [line for line in lines if line.get("event") == "not-json"]


def test_spool_folder_made_immutable_with_a_file_waiting(tmp_path, server_process):
    server = server_process()
    db_path = tmp_path / "expensebot.db"
    spool_dir = tmp_path / "expensebot.db.spool"
    with contextlib.ExitStack() as lock:
        lock.enter_context(lock_held_by_another_process(db_path))
        assert post(server.url, body(message_event("111", "m_waiting", "coffee 100"))).status_code == 200
        with make_immutable(spool_dir):
            # Neither the spool nor the database can take it: 503, and Meta redelivers.
            assert post(server.url, body(message_event("111", "m_locked", "tea 1"))).status_code == 503
            lock.close()
            # The spool waits to drain and cannot take more: the database, free again, takes it.
            assert post(server.url, body(message_event("111", "m_1", "tea 3"))).status_code == 200
            assert wait_for(lambda: len(rows(db_path, "SELECT mid FROM messages_raw")) == 2, timeout=15)
            assert post(server.url, body(message_event("111", "m_2", "bus 2"))).status_code == 200
            assert sorted(rows(db_path, "SELECT mid FROM messages_raw")) == [("m_1",), ("m_2",), ("m_waiting",)]
            assert wait_for(lambda: [line["event"] for line in server.log_lines()].count("spool_file_kept") == 1)
            assert [p.name.endswith(".jsonl") for p in spool_dir.iterdir()] == [True]  # kept, passed by


def test_erasure_then_redelivery(tmp_path, server_process):
    server = server_process()
    db_path = tmp_path / "expensebot.db"
    confirm = message_event("111", "m_3", "Yes, delete", timestamp=T0 + 3000,
                            quick_reply={"payload": words.DELETE_CONFIRM})
    old = message_event("111", "m_1", "coffee 100", timestamp=T0)
    for event in (old, message_event("111", "m_2", "delete my data", timestamp=T0 + 2000), confirm,
                  message_event("111", "m_4", "tea 3", timestamp=T0 + 4000), confirm, old):
        assert post(server.url, body(event)).status_code == 200
    assert rows(db_path, "SELECT mid FROM expenses") == [("m_4",)]
    assert rows(db_path, "SELECT erased_at FROM erasures") == [(times.iso_utc(T0 + 3000),)]
    def erased_replies():
        return [line for line in server.log_lines()
                if line.get("event") == "reply_logged" and line["text"].startswith("Done")]
    assert wait_for(lambda: len(erased_replies()) == 1)
    assert wait_for(lambda: sum(line.get("event") == "reply_logged" for line in server.log_lines()) == 4)
    assert len(erased_replies()) == 1  # the redelivered confirmation got none
