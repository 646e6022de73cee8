"""Every SQL statement of the project: small named functions taking `conn` first."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from expensebot import times
from expensebot.ingest.webhook import Message

JOB_STATUSES = ("pending", "ok", "error", "skipped")

INSERT_MESSAGE = (
    "INSERT OR IGNORE INTO messages_raw"
    " (psid_hash, mid, received_at, sent_at, kind, text, edit_count, event)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EXPENSE = (
    "INSERT INTO expenses"
    " (message_id, psid_hash, mid, line, amount_minor, currency, description,"
    "  category, category_source, occurred_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_JOB = "INSERT INTO jobs (message_id, status, run_after, updated_at) VALUES (?, ?, ?, ?)"
PERSON_STATE = (
    "SELECT (SELECT currency FROM people WHERE psid_hash = :psid_hash),"
    " (SELECT timezone FROM people WHERE psid_hash = :psid_hash),"
    " (SELECT erased_at FROM erasures WHERE psid_hash = :psid_hash)"
)
# What a new message's transaction runs: compiled before the write lock (Database.transaction).
INGEST_STATEMENTS = (INSERT_MESSAGE, INSERT_EXPENSE, INSERT_JOB)


def insert_message(conn: sqlite3.Connection, message: Message, received_at: str, sent_at: str) -> int | None:
    """Store the message unless its mid is known; return the new row id, or None."""
    # lastrowid, not RETURNING: on a fresh connection RETURNING costs ~80 us a statement.
    cursor = conn.execute(
        INSERT_MESSAGE,
        (message.psid_hash, message.mid, received_at, sent_at,
         message.kind, message.text, message.num_edit, message.event),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def apply_edit(conn: sqlite3.Connection, message: Message) -> sqlite3.Row | None:
    """Replace a stored message's text unless this edit (or a later one) was applied; return id, sent_at."""
    return conn.execute(
        "UPDATE messages_raw"
        " SET text = ?, edit_count = ?"
        " WHERE psid_hash = ?"
        " AND mid = ?"
        " AND edit_count < ?"
        " RETURNING id, sent_at",
        (message.text, message.num_edit, message.psid_hash, message.mid, message.num_edit),
    ).fetchone()


def insert_expenses(conn: sqlite3.Connection, message_id: int, message: Message,
                    rows: Iterable[tuple], created_at: str) -> list[int]:
    """Insert (line, amount_minor, currency, description, category, category_source, occurred_at) rows."""
    return [
        conn.execute(INSERT_EXPENSE, (message_id, message.psid_hash, message.mid, *row, created_at)).lastrowid
        for row in rows
    ]


def delete_expenses_of_message(conn: sqlite3.Connection, message_id: int) -> int:
    """Delete the expenses read from one message; return how many."""
    return conn.execute("DELETE FROM expenses WHERE message_id = ?", (message_id,)).rowcount


def insert_job(conn: sqlite3.Connection, message_id: int, now: str, status: str = "pending") -> None:
    """Queue the enrichment job of a new message (`skipped` at once with AI off)."""
    conn.execute(INSERT_JOB, (message_id, status, now, now))


def requeue_job(conn: sqlite3.Connection, message_id: int, now: str, status: str = "pending") -> None:
    """Make a message's job pending again (its text changed), creating it if missing; `skipped` with AI off."""
    conn.execute(
        "INSERT INTO jobs (message_id, status, run_after, updated_at)"
        " VALUES (?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO UPDATE"
        " SET status = excluded.status, attempts = 0, last_error = NULL,"
        "     run_after = excluded.run_after, updated_at = excluded.updated_at",
        (message_id, status, now, now),
    )


def last_write(conn: sqlite3.Connection, psid_hash: str) -> sqlite3.Row | None:
    """Return received_at and mid of the person's newest message row."""
    return conn.execute(
        "SELECT received_at, mid"
        " FROM messages_raw"
        " WHERE psid_hash = ?"
        " ORDER BY id DESC"
        " LIMIT 1",
        (psid_hash,),
    ).fetchone()


def counts(conn: sqlite3.Connection) -> dict:
    """Count messages, expenses and jobs by status."""
    jobs = dict.fromkeys(JOB_STATUSES, 0)
    jobs.update(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
    return {
        "messages": conn.execute("SELECT count(*) FROM messages_raw").fetchone()[0],
        "expenses": conn.execute("SELECT count(*) FROM expenses").fetchone()[0],
        "jobs": jobs,
        "rejected_events": conn.execute("SELECT count(*) FROM rejected_events").fetchone()[0],
    }


# Bounds that include every ISO-8601 time, for the "all" period.
_EARLIEST, _LATEST = "", "~"


def day_totals(conn: sqlite3.Connection, psid_hash: str, start: str, end: str,
               max_expense_id: int | None = None) -> tuple[list[tuple[str, int]], bool]:
    """What an expense reply shows from the rows, in one statement (each costs ~20 us on a fresh connection).

    The person's expenses in [start, end) per currency, (currency, total_minor), most used first,
    counting only ids <= max_expense_id (stored by then) when given; and whether they have a
    budget (True when they spent nothing then: not known).
    """
    rows = conn.execute(
        "SELECT currency, sum(amount_minor), EXISTS (SELECT 1 FROM budgets WHERE psid_hash = :psid_hash)"
        " FROM expenses"
        " WHERE psid_hash = :psid_hash"
        " AND occurred_at >= :start"
        " AND occurred_at < :end"
        " AND id <= :upto"
        " GROUP BY currency"
        " ORDER BY count(*) DESC, currency",
        {"psid_hash": psid_hash, "start": start, "end": end,
         "upto": max_expense_id if max_expense_id is not None else 2**63 - 1},
    ).fetchall()
    return [(row[0], row[1]) for row in rows], bool(rows[0][2]) if rows else True


def category_totals(conn: sqlite3.Connection, psid_hash: str, start: str | None, end: str | None) -> list:
    """Sum one person's expenses in [start, end) per currency and category, largest first."""
    return conn.execute(
        "SELECT currency, category, sum(amount_minor) AS total_minor, count(*) AS count"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " GROUP BY currency, category"
        " ORDER BY total_minor DESC, category",
        (psid_hash, start or _EARLIEST, end or _LATEST),
    ).fetchall()


def delete_latest_expense(conn: sqlite3.Connection, psid_hash: str) -> sqlite3.Row | None:
    """Delete the person's most recently recorded expense; return what it was."""
    return conn.execute(
        "DELETE FROM expenses"
        " WHERE id = (SELECT max(id) FROM expenses WHERE psid_hash = ?)"
        " RETURNING description, amount_minor, currency, occurred_at",
        (psid_hash,),
    ).fetchone()


def erase_person(conn: sqlite3.Connection, psid_hash: str, erased_at: str | None = None) -> dict:
    """Delete every row of one person: jobs, expenses, messages, settings, budgets; count the first three.

    Also deletes the person's rejected events and records the erasure (erased_at: the
    confirmation's own time), which keeps older events from being stored again.
    """
    jobs = conn.execute(
        "DELETE FROM jobs"
        " WHERE message_id IN (SELECT id FROM messages_raw WHERE psid_hash = ?)",
        (psid_hash,),
    ).rowcount
    expenses = conn.execute("DELETE FROM expenses WHERE psid_hash = ?", (psid_hash,)).rowcount
    messages = conn.execute("DELETE FROM messages_raw WHERE psid_hash = ?", (psid_hash,)).rowcount
    conn.execute("DELETE FROM people WHERE psid_hash = ?", (psid_hash,))
    conn.execute("DELETE FROM budgets WHERE psid_hash = ?", (psid_hash,))
    delete_rejected_events(conn, psid_hash)
    record_erasure(conn, psid_hash, erased_at or times.iso_utc(times.now_ms()))
    return {"jobs": jobs, "expenses": expenses, "messages": messages}


def expenses_of(conn: sqlite3.Connection, psid_hash: str) -> list:
    """Every expense of one person, oldest first."""
    return conn.execute(
        "SELECT id, occurred_at, amount_minor, currency, description, category, category_source, mid"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " ORDER BY occurred_at, id",
        (psid_hash,),
    ).fetchall()


def due_jobs(conn: sqlite3.Connection, now: str, limit: int) -> list[int]:
    """Message ids of pending jobs whose time has come, oldest first."""
    return [row[0] for row in conn.execute(
        "SELECT message_id"
        " FROM jobs"
        " WHERE status = 'pending'"
        " AND run_after <= ?"
        " ORDER BY run_after"
        " LIMIT ?",
        (now, limit),
    )]


def job_message(conn: sqlite3.Connection, message_id: int) -> sqlite3.Row | None:
    """The psid_hash and mid of a job's message, with its attempts so far."""
    return conn.execute(
        "SELECT jobs.message_id, messages_raw.psid_hash, messages_raw.mid, jobs.attempts, jobs.status"
        " FROM jobs"
        " JOIN messages_raw ON messages_raw.id = jobs.message_id"
        " WHERE jobs.message_id = ?",
        (message_id,),
    ).fetchone()


def uncategorized_expenses(conn: sqlite3.Connection, message_id: int) -> list:
    """The expenses of a message that nobody (person, rule, AI) has categorised yet."""
    return conn.execute(
        "SELECT id, description"
        " FROM expenses"
        " WHERE message_id = ?"
        " AND category IS NULL",
        (message_id,),
    ).fetchall()


def set_ai_category(conn: sqlite3.Connection, expense_id: int, category: str) -> bool:
    """Set the AI's category unless one was set meanwhile (a person's #category always wins)."""
    return conn.execute(
        "UPDATE expenses"
        " SET category = ?, category_source = 'ai'"
        " WHERE id = ?"
        " AND category IS NULL",
        (category, expense_id),
    ).rowcount == 1


def finish_job(conn: sqlite3.Connection, message_id: int, status: str, now: str,
               error: str | None = None, attempted: bool = True) -> None:
    """Record a job's outcome: ok, skipped or error (with its reason)."""
    conn.execute(
        "UPDATE jobs"
        " SET status = ?, last_error = ?, attempts = attempts + ?, updated_at = ?"
        " WHERE message_id = ?",
        (status, error, int(attempted), now, message_id),
    )


def postpone_job(conn: sqlite3.Connection, message_id: int, run_after: str, now: str,
                 error: str | None = None, attempted: bool = False) -> None:
    """Leave a job pending until run_after (a retry after a failure, or a rate limit)."""
    conn.execute(
        "UPDATE jobs"
        " SET run_after = ?, last_error = coalesce(?, last_error), attempts = attempts + ?, updated_at = ?"
        " WHERE message_id = ?",
        (run_after, error, int(attempted), now, message_id),
    )


def skip_due_jobs(conn: sqlite3.Connection, now: str, limit: int) -> list:
    """End due pending jobs `skipped` (AI off); return their message_id, psid_hash, mid."""
    jobs = conn.execute(
        "SELECT message_id, psid_hash, mid"
        " FROM job_details"
        " WHERE status = 'pending'"
        " AND run_after <= ?"
        " ORDER BY run_after"
        " LIMIT ?",
        (now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE jobs SET status = 'skipped', updated_at = ? WHERE message_id = ?",
        [(now, job["message_id"]) for job in jobs],
    )
    return jobs


def failed_jobs(conn: sqlite3.Connection, limit: int = 100) -> list:
    """Jobs that ended in error, newest first, with their message."""
    return conn.execute(
        "SELECT message_id, psid_hash, mid, attempts, last_error, updated_at"
        " FROM job_details"
        " WHERE status = 'error'"
        " ORDER BY updated_at DESC"
        " LIMIT ?",
        (limit,),
    ).fetchall()


def requeue_failed_jobs(conn: sqlite3.Connection, now: str) -> int:
    """Make every job that ended in error pending again, with fresh attempts; return how many."""
    return conn.execute(
        "UPDATE jobs"
        " SET status = 'pending', attempts = 0, run_after = ?, updated_at = ?"
        " WHERE status = 'error'",
        (now, now),
    ).rowcount


def person(conn: sqlite3.Connection, psid_hash: str) -> sqlite3.Row | None:
    """The person's own settings row (currency, timezone), or None."""
    return conn.execute(
        "SELECT currency, timezone"
        " FROM people"
        " WHERE psid_hash = ?",
        (psid_hash,),
    ).fetchone()


def budgets_of(conn: sqlite3.Connection, psid_hash: str) -> list:
    """The person's monthly budgets: category ('' for everything), amount_minor, currency."""
    return conn.execute(
        "SELECT category, amount_minor, currency"
        " FROM budgets"
        " WHERE psid_hash = ?"
        " ORDER BY category",
        (psid_hash,),
    ).fetchall()


def person_state(conn: sqlite3.Connection, psid_hash: str) -> tuple[str | None, str | None, str | None]:
    """(currency, timezone, erased_at) of one person, each None when never set: one statement."""
    return conn.execute(PERSON_STATE, {"psid_hash": psid_hash}).fetchone()


def record_erasure(conn: sqlite3.Connection, psid_hash: str, erased_at: str) -> None:
    """Remember that the person erased their data, keeping the latest time."""
    conn.execute(
        "INSERT INTO erasures (psid_hash, erased_at)"
        " VALUES (?, ?)"
        " ON CONFLICT (psid_hash) DO UPDATE"
        " SET erased_at = max(erased_at, excluded.erased_at)",
        (psid_hash, erased_at),
    )


def insert_rejected_event(conn: sqlite3.Connection, psid_hash: str | None, mid: str | None,
                          event: str, reason: str, rejected_at: str) -> int:
    """Keep an event that can never be stored, with the reason; return its id."""
    return conn.execute(
        "INSERT INTO rejected_events (psid_hash, mid, event, reason, rejected_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (psid_hash, mid, event, reason, rejected_at),
    ).lastrowid


def rejected_events(conn: sqlite3.Connection, limit: int = 100) -> list:
    """The newest rejected events, with their reason."""
    return conn.execute(
        "SELECT id, psid_hash, mid, reason, rejected_at, event"
        " FROM rejected_events"
        " ORDER BY id DESC"
        " LIMIT ?",
        (limit,),
    ).fetchall()


def delete_rejected_events(conn: sqlite3.Connection, psid_hash: str) -> int:
    """Delete one person's rejected events; return how many."""
    return conn.execute("DELETE FROM rejected_events WHERE psid_hash = ?", (psid_hash,)).rowcount


def expenses_between(conn: sqlite3.Connection, psid_hash: str, start: str, end: str) -> list:
    """One person's expenses in [start, end), oldest first, with the columns of expenses_of."""
    return conn.execute(
        "SELECT id, occurred_at, amount_minor, currency, description, category, category_source, mid"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " ORDER BY occurred_at, id",
        (psid_hash, start, end),
    ).fetchall()


def set_person(conn: sqlite3.Connection, psid_hash: str, now: str,
               currency: str | None = None, timezone: str | None = None) -> None:
    """Set the person's own currency and/or time zone, keeping the other as it was."""
    conn.execute(
        "INSERT INTO people (psid_hash, currency, timezone, updated_at)"
        " VALUES (?, ?, ?, ?)"
        " ON CONFLICT (psid_hash) DO UPDATE"
        " SET currency = coalesce(excluded.currency, currency),"
        "     timezone = coalesce(excluded.timezone, timezone),"
        "     updated_at = excluded.updated_at",
        (psid_hash, currency, timezone, now),
    )


def set_budget(conn: sqlite3.Connection, psid_hash: str, category: str, amount_minor: int,
               currency: str, now: str) -> None:
    """Set the monthly budget of a category ('' for everything), replacing the one before."""
    conn.execute(
        "INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (psid_hash, category) DO UPDATE"
        " SET amount_minor = excluded.amount_minor,"
        "     currency = excluded.currency,"
        "     updated_at = excluded.updated_at",
        (psid_hash, category, amount_minor, currency, now),
    )


def delete_budget(conn: sqlite3.Connection, psid_hash: str, category: str) -> bool:
    """Remove a category's budget; tell whether there was one."""
    return conn.execute(
        "DELETE FROM budgets WHERE psid_hash = ? AND category = ?", (psid_hash, category)
    ).rowcount == 1


def delete_latest_expenses(conn: sqlite3.Connection, psid_hash: str, count: int) -> list:
    """Delete the person's `count` most recently recorded expenses; return them, newest first."""
    return sorted(conn.execute(
        "DELETE FROM expenses"
        " WHERE id IN (SELECT id FROM expenses WHERE psid_hash = ? ORDER BY id DESC LIMIT ?)"
        " RETURNING id, description, amount_minor, currency, occurred_at",
        (psid_hash, count),
    ).fetchall(), key=lambda row: -row["id"])


# A description in lower case with the punctuation people put after a word as spaces, so that
# 'coffee,' and 'Coffee!' have the word 'coffee' ('iced-coffee' does not: '-' stays).
_WORDS_OF_DESCRIPTION = "lower(" + "".join("replace(" for _ in ",.;:!?") + "description" + "".join(
    f", '{mark}', ' ')" for mark in ",.;:!?") + ")"


def term_totals(conn: sqlite3.Connection, psid_hash: str, start: str | None, end: str | None,
                term: str) -> list:
    """Sum one person's expenses in [start, end) whose category is term or whose description has
    the word term or its plural with 's' (term: lower-case letters, digits and '-' only), per
    currency: currency, total_minor, count."""
    return conn.execute(
        "SELECT currency, sum(amount_minor) AS total_minor, count(*) AS count"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " AND (category = ? OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || ? || ' %'"
        "      OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || ? || 's %')"
        " GROUP BY currency"
        " ORDER BY count(*) DESC, currency",
        (psid_hash, start or _EARLIEST, end or _LATEST, term, term, term),
    ).fetchall()


def message_categories(conn: sqlite3.Connection, message_id: int) -> list[str]:
    """The categories of one message's expenses (uncategorized ones left out)."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT category FROM expenses WHERE message_id = ? AND category IS NOT NULL",
        (message_id,),
    )]


def erased_since(conn: sqlite3.Connection, psid_hash: str, moment: str) -> bool:
    """Tell whether the person erased their data at or after moment (ISO-8601 UTC)."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM erasures WHERE psid_hash = ? AND erased_at >= ?)",
        (psid_hash, moment),
    ).fetchone()[0] == 1


def day_sums(conn: sqlite3.Connection, psid_hash: str, day_starts: list[str]) -> list:
    """Sum one person's expenses per day and currency: day n (1-based) is [day_starts[n - 1],
    day_starts[n]), so the last item ends the last day; rows day, currency, total_minor."""
    days = [(number, start, end) for number, (start, end) in enumerate(zip(day_starts, day_starts[1:]), start=1)]
    return conn.execute(
        "WITH days (day, day_start, day_end) AS (VALUES " + ", ".join(["(?, ?, ?)"] * len(days)) + ")"
        " SELECT days.day, currency, sum(amount_minor) AS total_minor"
        " FROM days"
        " JOIN expenses ON psid_hash = ?"
        " AND occurred_at >= days.day_start"
        " AND occurred_at < days.day_end"
        " GROUP BY days.day, currency",
        (*(value for day in days for value in day), psid_hash),
    ).fetchall()


def latest_expenses_between(conn: sqlite3.Connection, psid_hash: str, start: str, end: str, limit: int) -> list:
    """One person's newest `limit` expenses in [start, end), newest first, with the columns of expenses_of."""
    return conn.execute(
        "SELECT id, occurred_at, amount_minor, currency, description, category, category_source, mid"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " ORDER BY occurred_at DESC, id DESC"
        " LIMIT ?",
        (psid_hash, start, end, limit),
    ).fetchall()


def expenses_between_cursor(conn: sqlite3.Connection, psid_hash: str, start: str, end: str) -> sqlite3.Cursor:
    """expenses_between as a cursor, for reading a long month in chunks (fetchmany)."""
    return conn.execute(
        "SELECT id, occurred_at, amount_minor, currency, description, category, category_source, mid"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " ORDER BY occurred_at, id",
        (psid_hash, start, end),
    )
