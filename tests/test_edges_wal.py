"""A bounded WAL: under sustained load the -wal file stays near its bound instead of growing for ever."""

from __future__ import annotations

import sqlite3
import sys
import threading

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


def test_a_checkpoint_that_writers_outran_is_finished_and_the_wal_starts_over(tmp_path):
    # Writers commit without a pause while the keeper takes its turns: a PASSIVE checkpoint alone
    # never catches up, so without the second, paused step the WAL would only grow (measured:
    # 983 MB in 8 s of this). Here it starts over from its beginning instead, and is never truncated.
    from expensebot.db import Database
    db = Database(tmp_path / "x.db", checkpoint_interval=3600, wal_limit=1 << 40).open()
    db.keeper.restart_frames = 50
    commits = 3000
    done = threading.Event()

    def write():
        try:
            for n in range(commits):
                with db.writing() as conn:
                    conn.execute("INSERT INTO erasures VALUES (?, 'x')", (f"p{n}",))
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while not done.wait(0.05):
            db.keeper.checkpoint()
        writer.join()
        stats = db.keeper.stats()
        assert stats["wal_restarts"] >= 1 and stats["wal_truncations"] == 0
        # Every commit appended at least one 4 KiB page: a WAL never started over would hold them all.
        assert stats["wal_bytes"] < commits * 4096 / 2
        with db.reading() as conn:
            assert conn.execute("SELECT count(*) FROM erasures").fetchone()[0] == commits
    finally:
        db.close()


def test_a_checkpoint_that_finished_does_not_pause_writers_again(tmp_path):
    # wal_checkpoint reports the WAL's frames, not what was left to copy: a WAL that a checkpoint
    # copied completely keeps its frames until the next write starts it over. A quiet minute after
    # a burst must not pause writers every turn, nor count a restart that did not happen.
    from expensebot.db import Database
    db = Database(tmp_path / "x.db", checkpoint_interval=3600, wal_limit=1 << 40).open()
    db.keeper.restart_frames = 50
    try:
        for n in range(200):  # a burst: each commit appends at least one frame
            with db.writing() as conn:
                conn.execute("INSERT INTO erasures VALUES (?, 'x')", (f"p{n}",))
        db.keeper.checkpoint()  # the turn after the burst may finish it with writers paused
        restarts = db.keeper.stats()["wal_restarts"]
        for _ in range(5):  # then quiet: nobody writes while the keeper takes its turns
            db.keeper.checkpoint()
        stats = db.keeper.stats()
        assert stats["wal_restarts"] == restarts <= 1 and stats["wal_truncations"] == 0
        with db.reading() as conn:
            assert conn.execute("SELECT count(*) FROM erasures").fetchone()[0] == 200
    finally:
        db.close()
