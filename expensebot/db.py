"""SQLite access: one connect() for every connection, one way to write, schema steps.

Every request and background job opens its own connection (SPEC invariant 7). Writers in this
process take turns through one lock, so SQLite's busy handler (which sleeps in growing steps)
only ever arbitrates against other processes, such as someone's sqlite3 CLI.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

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


class DatabaseUnavailable(Exception):
    """The database could not take a write in time (locked, read-only, broken)."""


def connect(path: Path, busy_timeout: float = 1.0) -> sqlite3.Connection:
    """Open a connection with every per-connection setting the project relies on."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); see README, Durability.
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

    def __init__(self, path: Path, write_timeout: float = 1.0, checkpoint_interval: float = 1.0):
        self.path = Path(path)
        self.write_timeout = write_timeout
        self._write_lock = threading.Lock()
        self._keeper = WalKeeper(self.path, checkpoint_interval)

    def open(self) -> Database:
        """Create the schema and start the WAL keeper."""
        init(self.path)
        self._keeper.start()
        return self

    def close(self) -> None:
        self._keeper.stop()

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection for reads, closed afterwards."""
        conn = connect(self.path, self.write_timeout)
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
            conn = connect(self.path, self.write_timeout)
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
        DatabaseUnavailable when the write cannot start or finish by `deadline` (monotonic).
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
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


class WalKeeper:
    """A thread with a connection of its own that keeps the WAL open and checkpoints it.

    While one connection stays open, closing a request's connection does not checkpoint
    and delete the WAL (about 1 ms a write otherwise); checkpointing here, PASSIVE and on a
    timer, keeps that copy and its fsyncs off the request path.
    """

    def __init__(self, path: Path, interval: float):
        self.path = path
        self.interval = interval
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="wal-keeper", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=INIT_BUSY_TIMEOUT)

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=INIT_BUSY_TIMEOUT)
            self._thread = None

    def _run(self) -> None:
        try:
            conn = connect(self.path)
            conn.execute("PRAGMA journal_size_limit = 67108864")
        except sqlite3.Error as exc:
            logger.warning("WAL keeper could not open the database: %s", exc)
            self._ready.set()
            return
        try:
            self._ready.set()
            while not self._stopping.wait(self.interval):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            self._ready.set()
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            logger.warning("checkpoint failed: %s", exc)
