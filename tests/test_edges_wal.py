"""A bounded WAL: under sustained load the -wal file stays near its bound instead of growing for ever."""

from __future__ import annotations

import sqlite3
import sys

import pytest
from conftest import ROOT, Client, delivery, make_config, message_event, query, wait_for

from expensebot.background.wal import LARGE_COMMIT, WalKeeper
from expensebot.db import Database

sys.path.insert(0, str(ROOT / "bench"))
import bench_wal  # noqa: E402

LIMIT = 1024 * 1024  # small, so that the mechanism shows within seconds
SECONDS = 10
T0 = 1764075600000


def test_under_full_load_the_wal_stays_under_its_bound_plus_about_one_interval(tmp_path):
    result = bench_wal.run(SECONDS, LIMIT, tmp_path)
    growth = result["wal_growth_bytes_per_second"]
    assert result["messages"] > 0 and growth > 0
    assert result["wal_truncations"] >= 1
    # Without the bound the WAL only grows: after 10 s it holds about 10 s of growth (measured:
    # 241 MB at 24 MB/s). With it, the bound plus one 1 s checkpoint interval's growth, and some
    # room for a busy machine delaying the keeper's turn.
    assert result["wal_max_sampled_bytes"] <= LIMIT + 4 * growth
    assert result["wal_high_water_bytes"] >= result["wal_max_sampled_bytes"] * 0.5
    assert result["wal_longest_pause_ms"] > 0


@pytest.fixture
def database(tmp_path):
    db = Database(tmp_path / "x.db").open()
    yield db


def test_a_truncate_kept_from_finishing_by_a_reader_is_not_retried_every_turn(database, caplog):
    keeper = WalKeeper(database, interval=3600, limit=1).start()
    reader = sqlite3.connect(database.path, isolation_level=None)
    try:
        with database.transaction() as conn:
            conn.execute("INSERT INTO erasures VALUES ('a', 'b')")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM erasures").fetchall()  # holds its snapshot
        with database.transaction() as conn:
            conn.execute("INSERT INTO erasures VALUES ('c', 'd')")
        for _ in range(5):
            keeper.checkpoint()
        attempts = [r.fields for r in caplog.records if r.msg == "wal_checkpointed"]
        assert [a["truncated"] for a in attempts] == [False]  # tried once, then PASSIVE only
        reader.execute("COMMIT")
        keeper._next_truncate = 0.0  # the backoff over
        keeper.checkpoint()
        assert [r.fields["truncated"] for r in caplog.records if r.msg == "wal_checkpointed"] == [False, True]
        assert keeper.stats()["wal_bytes"] == 0
    finally:
        reader.close()
        keeper.stop()


def test_a_large_commit_over_the_bound_empties_the_wal_without_waiting_for_the_next_turn(database):
    keeper = WalKeeper(database, interval=3600, limit=64 * 1024).start()  # its timer never comes round here
    try:
        with database.transaction() as conn:
            conn.executemany("INSERT INTO erasures VALUES (?, ?)", ((f"p{n}", "x" * 200) for n in range(LARGE_COMMIT * 5)))
        assert wait_for(lambda: keeper.stats()["wal_truncations"] == 1, 10)
        assert keeper.stats()["wal_bytes"] == 0
    finally:
        keeper.stop()


def test_erased_words_leave_the_wal_and_the_database_file(tmp_path, open_service):
    service = open_service(make_config(tmp_path))
    client = Client(service)
    words = "unmistakable-pistachio-gelato"
    client.post_webhook(delivery(message_event("111", "m_1", f"{words} 5", timestamp=T0)))
    assert words.encode() in _bytes(service.config.db_path)  # in the -wal, or already copied back
    client.post_webhook(delivery(message_event("111", "m_2", "DELETE_MY_DATA_CONFIRM", timestamp=T0 + 1000,
                                               quick_reply={"payload": "DELETE_MY_DATA_CONFIRM"})))
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]
    assert wait_for(lambda: words.encode() not in _bytes(service.config.db_path), 10)


def _bytes(db_path) -> bytes:
    """The database file and its -wal, as they are on disk."""
    return b"".join(path.read_bytes() for path in (db_path, db_path.with_name(db_path.name + "-wal")) if path.exists())
