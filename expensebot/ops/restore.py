"""`expensebot restore BACKUP`: put a backup in the database's place, with every erasure kept.

The backup is checked, copied beside the database, upgraded to this release's schema, and given
every erasure the live database or the erasure journal knows (expensebot/journal.py); only then
does it replace the database, whose file is kept aside. Refused while the bot runs: the bot holds
the journal's lock.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from expensebot import db
from expensebot.config import ConfigError
from expensebot.journal import Journal, fsync_folder

BACKUP_GLOB = "expensebot-*.db"


def restore(db_path: Path, backup: Path) -> dict:
    """Replace the database at db_path by the backup; return what was done, for the log line."""
    folder = db_path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"EXPENSEBOT_DB: {folder} is not a folder this user can create files in")
    backup = _newest(backup) if backup.is_dir() else backup
    problem = _backup_problem(backup, db_path)
    if problem:
        raise ConfigError(f"restore: {backup}: {problem}")
    journal = Journal(db_path)
    lock = journal.lock(exclusive=True)
    if lock is None:
        raise ConfigError(f"restore: the bot is running on {db_path} (it holds {journal.path}); "
                          "stop it first: sudo systemctl stop expensebot")
    try:
        known, live_problem = _live_erasures(db_path)
        staged = db_path.with_name(db_path.name + ".restoring")
        _remove_with_wal(staged)
        applied = _stage(backup, staged, journal, known)
        os.chmod(staged, 0o600)  # people's expenses: the bot's user only, whatever the backup's mode was
        aside = _set_aside(db_path)
        os.replace(staged, db_path)
        fsync_folder(db_path.parent)
    finally:
        os.close(lock)
    done = {"backup": str(backup), "db": str(db_path), "erasures_applied": applied,
            "kept_aside": str(aside) if aside else None}
    if live_problem:
        done["live_database"] = live_problem
    return done


def _newest(folder: Path) -> Path:
    backups = sorted(path for path in folder.glob(BACKUP_GLOB) if path.is_file())
    if not backups:
        raise ConfigError(f"restore: no {BACKUP_GLOB} file in {folder}")
    return backups[-1]


def _backup_problem(backup: Path, db_path: Path) -> str | None:
    if not backup.is_file():
        return "no such file"
    if db_path.exists() and backup.samefile(db_path):
        return "that is the database itself"
    if not os.access(backup, os.R_OK):
        return "cannot be read by this user"
    try:
        problem = db.quick_check(backup)
        conn = db.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        problem = str(exc)
    if problem:
        return f"not a sound SQLite database ({problem})"
    if not {"messages_raw", "expenses", "erasures"} <= tables:
        return "not an expensebot database"
    if version > db.SCHEMA_VERSION:
        return (f"schema version {version} is newer than this release's {db.SCHEMA_VERSION}; "
                "restore with the release that wrote it")
    return None


def _live_erasures(db_path: Path) -> tuple[dict[str, str], str | None]:
    """The erasures the current database records (emptying its WAL), or why they could not be read."""
    if not db_path.exists():
        return {}, None
    try:
        conn = db.connect(db_path)
        try:
            erasures = dict(conn.execute("SELECT psid_hash, erased_at FROM erasures").fetchall())
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {}, f"unreadable ({exc}): only the erasure journal was applied"
    return erasures, None


def _stage(backup: Path, staged: Path, journal: Journal, known: dict[str, str]) -> int:
    """Copy the backup to staged, upgrade its schema and apply the erasures; return how many."""
    source = db.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(staged)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    db.init(staged)
    conn = db.connect(staged)
    try:
        conn.execute("BEGIN IMMEDIATE")
        applied = journal.reconcile(conn, known)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return applied


def _set_aside(db_path: Path) -> Path | None:
    """Rename the database (and any -wal, -shm left by a crash: first) to <db>.before-restore-<time>."""
    if not db_path.exists():
        return None
    aside = db_path.with_name(f"{db_path.name}.before-restore-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}")
    for suffix in ("-wal", "-shm", ""):
        if Path(f"{db_path}{suffix}").exists():
            os.replace(f"{db_path}{suffix}", f"{aside}{suffix}")
    return aside


def _remove_with_wal(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
