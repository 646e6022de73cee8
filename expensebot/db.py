"""SQLite access: one connect() for every connection, one way to write, schema steps.

Every request and background job opens its own connection; none is shared between requests or
threads (docs/ARCHITECTURE.md, invariant 7). Writers in this process take turns through one lock,
so SQLite's busy handler (which sleeps in growing steps) only ever arbitrates against other
processes, such as someone's sqlite3 CLI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from expensebot.errors import DatabaseUnavailable, classify, describe
from expensebot.logs import log_event
from expensebot.periodic import Periodic

logger = logging.getLogger(__name__)


def _schema_path() -> Path:
    """schema.sql: inside the package when installed (setup.py copies it), else at the checkout's root."""
    package = Path(__file__).resolve().parent
    installed = package / "schema.sql"
    return installed if installed.is_file() else package.parent / "schema.sql"


SCHEMA_PATH = _schema_path()
# Numbered steps after schema.sql, tracked by PRAGMA user_version; append, never edit.
MIGRATIONS: tuple[str, ...] = ()
SCHEMA_VERSION = 1 + len(MIGRATIONS)
INIT_BUSY_TIMEOUT = 10.0
# The WAL may grow to this many bytes before the keeper restarts it (a TRUNCATE checkpoint).
WAL_LIMIT = 64 * 1024 * 1024
# After a TRUNCATE checkpoint that readers kept from finishing, PASSIVE ones only for this many turns.
TRUNCATE_BACKOFF_TURNS = 10
# After a PASSIVE checkpoint of more than this many WAL frames (writers are busy, and appended more
# while it copied), a second one finishes it with writers paused, so the next write starts the WAL over.
RESTART_FRAMES = 1024
__all__ = ["Database", "DatabaseUnavailable", "WalKeeper", "connect", "init"]


def connect(path: Path | str, busy_timeout: float = 1.0, uri: bool = False,
            check_same_thread: bool = True) -> sqlite3.Connection:
    """Open a connection with every per-connection setting the project relies on."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, uri=uri,
                           check_same_thread=check_same_thread)
    conn.row_factory = sqlite3.Row
    # NORMAL in WAL mode: a commit survives a process crash (kill -9), not always a power cut right
    # after it; FULL would fsync every commit (docs/ARCHITECTURE.md, invariant 3).
    conn.execute("PRAGMA synchronous = NORMAL")
    # The WalKeeper thread checkpoints, so no request pays for copying the WAL back and fsyncing.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def init(path: Path) -> None:
    """Create or upgrade the schema and switch the file to WAL, idempotently."""
    conn = connect(path, INIT_BUSY_TIMEOUT)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        # Every statement is CREATE ... IF NOT EXISTS. executescript() commits on its own,
        # so it runs here, outside any transaction.
        conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        for step, sql in enumerate(MIGRATIONS, start=2):
            if version < step:
                conn.executescript(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        conn.close()


class Database:
    """The SQLite file: fresh connections, serialised writes, a WAL kept alive."""

    def __init__(self, path: Path, write_timeout: float = 1.0, checkpoint_interval: float = 1.0,
                 wal_limit: int = WAL_LIMIT):
        self.path = Path(path)
        self.write_timeout = write_timeout
        self._write_lock = threading.Lock()
        # mode=rw: a connection never creates a new, empty file where ours was (renamed, deleted).
        self._uri = f"{self.path.resolve().as_uri()}?mode=rw"
        self._identity: tuple[int, int] | None = None
        self.keeper = WalKeeper(self, checkpoint_interval, wal_limit)

    def open(self) -> Database:
        """Create the schema, note which file it is, and start the WAL keeper."""
        init(self.path)
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        self.keeper.start()
        return self

    def close(self) -> None:
        self.keeper.stop()

    def file_problem(self) -> str | None:
        """Say why the file at our path is not the database we opened (gone, replaced); None if it is."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"database file {self.path} is gone"
        except OSError as exc:
            return f"database file {self.path} cannot be read: {exc.strerror}"
        if self._identity is not None and (stat.st_dev, stat.st_ino) != self._identity:
            return f"database file {self.path} was replaced by another file"
        return None

    def connect(self, busy_timeout: float | None = None) -> sqlite3.Connection:
        """Open a connection to our existing file (sqlite3.OperationalError if it is gone)."""
        return connect(self._uri, self.write_timeout if busy_timeout is None else busy_timeout, uri=True)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection for reads, closed afterwards."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection inside one BEGIN IMMEDIATE transaction; commit on exit.

        Raises DatabaseUnavailable when the write cannot start or finish within write_timeout.
        """
        deadline = time.monotonic() + self.write_timeout
        with self.connection() as conn, self.transaction(conn, deadline):
            yield conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection for a write (see transaction), closed afterwards."""
        try:
            conn = self.connect()
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"connect: {exc}") from exc
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self, conn: sqlite3.Connection, deadline: float,
                    prepare: Iterable[str] = ()) -> Iterator[None]:
        """Run a BEGIN IMMEDIATE transaction on conn under the process' write lock; commit on exit.

        `prepare` lists the statements the transaction will run: they are compiled before the
        lock is taken, so the lock is held only while rows are written. Raises
        DatabaseUnavailable when the write cannot start or finish by `deadline` (monotonic);
        any other sqlite3 error (a constraint broken outside a savepoint) is raised as EventRejected.
        """
        try:
            for sql in prepare:
                # executemany over no rows compiles the statement into the connection's
                # statement cache and runs nothing; the later execute() finds it there.
                conn.executemany(sql, ())
            if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise DatabaseUnavailable("another write in this process took too long")
            try:
                remaining = deadline - time.monotonic()
                if remaining < self.write_timeout * 0.9:
                    # The wait for the lock used part of the budget: SQLite gets what is left.
                    conn.execute(f"PRAGMA busy_timeout = {max(1, int(remaining * 1000))}")
                # IMMEDIATE so busy_timeout covers taking the write lock, not a later upgrade.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._write_lock.release()
        except sqlite3.Error as exc:
            raise classify(exc) from exc

    @contextlib.contextmanager
    def paused_writes(self, timeout: float) -> Iterator[bool]:
        """Hold the process' write lock (writers here wait for it); yield whether it was taken."""
        taken = self._write_lock.acquire(timeout=timeout)
        try:
            yield taken
        finally:
            if taken:
                self._write_lock.release()


class WalKeeper:
    """Keep the WAL open and small: a connection of its own, and a checkpoint every interval.

    While one connection stays open, closing a request's connection does not checkpoint and
    delete the WAL (about 1 ms a write otherwise); checkpointing here, on a timer, keeps that copy
    and its fsyncs off the request path. A PASSIVE checkpoint never waits, but under sustained
    load it never finishes: writers append while it copies, so the WAL never starts over
    ("checkpoint starvation") and the file only grows. So each turn is two steps: a PASSIVE
    checkpoint copies the bulk while writers go on, then, if writers appended more than
    RESTART_FRAMES meanwhile, a second one copies just those with this process' writers paused
    (they wait on the write lock, a few milliseconds); finished, the next write starts the WAL
    over from its beginning. Should the file still pass `wal_limit` bytes (a reader kept a
    snapshot, another process writes), writers are paused for a TRUNCATE checkpoint, which
    empties the file.
    """

    def __init__(self, db: Database, interval: float, wal_limit: int = WAL_LIMIT,
                 restart_frames: int = RESTART_FRAMES):
        self.db = db
        self.wal_limit = wal_limit
        self.restart_frames = restart_frames
        self.wal_path = Path(f"{db.path}-wal")
        self.high_water = 0           # the largest WAL size seen, in bytes
        self.truncations = 0
        self.restarts = 0             # checkpoints finished with writers paused
        self.longest_pause = 0.0      # seconds writers waited for a checkpoint
        self._next_truncate = 0.0     # monotonic: no TRUNCATE before this (after one found readers)
        self._frames_seen = -1        # the WAL's frames at the last turn's PASSIVE checkpoint
        self._conn: sqlite3.Connection | None = None
        self._loop = Periodic("wal-keeper", interval, self.checkpoint)

    def start(self) -> None:
        try:
            # Used by the keeper's thread only, and closed after that thread ends.
            self._conn = connect(self.db._uri, uri=True, check_same_thread=False)
            self._conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        except sqlite3.Error as exc:
            log_event(logger, "wal_keeper_unavailable", level=logging.WARNING, reason=describe(exc))
            return
        self._loop.start()

    def stop(self) -> None:
        if self._conn is None:
            return
        self._loop.stop(INIT_BUSY_TIMEOUT)
        self._loop.run_once()
        self._conn.close()
        self._conn = None

    def stats(self) -> dict:
        return {"wal_bytes": self._wal_size(), "wal_high_water_bytes": self.high_water,
                "wal_limit_bytes": self.wal_limit, "wal_truncations": self.truncations,
                "wal_restarts": self.restarts, "wal_longest_pause_ms": round(self.longest_pause * 1000, 1)}

    def checkpoint(self) -> None:
        """One turn: copy the WAL back (PASSIVE), then finish with writers paused if they outran it.

        Over the limit (a reader kept the WAL from starting over): empty it (TRUNCATE) instead.
        """
        size = self._wal_size()
        self.high_water = max(self.high_water, size)
        if size > self.wal_limit and time.monotonic() >= self._next_truncate:
            self._truncate(size)
            return
        _, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        # `frames` is the WAL's size, which stays until the next write starts it over: a WAL
        # copied completely with nothing written since the last turn needs no second step.
        settled = copied == frames == self._frames_seen
        self._frames_seen = frames
        if frames > self.restart_frames and not settled:  # writers are busy: they outran this one
            self._finish()

    def _finish(self) -> None:
        # What writers appended while the PASSIVE checkpoint ran: copied with them paused, so
        # the checkpoint is complete and the next write starts the WAL over.
        started = time.monotonic()
        with self.db.paused_writes(self.db.write_timeout / 2) as taken:
            if not taken:
                return
            busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.longest_pause = max(self.longest_pause, time.monotonic() - started)
        self.restarts += 0 if busy or copied < frames else 1

    def _truncate(self, size: int) -> None:
        # Readers finish in milliseconds; waiting for them longer than a write may wait would
        # push the paused writers past their deadline (into the spool).
        budget = self.db.write_timeout / 2
        started = time.monotonic()
        with self.db.paused_writes(budget) as taken:
            if not taken:
                return
            self._conn.execute(f"PRAGMA busy_timeout = {int(budget * 1000)}")
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        pause = time.monotonic() - started
        self.longest_pause = max(self.longest_pause, pause)
        self.truncations += 0 if busy else 1
        if busy:
            # A reader kept its snapshot (a long query, a backup): don't pause writers every turn.
            self._next_truncate = time.monotonic() + TRUNCATE_BACKOFF_TURNS * self._loop.interval
        log_event(logger, "wal_checkpointed", wal_bytes=size, truncated=not busy,
                  pause_ms=round(pause * 1000, 1))

    def _wal_size(self) -> int:
        try:
            return os.stat(self.wal_path).st_size
        except OSError:
            return 0
