"""The WAL's upkeep: kept open, copied back on a timer, bounded in size, emptied after an erasure."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from expensebot.db import Database
from expensebot.errors import describe
from expensebot.logs import log_event
from expensebot.periodic import Periodic

logger = logging.getLogger(__name__)

WAL_LIMIT = 64 * 1024 * 1024  # bytes the WAL may grow to before writers are paused to empty it (TRUNCATE)
LARGE_COMMIT = 100  # rows: such a commit looks at the WAL's size at once (megabytes can come between two turns)
TRUNCATE_BACKOFF_TURNS = 10  # after a TRUNCATE that readers kept from finishing, PASSIVE ones only for this long
# A WAL this many frames long (4 MiB) still written to since the last turn is checkpointed a second
# time with this process' writers paused for a moment: readers started meanwhile are done, so the
# next write starts the WAL over. Under sustained load the WAL stays small instead of growing to
# the limit, where emptying it pauses writers ten times as long (bench/bench_wal.py).
RESTART_FRAMES = 1024


class WalKeeper:
    """Keep the WAL open and small: a connection of its own, and a checkpoint every interval.

    While one connection stays open, closing a request's connection does not checkpoint and delete
    the WAL, a copy and an fsync each write would pay for otherwise: checkpoints run here, on a timer.
    """

    def __init__(self, db: Database, interval: float = 1.0, limit: int = WAL_LIMIT):
        self.db = db
        self.limit = limit
        self.wal_path = Path(f"{db.path}-wal")
        self.high_water = 0  # the largest WAL size seen, in bytes
        self.truncations = 0
        self.restarts = 0  # checkpoints finished with writers paused
        self.longest_pause = 0.0  # seconds writers waited for a checkpoint
        # How long writers are paused at most: readers finish in milliseconds, and waiting for them
        # longer than a write may wait would push the paused writers past their deadline (into the spool).
        self._pause = db.write_timeout / 2
        self._scrub = threading.Event()
        self._next_truncate = 0.0  # monotonic: no TRUNCATE for the limit before this
        self._conn: sqlite3.Connection | None = None
        self._wal_identity: tuple[int, int] | None = None  # the -wal this connection uses
        self._frames_seen = -1  # the WAL's frames at the last turn's PASSIVE checkpoint
        self._loop = Periodic("wal-keeper", interval, self.checkpoint)

    def start(self) -> WalKeeper:
        try:
            # Used by the keeper's thread only, and closed after that thread ends.
            self._conn = self.db.connect(check_same_thread=False)
            self._conn.execute(f"PRAGMA journal_size_limit = {self.limit}")
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._pause * 1000)}")
            self._conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # opens the -wal
            self._wal_identity = _identity(self.wal_path)
        except Exception as exc:
            log_event(logger, "wal_keeper_unavailable", level=logging.WARNING, reason=describe(exc))
            return self
        self.db.on_commit.append(self._after_commit)
        self._loop.start()
        return self

    def stop(self) -> None:
        if self._conn is None:
            return
        self._loop.stop()
        self._loop.run_once()
        if self.db.file_problem() is not None:
            self._keep_replaced_file()
        self._conn.close()
        self._conn = None

    def _keep_replaced_file(self) -> None:
        """The file at our path was replaced or removed while we ran: save ours, and take its -wal away.

        Our connection still reads the file we opened; it is copied beside the path, so nothing it
        held is lost. Its -wal (and -shm) at the path would otherwise be applied to the new file
        the next time anything opens it.
        """
        saved = Path(f"{self.db.path}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            target = sqlite3.connect(saved)
            try:
                self._conn.backup(target)
            finally:
                target.close()
            if _identity(self.wal_path) == self._wal_identity:  # else the new file came with a -wal of its own
                self.wal_path.unlink(missing_ok=True)
                Path(f"{self.db.path}-shm").unlink(missing_ok=True)
        except (OSError, sqlite3.Error) as exc:
            log_event(logger, "replaced_file_not_saved", level=logging.ERROR, db=str(self.db.path),
                      reason=describe(exc))
            return
        log_event(logger, "replaced_file_saved", level=logging.WARNING, db=str(self.db.path), saved=str(saved))

    def scrub(self) -> None:
        """Empty the WAL soon: what was erased must not stay readable in it."""
        self._scrub.set()
        self._loop.wake()

    def stats(self) -> dict:
        return {"wal_bytes": self._wal_size(), "wal_high_water_bytes": self.high_water,
                "wal_limit_bytes": self.limit, "wal_truncations": self.truncations,
                "wal_restarts": self.restarts, "wal_longest_pause_ms": round(self.longest_pause * 1000, 1)}

    def checkpoint(self) -> None:
        """One turn: copy the WAL back (PASSIVE), or empty it (TRUNCATE) when over the limit or asked to."""
        if self.db.file_problem() is not None:
            return  # another file is at our path now: never checkpoint beside it
        size = self._wal_size()
        self.high_water = max(self.high_water, size)
        scrub = self._scrub.is_set()
        if scrub or (size > self.limit and time.monotonic() >= self._next_truncate):
            self._scrub.clear()
            if not self._truncate(size, scrub) and scrub:
                self._scrub.set()  # not emptied: again at the next turn
        else:
            _, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            # `frames` stays until a write starts the WAL over: a WAL copied completely with
            # nothing written since the last turn needs nothing more.
            settled = copied == frames == self._frames_seen
            self._frames_seen = frames
            if frames > RESTART_FRAMES and not settled:
                self._finish()

    def _finish(self) -> None:
        """Copy what writers appended during the PASSIVE checkpoint, with them paused: the WAL starts over."""
        started = time.monotonic()
        with self.db.paused_writes(self._pause) as taken:
            if not taken:
                return
            busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.longest_pause = max(self.longest_pause, time.monotonic() - started)
        self.restarts += not busy and copied == frames

    def _after_commit(self, conn: sqlite3.Connection) -> None:
        if conn.total_changes >= LARGE_COMMIT and self._wal_size() > self.limit:
            self._loop.wake()

    def _truncate(self, size: int, scrub: bool) -> bool:
        """Empty the WAL with writers paused; return whether it was emptied."""
        started = time.monotonic()
        with self.db.paused_writes(self._pause) as taken:
            if not taken:
                return False
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        pause = time.monotonic() - started
        self.longest_pause = max(self.longest_pause, pause)
        if busy:
            # A reader kept its snapshot (a long query, a backup): try again, but don't pause writers every turn.
            self._next_truncate = time.monotonic() + TRUNCATE_BACKOFF_TURNS * self._loop.interval
        else:
            self.truncations += 1
        log_event(logger, "wal_checkpointed", wal_bytes=size, truncated=not busy, erasure=scrub,
                  pause_ms=round(pause * 1000, 1))
        return not busy

    def _wal_size(self) -> int:
        try:
            return os.stat(self.wal_path).st_size
        except OSError:
            return 0


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
