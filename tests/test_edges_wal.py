"""A bounded WAL: under sustained load the -wal file stays near its bound instead of growing for ever."""

from __future__ import annotations

import sqlite3
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import bench_wal  # noqa: E402

LIMIT = 1024 * 1024  # small, so that the mechanism shows within seconds
SECONDS = 10


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


def test_a_truncate_kept_from_finishing_by_a_reader_is_not_retried_every_turn(tmp_path, caplog):
    from expensebot.db import Database
    db = Database(tmp_path / "x.db", checkpoint_interval=3600, wal_limit=1).open()
    reader = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    try:
        with db.writing() as conn:
            conn.execute("INSERT INTO erasures VALUES ('a', 'b')")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM erasures").fetchall()  # holds its snapshot
        with db.writing() as conn:
            conn.execute("INSERT INTO erasures VALUES ('c', 'd')")
        for _ in range(5):
            db.keeper.checkpoint()
        attempts = [r.fields for r in caplog.records if r.msg == "wal_checkpointed"]
        assert [a["truncated"] for a in attempts] == [False]  # tried once, then PASSIVE only
        reader.execute("COMMIT")
        db.keeper._next_truncate = 0.0  # the backoff over
        db.keeper.checkpoint()
        assert [r.fields["truncated"] for r in caplog.records if r.msg == "wal_checkpointed"] == [False, True]
        assert db.keeper.stats()["wal_bytes"] == 0
    finally:
        reader.close()
        db.close()
