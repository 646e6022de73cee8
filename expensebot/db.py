"""SQLite access: one connect() for every connection, one way to write, the schema and its steps.

Writers in this process take turns through one lock, so SQLite's busy handler only ever
arbitrates against other processes (someone's sqlite3 CLI, a backup).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from expensebot.errors import DatabaseUnavailable, classify


# schema.sql: inside the package when installed (setup.py copies it), else at the checkout's root.
SCHEMA_PATH = Path(__file__).resolve().with_name("schema.sql")
if not SCHEMA_PATH.is_file():
    SCHEMA_PATH = SCHEMA_PATH.parent.parent / "schema.sql"
INIT_BUSY_TIMEOUT = 10.0
# Numbered steps from one schema version to the next, tracked by PRAGMA user_version; append,
# never edit. Version 1 is the first release's schema.sql; a new file gets schema.sql as it is now.
MIGRATIONS: tuple[str, ...] = (
    # 2: ids never reused (AUTOINCREMENT: a late AI answer or reply can't land on a newer row),
    #    the time each setting was sent (a late one never overrides a newer one), a rejected
    #    event's own time (an erasure removes what was sent before it, and only that) and one
    #    row per rejected event, budgets turned off kept as such, per-day sums.
    """
    CREATE TABLE messages_raw_2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT, psid_hash TEXT NOT NULL, mid TEXT NOT NULL,
        received_at TEXT NOT NULL, sent_at TEXT NOT NULL, kind TEXT NOT NULL, text TEXT,
        edit_count INTEGER NOT NULL DEFAULT 0, event TEXT NOT NULL);
    INSERT INTO messages_raw_2 SELECT id, psid_hash, mid, received_at, sent_at, kind, text, edit_count, event
        FROM messages_raw;
    DROP TABLE messages_raw;
    ALTER TABLE messages_raw_2 RENAME TO messages_raw;
    CREATE TABLE expenses_2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT, message_id INTEGER NOT NULL, psid_hash TEXT NOT NULL,
        mid TEXT NOT NULL, line INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 1000000000000),
        currency TEXT NOT NULL, description TEXT NOT NULL, category TEXT, category_source TEXT,
        occurred_at TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (message_id, line));
    INSERT INTO expenses_2 SELECT id, message_id, psid_hash, mid, line, amount_minor, currency, description,
        category, category_source, occurred_at, created_at FROM expenses;
    DROP TABLE expenses;
    ALTER TABLE expenses_2 RENAME TO expenses;
    CREATE TABLE rejected_events_2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT, psid_hash TEXT, mid TEXT, sent_at TEXT,
        event TEXT NOT NULL, reason TEXT NOT NULL, rejected_at TEXT NOT NULL);
    INSERT INTO rejected_events_2 (id, psid_hash, mid, event, reason, rejected_at)
        SELECT id, psid_hash, mid, event, reason, rejected_at FROM rejected_events
        WHERE id IN (SELECT min(id) FROM rejected_events GROUP BY psid_hash, coalesce(mid, id));
    DROP TABLE rejected_events;
    ALTER TABLE rejected_events_2 RENAME TO rejected_events;
    ALTER TABLE people ADD COLUMN currency_at TEXT;
    ALTER TABLE people ADD COLUMN timezone_at TEXT;
    UPDATE people SET currency_at = updated_at WHERE currency IS NOT NULL;
    UPDATE people SET timezone_at = updated_at WHERE timezone IS NOT NULL;
    CREATE TABLE settings_log (
        psid_hash TEXT NOT NULL, setting TEXT NOT NULL, set_at TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (psid_hash, setting, set_at)) WITHOUT ROWID;
    INSERT INTO settings_log SELECT psid_hash, 'currency', currency_at, currency FROM people WHERE currency IS NOT NULL;
    INSERT INTO settings_log SELECT psid_hash, 'timezone', timezone_at, timezone FROM people WHERE timezone IS NOT NULL;
    -- budgets: "budget food off" is kept as a row without an amount.
    CREATE TABLE budgets_2 (
        psid_hash TEXT NOT NULL, category TEXT NOT NULL, amount_minor INTEGER CHECK (amount_minor > 0),
        currency TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (psid_hash, category));
    INSERT INTO budgets_2 SELECT psid_hash, category, amount_minor, currency, updated_at FROM budgets;
    DROP TABLE budgets;
    ALTER TABLE budgets_2 RENAME TO budgets;
    -- and per-day sums, which summaries of long periods add up (schema.sql keeps them by triggers).
    CREATE TABLE expense_days (
        psid_hash TEXT NOT NULL, day TEXT NOT NULL, currency TEXT NOT NULL, category TEXT NOT NULL,
        total_minor INTEGER NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (psid_hash, day, currency, category)) WITHOUT ROWID;
    INSERT INTO expense_days
        SELECT psid_hash, substr(occurred_at, 1, 10), currency, coalesce(category, ''), sum(amount_minor), count(*)
        FROM expenses GROUP BY 1, 2, 3, 4;
    """,
    # 3: each expense's conversion to the person's currency (NULL: to be converted by the bot), and
    #    per-day sums that carry the converted amounts (the triggers in schema.sql are made again).
    """
    ALTER TABLE expenses ADD COLUMN converted_minor INTEGER;
    ALTER TABLE expenses ADD COLUMN converted_currency TEXT;
    ALTER TABLE expenses ADD COLUMN rate TEXT;
    ALTER TABLE expenses ADD COLUMN rate_day TEXT;
    ALTER TABLE expenses ADD COLUMN rate_source TEXT;
    DROP INDEX IF EXISTS expenses_psid_hash_occurred_at;
    DROP TRIGGER IF EXISTS expense_days_add;
    DROP TRIGGER IF EXISTS expense_days_remove;
    DROP TRIGGER IF EXISTS expense_days_change;
    DROP TABLE expense_days;
    CREATE TABLE expense_days (
        psid_hash TEXT NOT NULL, day TEXT NOT NULL, currency TEXT NOT NULL, category TEXT NOT NULL,
        converted_currency TEXT NOT NULL, total_minor INTEGER NOT NULL, count INTEGER NOT NULL,
        converted_minor INTEGER NOT NULL, converted_count INTEGER NOT NULL,
        PRIMARY KEY (psid_hash, day, currency, category, converted_currency)) WITHOUT ROWID;
    INSERT INTO expense_days
        SELECT psid_hash, substr(occurred_at, 1, 10), currency, coalesce(category, ''), '', sum(amount_minor),
               count(*), 0, 0
        FROM expenses GROUP BY 1, 2, 3, 4;
    """,
    # 4: the monthly digest: whether a person wants it ('digest off'), and which months' digests
    #    were given, one row each, written in the transaction of the message whose reply carries it.
    """
    ALTER TABLE people ADD COLUMN digest INTEGER;
    ALTER TABLE people ADD COLUMN digest_at TEXT;
    CREATE TABLE digests (
        psid_hash TEXT NOT NULL, month TEXT NOT NULL, sent_at TEXT NOT NULL,
        PRIMARY KEY (psid_hash, month)) WITHOUT ROWID;
    """,
    # 5: recurring expenses: the rules, and on each expense the rule and due date it was made for
    #    (UNIQUE in schema.sql: each due date once) and the message whose reply announced it.
    """
    CREATE TABLE IF NOT EXISTS recurring_rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT, psid_hash TEXT NOT NULL, message_id INTEGER NOT NULL UNIQUE,
        mid TEXT NOT NULL, description TEXT NOT NULL,
        amount_minor INTEGER NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 1000000000000),
        currency TEXT NOT NULL, category TEXT, category_source TEXT, period TEXT NOT NULL,
        start_date TEXT NOT NULL, anchor_day INTEGER NOT NULL, next_number INTEGER NOT NULL DEFAULT 0,
        next_due TEXT NOT NULL, created_at TEXT NOT NULL, stopped_on TEXT, stopped_at TEXT);
    ALTER TABLE expenses ADD COLUMN rule_id INTEGER;
    ALTER TABLE expenses ADD COLUMN due_date TEXT;
    ALTER TABLE expenses ADD COLUMN announced_by INTEGER;
    """,
)
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def connect(path: Path | str, busy_timeout: float = 1.0, uri: bool = False,
            check_same_thread: bool = True) -> sqlite3.Connection:
    """Open a connection with every per-connection setting the project relies on."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, uri=uri,
                           check_same_thread=check_same_thread)
    conn.row_factory = sqlite3.Row
    # NORMAL in WAL mode: a commit survives a process crash (kill -9), not always a power cut right
    # after it; FULL would fsync every commit (docs/DURABILITY.md).
    conn.execute("PRAGMA synchronous = NORMAL")
    # What is deleted is overwritten, not left readable in free pages ("delete my data").
    conn.execute("PRAGMA secure_delete = ON")
    # The WAL keeper (background/wal.py) checkpoints, so no request pays for copying the WAL back.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    # A REPLACE deletes the row it replaces through the delete triggers too (expense_days).
    conn.execute("PRAGMA recursive_triggers = ON")
    return conn


def init(path: Path) -> None:
    """Create or upgrade the schema and switch the file to WAL, idempotently."""
    with contextlib.closing(connect(path, INIT_BUSY_TIMEOUT)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        fresh = conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'messages_raw'").fetchone()[0] == 0
        if not fresh:
            # legacy_alter_table: a table rebuilt under a new name and renamed back keeps the views that
            # name it (ours and any an operator made), instead of SQLite refusing the rename over them.
            conn.execute("PRAGMA legacy_alter_table = ON")
            for step, sql in enumerate(MIGRATIONS, start=2):
                if max(version, 1) < step:  # all of it or none: closing the connection rolls back a failed step
                    conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {step};\nCOMMIT;")
            conn.execute("PRAGMA legacy_alter_table = OFF")
        # Every statement is CREATE ... IF NOT EXISTS. executescript() commits on its own, so it
        # runs outside any transaction.
        conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def quick_check(path: Path) -> str | None:
    """Run SQLite's quick_check on an existing file; None when it is sound, else the first problem.

    Read-only, so that closing the connection never checkpoints a -wal into the file: one left
    beside it by another file (a file swapped in after a crash) must not be written into it.
    """
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(connect(uri, INIT_BUSY_TIMEOUT, uri=True)) as conn:
        try:
            result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            return str(exc)
    return None if result == "ok" else result


class Database:
    """The SQLite file we opened: fresh connections to it, and writes one at a time."""

    def __init__(self, path: Path, write_timeout: float = 1.0, read_only: bool = False):
        self.path = Path(path)
        self.write_timeout = write_timeout
        self.read_only = read_only  # the operator's read commands: they work on a file they cannot write
        self._write_lock = threading.Lock()
        # Messages being taken in now: bulk background writes (a catch-up) wait for a quiet moment.
        self._taking = 0
        self._last_taken = 0.0  # time.monotonic() when the last delivery was handled
        self._quiet = threading.Condition()
        # mode=rw: a connection never creates a new, empty file where ours was (renamed, deleted).
        self._uri = f"{self.path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
        self._identity: tuple[int, int] | None = None
        # Called with the connection after every write commits (the WAL keeper watches the WAL's size).
        self.on_commit: list[Callable[[sqlite3.Connection], None]] = []

    def open(self) -> Database:
        """Create or upgrade the schema and note which file it is (device and inode)."""
        init(self.path)
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        return self

    def file_problem(self) -> str | None:
        """Say why the file at our path is not the database we opened (gone, replaced); None if it is."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"database file {self.path} is gone"
        except OSError as exc:
            return f"database file {self.path} cannot be read: {exc.strerror}"
        if self._identity is not None and (stat.st_dev, stat.st_ino) != self._identity:
            return f"database file {self.path} was replaced by another file; restart the bot to use it"
        return None

    def connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        """Open a connection to the file we opened; raise DatabaseUnavailable if it was replaced or is gone.

        A new file moved in under our path would be opened beside the old file's -wal, whose
        frames SQLite would then apply to it: so it is never opened here.
        """
        problem = self.file_problem()
        if problem is not None:
            raise DatabaseUnavailable(problem)
        uri = self._uri
        if self.read_only and not any(os.path.exists(f"{self.path}{suffix}") for suffix in ("-wal", "-shm")) \
                and not os.access(self.path.parent, os.W_OK):
            # No writer has it open (one would have made -shm), and SQLite cannot make the -shm a WAL
            # read needs: read the file as it stands.
            uri += "&immutable=1"
        try:
            return connect(uri, self.write_timeout, uri=True, check_same_thread=check_same_thread)
        except sqlite3.Error as exc:
            raise classify(exc) from exc

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection for reads, closed afterwards."""
        with contextlib.closing(self.connect()) as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection inside one BEGIN IMMEDIATE transaction; commit on exit, then close.

        Raises DatabaseUnavailable when the write cannot start or finish within write_timeout,
        EventRejected for any other sqlite3 error that escapes the block.
        """
        if not os.access(self.path, os.W_OK):
            # SQLite may reuse a file descriptor opened before the file turned read-only, and
            # write into the WAL what can never be copied back: this is no place to write now.
            raise DatabaseUnavailable(f"database file {self.path} is read-only")
        with contextlib.closing(self.connect()) as conn:
            try:
                if not self._write_lock.acquire(timeout=self.write_timeout):
                    raise DatabaseUnavailable("another write in this process took too long")
                try:
                    # IMMEDIATE so busy_timeout covers taking the write lock, not a later upgrade.
                    conn.execute("BEGIN IMMEDIATE")
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    self._write_lock.release()
            except sqlite3.Error as exc:
                raise classify(exc) from exc
            for hook in self.on_commit:  # committed: a hook must not raise (it would look like a failed write)
                hook(conn)

    @contextlib.contextmanager
    def taking_messages(self) -> Iterator[None]:
        """Mark a webhook delivery being handled, so that bulk writers give way (wait_quiet)."""
        with self._quiet:
            self._taking += 1
        try:
            yield
        finally:
            with self._quiet:
                self._taking -= 1
                self._last_taken = time.monotonic()

    def wait_quiet(self, quiet: float, at_most: float) -> None:
        """Wait until no delivery has been handled for `quiet` seconds, for at most `at_most` seconds
        (bulk work waits here between its transactions: under unbroken traffic it still moves, slowly)."""
        ends = time.monotonic() + at_most
        with self._quiet:
            while (now := time.monotonic()) < ends:
                calm = now - self._last_taken
                if not self._taking and calm >= quiet:
                    return
                self._quiet.wait(min(ends - now, quiet - calm if not self._taking else quiet))

    @contextlib.contextmanager
    def paused_writes(self, timeout: float) -> Iterator[bool]:
        """Hold the process' write lock (writers here wait for it); yield whether it was taken."""
        taken = self._write_lock.acquire(timeout=timeout)
        try:
            yield taken
        finally:
            if taken:
                self._write_lock.release()
