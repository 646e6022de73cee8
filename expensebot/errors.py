"""What went wrong, decided once where it happens: "the database can't take writes now" or "this event never can".

The two call for opposite answers (docs/DURABILITY.md). A database that cannot take the event now
takes it later, from the spool; an event that fails the same way every time would jam the replay,
so it is kept in `rejected_events` instead and the rest of its delivery is stored.
"""

from __future__ import annotations

import sqlite3

# SQLite's primary result codes (https://www.sqlite.org/rescode.html) that say "not now".
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_PERM, sqlite3.SQLITE_ABORT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB,
}
# SQLITE_ERROR with these words means the file under our path is not our database (replaced, emptied).
_MISSING_SCHEMA = ("no such table", "no such column")


class Unavailable(Exception):
    """Something the bot needs (the database, the spool folder) can't be used now: expected, not a bug."""


class DatabaseUnavailable(Unavailable):
    """The database could not take a write in time (locked, busy, read-only, full, broken, gone)."""


class EventRejected(Exception):
    """This event can never be stored: a constraint it breaks, a value out of range, a bug handling it."""


def is_unavailable(exc: BaseException) -> bool:
    """Tell whether exc means "the database cannot take writes now" (as opposed to "never")."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if not isinstance(exc, sqlite3.Error):
        return False
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError,
                        sqlite3.InterfaceError, sqlite3.NotSupportedError)):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module itself, not by SQLite: treat as "not now"
        return True
    code &= 0xFF  # the primary code
    return code in _UNAVAILABLE_CODES or (code == sqlite3.SQLITE_ERROR and str(exc).startswith(_MISSING_SCHEMA))


def is_expected(exc: BaseException) -> bool:
    """Tell whether exc is a condition an operator can cause and fix (logged without a traceback)."""
    return isinstance(exc, Unavailable) or is_unavailable(exc)


def classify(exc: BaseException) -> DatabaseUnavailable | EventRejected:
    """Turn any exception met while storing an event into one of the two answers."""
    if isinstance(exc, (DatabaseUnavailable, EventRejected)):
        return exc
    if is_unavailable(exc):
        return DatabaseUnavailable(describe(exc))
    return EventRejected(describe(exc))


def describe(exc: BaseException) -> str:
    """One short line naming the error: its type and message, never a traceback."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
