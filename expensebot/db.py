"""SQLite access: one connect() for every connection, one way to write, schema steps.

Every request and background job opens its own connection (SPEC invariant 7). Writers in this
process take turns through one lock, so SQLite's busy handler (which sleeps in growing steps)
only ever arbitrates against other processes, such as someone's sqlite3 CLI.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
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
    conn.execute("PRAGMA foreign_keys = ON")
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); see README, Durability.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def init(path: Path) -> None:
    """Create or upgrade the schema and switch the file to WAL, idempotently."""
    conn = connect(path, INIT_BUSY_TIMEOUT)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            # executescript() commits on its own: it runs outside any transaction.
            conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        for step, sql in enumerate(MIGRATIONS, start=2):
            if version < step:
                conn.executescript(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        conn.close()


class Database:
    """The SQLite file: fresh connections, serialised writes, a WAL kept alive."""

    def __init__(self, path: Path, write_timeout: float = 1.0):
        self.path = Path(path)
        self.write_timeout = write_timeout
        self._write_lock = threading.Lock()
        self._keeper: sqlite3.Connection | None = None

    def open(self) -> Database:
        """Create the schema and hold the WAL open for the life of the process."""
        init(self.path)
        # Never used for queries: while one connection stays open, closing a request's
        # connection doesn't checkpoint and delete the WAL (about 1 ms a write otherwise).
        self._keeper = connect(self.path)
        self._keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return self

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

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
        try:
            conn = connect(self.path, self.write_timeout)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"connect: {exc}") from exc
        try:
            if not self._write_lock.acquire(timeout=self.write_timeout):
                raise DatabaseUnavailable("another write in this process took too long")
            try:
                remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {remaining_ms}")
                # IMMEDIATE so busy_timeout covers taking the write lock, not a later upgrade.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._write_lock.release()
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
