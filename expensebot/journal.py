"""The erasure journal: one line per confirmed "delete my data", in a file beside the database.

A backup taken before an erasure still holds the erased person's rows; restoring it must not bring
them back. So each erasure is also appended here, `<psid_hash> <erased_at>` and nothing else, and
fsynced before its transaction commits. `expensebot restore` and every start apply what the
journal holds that the database lacks, and add to it what only the database holds.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from expensebot import store, times
from expensebot.identity import is_psid_hash


class Journal:
    def __init__(self, db_path: Path):
        self.path = Path(f"{db_path}.erasures")

    def append(self, psid_hash: str, erased_at: str) -> None:
        """Add one erasure and fsync it (the folder too, when the file is new)."""
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{psid_hash} {erased_at}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_folder(self.path.parent)

    def erasures(self) -> dict[str, str]:
        """The latest erasure of each person in the journal (a line torn by a crash is skipped)."""
        try:
            lines = self.path.read_text("ascii", errors="replace").splitlines()
        except FileNotFoundError:
            return {}
        latest: dict[str, str] = {}
        for line in lines:
            psid_hash, _, erased_at = line.partition(" ")
            if is_psid_hash(psid_hash) and _is_time(erased_at):
                latest[psid_hash] = max(latest.get(psid_hash, ""), erased_at)
        return latest

    def reconcile(self, conn: sqlite3.Connection, known: dict[str, str] | None = None) -> int:
        """Erase, in conn's transaction, what the journal (or `known`: another database's erasures)
        holds and this database lacks; append what only the database holds. Return how many were applied."""
        journal = self.erasures()
        wanted = dict(journal)
        for psid_hash, erased_at in (known or {}).items():
            wanted[psid_hash] = max(erased_at, wanted.get(psid_hash, ""))
        applied = 0
        for psid_hash, erased_at in sorted(wanted.items()):
            if not store.erased_since(conn, psid_hash, erased_at):
                store.erase_person(conn, psid_hash, erased_at)
                applied += 1
        for psid_hash, erased_at in conn.execute("SELECT psid_hash, erased_at FROM erasures"):
            if journal.get(psid_hash, "") < erased_at:
                self.append(psid_hash, erased_at)
        return applied

    def lock(self, exclusive: bool = False) -> int | None:
        """Lock the journal: shared while the bot runs, exclusive while a backup is restored.

        Return the file descriptor that holds the lock (closing it lets go), or None when another
        process holds it the other way.
        """
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def _is_time(value: str) -> bool:
    try:
        return times.iso_utc(times.ms_from_iso(value)) == value
    except ValueError:
        return False


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
