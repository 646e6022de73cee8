"""Every SQL statement of the project: small named functions taking `conn` first."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable

from expensebot import times
from expensebot.events import Message
from expensebot.settings import Settings, settings_from


def insert_message(conn: sqlite3.Connection, message: Message, received_at: str, sent_at: str) -> int | None:
    """Store the message unless its mid is known; return the new row id, or None."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO messages_raw"
        " (psid_hash, mid, received_at, sent_at, kind, text, edit_count, event)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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


def insert_expenses(conn: sqlite3.Connection, message_id: int, psid_hash: str, mid: str,
                    rows: Iterable[tuple], created_at: str) -> list[int]:
    """Insert (line, amount_minor, currency, description, category, category_source, occurred_at,
    converted_minor, converted_currency, rate, rate_day, rate_source) rows."""
    return [
        conn.execute(
            "INSERT INTO expenses"
            " (message_id, psid_hash, mid, line, amount_minor, currency, description, category, category_source,"
            "  occurred_at, converted_minor, converted_currency, rate, rate_day, rate_source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message_id, psid_hash, mid, *row, created_at),
        ).lastrowid
        for row in rows
    ]


def delete_expenses_of_message(conn: sqlite3.Connection, message_id: int) -> int:
    """Delete the expenses read from one message; return how many."""
    return conn.execute("DELETE FROM expenses WHERE message_id = ?", (message_id,)).rowcount


def queue_job(conn: sqlite3.Connection, message_id: int, now: str, status: str = "pending") -> None:
    """Queue a message's enrichment job, or make it pending again (its text changed); `skipped` at once with AI off."""
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
    jobs = dict.fromkeys(("pending", "ok", "error", "skipped"), 0)
    jobs.update(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
    return {
        "messages": conn.execute("SELECT count(*) FROM messages_raw").fetchone()[0],
        "expenses": conn.execute("SELECT count(*) FROM expenses").fetchone()[0],
        "jobs": jobs,
        "rejected_events": conn.execute("SELECT count(*) FROM rejected_events").fetchone()[0],
    }


# Bounds that include every ISO-8601 time, for the "all" period.
_EARLIEST, _LATEST = "", "~"


def day_totals(conn: sqlite3.Connection, psid_hash: str, start: str, end: str, upto: int) -> list[tuple]:
    """The person's expenses in [start, end) per currency, (currency, total_minor, converted_currency,
    converted_minor), most used first, counting only those stored by the time expense `upto` was (ids
    only grow: AUTOINCREMENT); the converted sum is None unless every one of them has one, in one currency."""
    return [tuple(row)[:4] for row in conn.execute(
        "SELECT currency, total_minor, iif(whole, converted_currency, NULL), iif(whole, converted_minor, NULL), count"
        " FROM (SELECT currency, sum(amount_minor) AS total_minor, count(*) AS count,"
        "       max(converted_currency) AS converted_currency, sum(converted_minor) AS converted_minor,"
        "       count(DISTINCT converted_currency) = 1 AND count(converted_minor) = count(*) AS whole"
        "       FROM expenses"
        "       WHERE psid_hash = ?"
        "       AND occurred_at >= ?"
        "       AND occurred_at < ?"
        "       AND id <= ?"
        "       GROUP BY currency)"
        " ORDER BY count DESC, currency",
        (psid_hash, start, end, upto),
    )]


def category_totals(conn: sqlite3.Connection, psid_hash: str, start: str | None, end: str | None) -> list:
    """Sum one person's expenses in [start, end) per currency, category and the currency they are
    converted to ('' while waiting), largest first: whole UTC days come from expense_days, and only
    the rows of the part-days at the ends are read."""
    first_day, last_day, before, after = _split(start or _EARLIEST, end or _LATEST)
    return conn.execute(
        "SELECT currency, nullif(category, '') AS category, converted_currency,"
        " sum(total_minor) AS total_minor, sum(count) AS count,"
        " sum(converted_minor) AS converted_minor, sum(converted_count) AS converted_count"
        " FROM (SELECT currency, category, converted_currency, total_minor, count, converted_minor, converted_count"
        "       FROM expense_days"
        "       WHERE psid_hash = :who"
        "       AND day >= :first_day"
        "       AND day < :last_day"
        "       UNION ALL"
        "       SELECT currency, coalesce(category, ''), coalesce(converted_currency, ''), amount_minor, 1,"
        "              coalesce(converted_minor, 0), converted_minor IS NOT NULL"
        "       FROM expenses"
        "       WHERE psid_hash = :who"
        "       AND ((occurred_at >= :start AND occurred_at < :before)"
        "            OR (occurred_at >= :after AND occurred_at < :end)))"
        " GROUP BY currency, category, converted_currency"
        " ORDER BY total_minor DESC, category",
        {"who": psid_hash, "first_day": first_day, "last_day": last_day, "start": start or _EARLIEST,
         "before": before, "after": after, "end": end or _LATEST},
    ).fetchall()


_MIDNIGHT = "T00:00:00.000Z"


def _split(start: str, end: str) -> tuple[str, str, str, str]:
    """[start, end) as the whole UTC days in it, [first_day, last_day), and the part-days around them,
    [start, before) and [after, end), as bounds of occurred_at."""
    first = _EARLIEST if start == _EARLIEST else start[:10] if start[10:] == _MIDNIGHT else _next_day(start[:10])
    last = _LATEST if end == _LATEST else end[:10]
    if first >= last:  # no whole day inside: all of it is rows
        return _LATEST, _LATEST, end, end
    return first, last, first + _MIDNIGHT if first else _EARLIEST, last + _MIDNIGHT if last != _LATEST else _LATEST


def _next_day(day: str) -> str:
    try:
        return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    except (ValueError, OverflowError):  # not a date this code wrote, or 9999-12-31: no whole day after it
        return _LATEST


def erase_person(conn: sqlite3.Connection, psid_hash: str, erased_at: str) -> tuple[int, int]:
    """Delete every row of one person sent at or before erased_at; return (messages, expenses) deleted.

    What was sent after erased_at (arrived earlier, out of order) stays. The erasure is recorded,
    which keeps anything sent before it from being stored again.
    """
    sent = "SELECT id FROM messages_raw WHERE psid_hash = :who AND sent_at <= :at"
    who = {"who": psid_hash, "at": erased_at}
    conn.execute(f"DELETE FROM jobs WHERE message_id IN ({sent})", who)
    expenses = conn.execute(f"DELETE FROM expenses WHERE message_id IN ({sent})", who).rowcount
    messages = conn.execute("DELETE FROM messages_raw WHERE psid_hash = :who AND sent_at <= :at", who).rowcount
    for setting in ("currency", "timezone", "digest"):
        conn.execute(f"UPDATE people SET {setting} = NULL, {setting}_at = NULL"
                     f" WHERE psid_hash = :who AND {setting}_at <= :at", who)
    conn.execute("DELETE FROM people WHERE psid_hash = :who AND currency IS NULL AND timezone IS NULL"
                 " AND digest IS NULL", who)
    conn.execute("DELETE FROM digests WHERE psid_hash = :who AND sent_at <= :at", who)
    conn.execute("DELETE FROM settings_log WHERE psid_hash = :who AND set_at <= :at", who)
    conn.execute("DELETE FROM budgets WHERE psid_hash = :who AND updated_at <= :at", who)
    # Their occurrences went with the rule's message above; the rule makes no more.
    conn.execute("DELETE FROM recurring_rules WHERE psid_hash = :who AND created_at <= :at", who)
    conn.execute("DELETE FROM rejected_events WHERE psid_hash = :who AND coalesce(sent_at, '') <= :at", who)
    conn.execute("DELETE FROM pending_replies WHERE psid_hash = :who AND sent_at <= :at", who)
    conn.execute("DELETE FROM receipt_drafts WHERE psid_hash = :who AND sent_at <= :at", who)
    conn.execute(
        "INSERT INTO erasures (psid_hash, erased_at)"
        " VALUES (?, ?)"
        " ON CONFLICT (psid_hash) DO UPDATE"
        " SET erased_at = max(erased_at, excluded.erased_at)",  # the latest erasure counts
        (psid_hash, erased_at),
    )
    return messages, expenses


def expenses_of(conn: sqlite3.Connection, psid_hash: str) -> list:
    """Every expense of one person, oldest first."""
    return expenses_between(conn, psid_hash, _EARLIEST, _LATEST).fetchall()


def due_jobs(conn: sqlite3.Connection, now: str, limit: int) -> list:
    """Pending jobs whose time has come, oldest first: message_id, psid_hash, mid."""
    return conn.execute(
        "SELECT message_id, psid_hash, mid"
        " FROM job_details"
        " WHERE status = 'pending'"
        " AND run_after <= ?"
        " ORDER BY run_after"
        " LIMIT ?",
        (now, limit),
    ).fetchall()


def job_message(conn: sqlite3.Connection, message_id: int) -> sqlite3.Row | None:
    """The psid_hash and mid of a job's message, with its attempts so far."""
    return conn.execute(
        "SELECT message_id, psid_hash, mid, attempts, status"
        " FROM job_details"
        " WHERE message_id = ?",
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


def set_ai_category(conn: sqlite3.Connection, expense_id: int, description: str, category: str) -> bool:
    """Set the AI's category on the row it was asked about while the row still has the description the
    model was given (an edit since changes it) and no category (a person's #category always wins)."""
    return conn.execute(
        "UPDATE expenses"
        " SET category = ?, category_source = 'ai'"
        " WHERE id = ?"
        " AND description = ?"
        " AND category IS NULL",
        (category, expense_id, description),
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
    jobs = due_jobs(conn, now, limit)
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


def settings_of(conn: sqlite3.Connection, psid_hash: str, defaults: Settings) -> Settings:
    """The person's settings; what they never set comes from `defaults` (the environment's)."""
    row = person_state(conn, psid_hash)
    return settings_from(row["currency"], row["timezone"], defaults)


def budgets_of(conn: sqlite3.Connection, psid_hash: str) -> list:
    """The person's monthly budgets: category ('' for everything), amount_minor, currency."""
    return conn.execute(
        "SELECT category, amount_minor, currency"
        " FROM budgets"
        " WHERE psid_hash = ?"
        " AND amount_minor IS NOT NULL"
        " ORDER BY category",
        (psid_hash,),
    ).fetchall()


def person_state(conn: sqlite3.Connection, psid_hash: str) -> sqlite3.Row:
    """currency, timezone, settings_at (when the later of the two was set) and erased_at of one person."""
    return conn.execute(
        "SELECT people.currency, people.timezone,"
        " max(coalesce(people.currency_at, ''), coalesce(people.timezone_at, '')) AS settings_at,"
        " (SELECT erased_at FROM erasures WHERE psid_hash = :psid_hash) AS erased_at"
        " FROM (SELECT :psid_hash AS psid_hash)"
        " LEFT JOIN people USING (psid_hash)",
        {"psid_hash": psid_hash},
    ).fetchone()


def settings_as_of(conn: sqlite3.Connection, psid_hash: str, at: str) -> sqlite3.Row:
    """The currency and timezone the person had set by `at` (None: never set by then)."""
    latest = ("SELECT value FROM settings_log WHERE psid_hash = :psid_hash AND setting = '{}' AND set_at <= :at"
              " ORDER BY set_at DESC LIMIT 1")
    return conn.execute(
        f"SELECT ({latest.format('currency')}) AS currency, ({latest.format('timezone')}) AS timezone",
        {"psid_hash": psid_hash, "at": at},
    ).fetchone()


def messages_with_expenses_after(conn: sqlite3.Connection, psid_hash: str, after: str) -> list:
    """The person's messages sent after `after` that have expenses, in the order sent."""
    return conn.execute(
        "SELECT id, kind, text, sent_at"
        " FROM messages_raw"
        " WHERE psid_hash = ?"
        " AND sent_at > ?"
        " AND EXISTS (SELECT 1 FROM expenses WHERE expenses.message_id = messages_raw.id)"
        " ORDER BY sent_at, id",
        (psid_hash, after),
    ).fetchall()


def reread_expense(conn: sqlite3.Connection, message_id: int, line: int, description: str, amount_minor: int,
                   currency: str, occurred_at: str) -> bool:
    """Give an expense still stored the amount, currency and time a new reading of its message found.

    Only the row that is the same item (its line and description): a line read differently in the
    new currency (rejected, or split otherwise) never moves an amount onto another item.
    """
    return conn.execute(
        "UPDATE expenses"
        " SET amount_minor = ?, currency = ?, occurred_at = ?, rate_source = NULL"  # converted again (background)
        " WHERE message_id = ?"
        " AND line = ?"
        " AND description = ?"
        " AND (amount_minor, currency, occurred_at) IS NOT (?, ?, ?)",
        (amount_minor, currency, occurred_at, message_id, line, description, amount_minor, currency, occurred_at),
    ).rowcount == 1


def insert_rejected_event(conn: sqlite3.Connection, message: Message, reason: str, rejected_at: str) -> None:
    """Keep an event that can never be stored, with the reason, once."""
    conn.execute(
        "INSERT OR IGNORE INTO rejected_events (psid_hash, mid, sent_at, event, reason, rejected_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (message.psid_hash, message.mid, times.iso_utc(message.sent_ms), message.event, reason, rejected_at),
    )


def rejected_events(conn: sqlite3.Connection, limit: int = 100) -> list:
    """The newest rejected events, with their reason."""
    return conn.execute(
        "SELECT id, psid_hash, mid, reason, rejected_at, event"
        " FROM rejected_events"
        " ORDER BY id DESC"
        " LIMIT ?",
        (limit,),
    ).fetchall()


def set_setting(conn: sqlite3.Connection, psid_hash: str, setting: str, value: str, sent_at: str, now: str) -> bool:
    """Set the person's own currency or timezone (`setting`) as of sent_at; tell whether it is the latest now.

    The change goes into settings_log either way; people holds it unless a message sent later set
    the same setting already.
    """
    column = {"currency": "currency", "timezone": "timezone"}[setting]
    conn.execute(
        "INSERT OR REPLACE INTO settings_log (psid_hash, setting, set_at, value) VALUES (?, ?, ?, ?)",
        (psid_hash, setting, sent_at, value),
    )
    return conn.execute(
        f"INSERT INTO people (psid_hash, {column}, {column}_at, updated_at)"
        " VALUES (?, ?, ?, ?)"
        " ON CONFLICT (psid_hash) DO UPDATE"
        f" SET {column} = excluded.{column}, {column}_at = excluded.{column}_at, updated_at = excluded.updated_at"
        f" WHERE coalesce({column}_at, '') <= excluded.{column}_at",
        (psid_hash, value, sent_at, now),
    ).rowcount == 1


def set_digest(conn: sqlite3.Connection, psid_hash: str, on: bool, sent_at: str, now: str) -> bool:
    """Turn the person's monthly digest on or off as of sent_at unless a message sent later set it; tell whether."""
    return conn.execute(
        "INSERT INTO people (psid_hash, digest, digest_at, updated_at)"
        " VALUES (?, ?, ?, ?)"
        " ON CONFLICT (psid_hash) DO UPDATE"
        " SET digest = excluded.digest, digest_at = excluded.digest_at, updated_at = excluded.updated_at"
        " WHERE coalesce(digest_at, '') <= excluded.digest_at",
        (psid_hash, int(on), sent_at, now),
    ).rowcount == 1


def digest_on(conn: sqlite3.Connection, psid_hash: str) -> bool:
    """Whether the person wants the monthly digest (on unless they sent 'digest off')."""
    return bool(conn.execute(
        "SELECT coalesce((SELECT digest FROM people WHERE psid_hash = ?), 1)", (psid_hash,)).fetchone()[0])


def mark_digest(conn: sqlite3.Connection, psid_hash: str, month: str, start: str, end: str, sent_at: str) -> bool:
    """Give the person the digest of `month` ('YYYY-MM', [start, end) in UTC) with the reply to a message
    sent at sent_at, when they want it, had expenses then and got none for that month yet; tell whether."""
    if not digest_on(conn, psid_hash):
        return False
    if conn.execute("SELECT 1 FROM digests WHERE psid_hash = ? AND month = ?", (psid_hash, month)).fetchone():
        return False
    if not category_totals(conn, psid_hash, start, end):  # what a summary of that month would count
        return False
    return conn.execute("INSERT OR IGNORE INTO digests (psid_hash, month, sent_at) VALUES (?, ?, ?)",
                        (psid_hash, month, sent_at)).rowcount == 1


def set_budget(conn: sqlite3.Connection, psid_hash: str, category: str, amount_minor: int | None,
               currency: str, sent_at: str) -> bool:
    """Set a category's monthly budget ('' for everything, None for off) unless a later message set it; tell whether."""
    return conn.execute(
        "INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (psid_hash, category) DO UPDATE"
        " SET amount_minor = excluded.amount_minor,"
        "     currency = excluded.currency,"
        "     updated_at = excluded.updated_at"
        " WHERE updated_at <= excluded.updated_at",
        (psid_hash, category, amount_minor, currency, sent_at),
    ).rowcount == 1


def turn_budget_off(conn: sqlite3.Connection, psid_hash: str, category: str, sent_at: str) -> bool:
    """Turn a category's budget off unless a later message set it; tell whether there was one to turn off.

    Kept as a row without an amount, so that a budget sent before but delivered after stays off.
    """
    was_on = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM budgets WHERE psid_hash = ? AND category = ?"
        " AND amount_minor IS NOT NULL AND updated_at <= ?)",
        (psid_hash, category, sent_at),
    ).fetchone()[0]
    set_budget(conn, psid_hash, category, None, "", sent_at)
    return bool(was_on)


def delete_latest_expenses(conn: sqlite3.Connection, psid_hash: str, count: int, sent_at: str) -> list:
    """Delete the person's `count` latest expenses sent at or before sent_at; return them, latest first.

    Latest by when their message was sent, not by when it was stored: an edit of an older message
    or a message that arrived late is not what `undo` takes back.
    """
    latest = conn.execute(
        "SELECT expenses.id"
        " FROM messages_raw"
        " JOIN expenses ON expenses.message_id = messages_raw.id"
        " WHERE messages_raw.psid_hash = ?"
        " AND messages_raw.sent_at <= ?"
        " AND expenses.rule_id IS NULL"  # an occurrence goes only with its rule (undo_rule)
        " ORDER BY messages_raw.sent_at DESC, messages_raw.id DESC, expenses.line DESC"
        " LIMIT ?",
        (psid_hash, sent_at, count),
    ).fetchall()
    order = {row[0]: n for n, row in enumerate(latest)}
    if not order:
        return []
    deleted = conn.execute(
        f"DELETE FROM expenses WHERE id IN ({', '.join('?' for _ in order)})"
        " RETURNING id, description, amount_minor, currency, occurred_at",
        tuple(order),
    ).fetchall()
    return sorted(deleted, key=lambda row: order[row["id"]])


# A description in lower case with the punctuation people put after a word as spaces, so that
# 'coffee,' and 'Coffee!' have the word 'coffee' ('iced-coffee' does not: '-' stays).
_WORDS_OF_DESCRIPTION = "lower(" + "".join("replace(" for _ in ",.;:!?") + "description" + "".join(
    f", '{mark}', ' ')" for mark in ",.;:!?") + ")"


def term_totals(conn: sqlite3.Connection, psid_hash: str, start: str | None, end: str | None,
                term: str) -> list:
    """Sum one person's expenses in [start, end) whose category is term or whose description has
    the word term or its plural with 's' (term: lower-case letters, digits and '-' only), per
    currency and converted currency, as category_totals does."""
    return conn.execute(
        "SELECT currency, NULL AS category, coalesce(converted_currency, '') AS converted_currency,"
        " sum(amount_minor) AS total_minor, count(*) AS count,"
        " sum(coalesce(converted_minor, 0)) AS converted_minor, count(converted_minor) AS converted_count"
        " FROM expenses"
        " WHERE psid_hash = ?"
        " AND occurred_at >= ?"
        " AND occurred_at < ?"
        " AND (category = ? OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || ? || ' %'"
        "      OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || ? || 's %')"
        " GROUP BY currency, converted_currency"
        " ORDER BY count(*) DESC, currency",
        (psid_hash, start or _EARLIEST, end or _LATEST, term, term, term),
    ).fetchall()


def own_rate_counts(conn: sqlite3.Connection, psid_hash: str, start: str | None, end: str | None, currency: str,
                    term: str | None = None) -> dict[str, int]:
    """How many of one person's expenses in [start, end) (with term: as term_totals finds them) are
    converted to `currency` at their own rate ('@ 0.0062'), per currency spent."""
    matches = ("" if term is None else
               " AND (category = :term OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || :term || ' %'"
               "      OR ' ' || " + _WORDS_OF_DESCRIPTION + " || ' ' LIKE '% ' || :term || 's %')")
    return dict(conn.execute(
        "SELECT currency, count(*) FROM expenses"
        " WHERE psid_hash = :who"
        " AND occurred_at >= :start"
        " AND occurred_at < :end"
        " AND rate_source = 'person'"
        " AND converted_currency = :target" + matches +
        " GROUP BY currency",
        {"who": psid_hash, "start": start or _EARLIEST, "end": end or _LATEST, "target": currency, "term": term},
    ).fetchall())


def message_categories(conn: sqlite3.Connection, message_id: int) -> list[str]:
    """The categories of one message's expenses (uncategorized ones left out)."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT category FROM expenses WHERE message_id = ? AND category IS NOT NULL",
        (message_id,),
    )]


def save_pending_replies(conn: sqlite3.Connection, replies: Iterable[tuple]) -> int:
    """Keep replies that could not be sent before a stop, (psid_hash, mid, recipient, message, sent_at,
    queued_at), but not one to a message its person erased since (the reply to the confirmation itself
    stays); return how many were kept."""
    return sum(conn.execute(
        "INSERT INTO pending_replies (psid_hash, mid, recipient, message, sent_at, queued_at)"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6"
        " WHERE NOT EXISTS (SELECT 1 FROM erasures WHERE psid_hash = ?1 AND erased_at > ?5)",
        reply,
    ).rowcount for reply in replies)


def take_pending_replies(conn: sqlite3.Connection) -> list:
    """Delete and return every kept reply, oldest first."""
    return sorted(conn.execute(
        "DELETE FROM pending_replies"
        " RETURNING id, psid_hash, mid, recipient, message, sent_at, queued_at"
    ).fetchall(), key=lambda row: row["id"])


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


# The period of the rule an expense is an occurrence of ('' for one a person wrote): CSV and report.
_RECURRING = " coalesce((SELECT period FROM recurring_rules WHERE recurring_rules.id = rule_id), '') AS recurring"

# One person's expenses in [start, end), with what the CSV and the report list show of each.
_EXPENSES_BETWEEN = (
    "SELECT id, occurred_at, amount_minor, currency, description, category, category_source, mid,"
    " converted_minor, converted_currency, rate, rate_day, rate_source," + _RECURRING +
    " FROM expenses"
    " WHERE psid_hash = ?"
    " AND occurred_at >= ?"
    " AND occurred_at < ?"
)


def latest_expenses_between(conn: sqlite3.Connection, psid_hash: str, start: str, end: str, limit: int) -> list:
    """One person's newest `limit` expenses in [start, end), newest first, with the columns of
    expenses_between (their conversions too)."""
    return conn.execute(_EXPENSES_BETWEEN + " ORDER BY occurred_at DESC, id DESC LIMIT ?",
                        (psid_hash, start, end, limit)).fetchall()


def expenses_between(conn: sqlite3.Connection, psid_hash: str, start: str, end: str) -> sqlite3.Cursor:
    """One person's expenses in [start, end), oldest first, with the columns of expenses_of: a cursor,
    for reading a long month in chunks (fetchmany)."""
    return conn.execute(_EXPENSES_BETWEEN + " ORDER BY occurred_at, id", (psid_hash, start, end))


# ---- conversions (docs/CURRENCIES.md) -------------------------------------------------------------

def expenses_to_convert(conn: sqlite3.Connection, after: tuple[str, int] | None, limit: int,
                        psid_hash: str | None = None) -> list[tuple[str, int]]:
    """(psid_hash, id) of expenses waiting for a rate or converted provisionally, after `after`, in
    order; only one person's with psid_hash."""
    return [tuple(row) for row in conn.execute(
        "SELECT psid_hash, id FROM expenses"
        " WHERE (rate_source IS NULL OR rate_source = 'ecb-provisional')"
        " AND (psid_hash, id) > (?, ?)"
        " AND (? IS NULL OR psid_hash = ?)"
        " ORDER BY psid_hash, id LIMIT ?",
        (*(after or (psid_hash or "", 0)), psid_hash, psid_hash, limit))]


def expenses_for_conversion(conn: sqlite3.Connection, ids: Iterable[int]) -> list:
    """What converting these expenses needs: amount, currency, time, and their person's own settings."""
    return conn.execute(
        "SELECT e.id, e.amount_minor, e.currency, e.occurred_at, e.rate_source, e.converted_currency,"
        " p.currency AS own_currency, p.timezone AS own_timezone"
        " FROM expenses AS e LEFT JOIN people AS p ON p.psid_hash = e.psid_hash"
        " WHERE e.id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(ids)),)).fetchall()


def conversions_of(conn: sqlite3.Connection, ids: Iterable[int]) -> list:
    """The conversion of each of these expenses, in the order of the ids (one message's, by line)."""
    ids = list(ids)
    rows = {row["id"]: row for row in conn.execute(
        "SELECT id, converted_minor, converted_currency, rate, rate_day, rate_source FROM expenses"
        " WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))}
    return [rows.get(i) for i in ids]


def set_conversion(conn: sqlite3.Connection, expense_id: int, conversion) -> int:
    """Store an expense's conversion (all NULL while it waits); 1 if that changed anything."""
    values = conversion.columns
    return conn.execute(
        "UPDATE expenses SET converted_minor = ?, converted_currency = ?, rate = ?, rate_day = ?, rate_source = ?"
        " WHERE id = ? AND (converted_minor, converted_currency, rate, rate_day, rate_source) IS NOT (?, ?, ?, ?, ?)",
        (*values, expense_id, *values)).rowcount


def convert_again(conn: sqlite3.Connection, psid_hash: str) -> int:
    """A person's currency or zone changed: every expense of theirs is converted again (in the background)."""
    return conn.execute("UPDATE expenses SET rate_source = NULL WHERE psid_hash = ? AND rate_source IS NOT NULL",
                        (psid_hash,)).rowcount


_DEFAULT_CURRENCY_PEOPLE = "psid_hash NOT IN (SELECT psid_hash FROM people WHERE currency IS NOT NULL)"


def default_currency_changed(conn: sqlite3.Connection, currency: str) -> bool:
    """Whether expenses of people without their own currency are converted to another one than `currency`."""
    return conn.execute(
        "SELECT 1 FROM expense_days WHERE converted_currency NOT IN ('', ?) AND " + _DEFAULT_CURRENCY_PEOPLE
        + " LIMIT 1", (currency,)).fetchone() is not None


def convert_again_by_default(conn: sqlite3.Connection, currency: str) -> int:
    """The bot's currency changed: the expenses of everyone in it are converted again (in the background)."""
    return conn.execute(
        "UPDATE expenses SET rate_source = NULL WHERE rate_source IS NOT NULL AND converted_currency IS NOT ? AND "
        + _DEFAULT_CURRENCY_PEOPLE, (currency,)).rowcount


def note_rate_refresh(conn: sqlite3.Connection, at: str, url: str, outcome: str, newest: str | None,
                      changed: int) -> None:
    conn.execute("INSERT INTO rate_refreshes (at, url, outcome, newest_day, changed) VALUES (?, ?, ?, ?, ?)",
                 (at, url, outcome, newest, changed))
    conn.execute("DELETE FROM rate_refreshes WHERE id <= (SELECT max(id) FROM rate_refreshes) - 100")


# ---- what `expensebot rates` shows ---------------------------------------------------------------

def rates_held(conn: sqlite3.Connection) -> sqlite3.Row:
    """The newest ECB day held (None when none), how many rates in all, how many currencies on that day."""
    return conn.execute(
        "SELECT newest_day, (SELECT count(*) FROM rates) AS rates,"
        " (SELECT count(*) FROM rates WHERE day = newest_day) AS currencies"
        " FROM (SELECT max(day) AS newest_day FROM rates)").fetchone()


def last_rate_refresh(conn: sqlite3.Connection) -> sqlite3.Row | None:
    """The latest fetch of the rates, whatever came of it; None when there was none."""
    return conn.execute(
        "SELECT at, url, outcome, newest_day, changed FROM rate_refreshes ORDER BY id DESC LIMIT 1").fetchone()


def last_rate_success_at(conn: sqlite3.Connection) -> str | None:
    """When the latest fetch that succeeded was (among the last 100 kept); None when none did."""
    row = conn.execute("SELECT at FROM rate_refreshes WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def conversion_counts(conn: sqlite3.Connection) -> dict:
    """Expenses waiting for a rate, converted at a provisional one, and never convertible."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE rate_source IS NULL) AS pending,"
        " count(*) FILTER (WHERE rate_source = 'ecb-provisional') AS provisional,"
        " count(*) FILTER (WHERE rate_source = 'none') AS not_convertible"
        " FROM expenses").fetchone()
    return dict(row)


# ---- recurring expenses (docs/CHAT.md, Recurring expenses) -------------------------------------------

_RULE_COLUMNS = ("id, psid_hash, message_id, mid, description, amount_minor, currency, category, category_source,"
                 " period, start_date, anchor_day, next_number, next_due, created_at, stopped_on")


def insert_rule(conn: sqlite3.Connection, psid_hash: str, message_id: int, mid: str, rule, category: str | None,
                category_source: str | None, next_due: str, created_at: str) -> int | None:
    """Store a recurring rule made by one message (none when that message made one already); its id."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO recurring_rules"
        " (psid_hash, message_id, mid, description, amount_minor, currency, category, category_source,"
        "  period, start_date, anchor_day, next_due, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (psid_hash, message_id, mid, rule.description, rule.amount_minor, rule.currency, category, category_source,
         rule.period, rule.start.isoformat(), rule.anchor_day, next_due, created_at))
    return cursor.lastrowid if cursor.rowcount == 1 else None


def rule_by_id(conn: sqlite3.Connection, rule_id: int) -> sqlite3.Row | None:
    return conn.execute(f"SELECT {_RULE_COLUMNS} FROM recurring_rules WHERE id = ?", (rule_id,)).fetchone()


def rule_of_message(conn: sqlite3.Connection, message_id: int) -> bool:
    """Whether a message made a recurring rule (an edit of it never replaces what the rule made)."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM recurring_rules WHERE message_id = ?)",
                        (message_id,)).fetchone()[0] == 1


def active_rules(conn: sqlite3.Connection, psid_hash: str) -> list:
    """A person's rules not stopped, oldest first: the numbers of `recurring` and `stop 2`."""
    return conn.execute(
        f"SELECT {_RULE_COLUMNS} FROM recurring_rules"
        " WHERE psid_hash = ?"
        " AND stopped_on IS NULL"
        " ORDER BY id",
        (psid_hash,)).fetchall()


def rules_due_by(conn: sqlite3.Connection, day: str) -> list[int]:
    """Ids of the rules with a due date on or before `day` still to make (a stopped rule's only up to its stop)."""
    return [row[0] for row in conn.execute(
        "SELECT id FROM recurring_rules"
        " WHERE next_due <= ?"
        " AND (stopped_on IS NULL OR next_due <= stopped_on)"
        " ORDER BY next_due, id",
        (day,))]


def insert_occurrence(conn: sqlite3.Connection, rule: sqlite3.Row, number: int, due_date: str, occurred_at: str,
                      conversion: tuple, created_at: str) -> int:
    """Make due date `number` of a rule an expense unless it is one already (UNIQUE (rule_id, due_date)):
    1 when made, 0 when it was there."""
    return conn.execute(
        "INSERT OR IGNORE INTO expenses"
        " (message_id, psid_hash, mid, line, amount_minor, currency, description, category, category_source,"
        "  occurred_at, converted_minor, converted_currency, rate, rate_day, rate_source, created_at,"
        "  rule_id, due_date)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rule["message_id"], rule["psid_hash"], rule["mid"], number, rule["amount_minor"], rule["currency"],
         rule["description"], rule["category"], rule["category_source"], occurred_at, *conversion, created_at,
         rule["id"], due_date)).rowcount


def advance_rule(conn: sqlite3.Connection, rule_id: int, next_number: int, next_due: str) -> None:
    conn.execute("UPDATE recurring_rules SET next_number = ?, next_due = ? WHERE id = ?",
                 (next_number, next_due, rule_id))


def stop_rule(conn: sqlite3.Connection, rule_id: int, stopped_on: str, stopped_at: str) -> None:
    """Stop a rule: due dates after stopped_on are never made; its expenses stay."""
    conn.execute("UPDATE recurring_rules SET stopped_on = ?, stopped_at = ? WHERE id = ? AND stopped_on IS NULL",
                 (stopped_on, stopped_at, rule_id))


def newest_undoable_rule(conn: sqlite3.Connection, psid_hash: str, sent_at: str) -> sqlite3.Row | None:
    """The person's active rule made by a message sent at or before sent_at, when no expense they wrote
    was sent after it: what `undo` takes back then."""
    return conn.execute(
        f"SELECT {_RULE_COLUMNS} FROM recurring_rules AS r"
        " WHERE psid_hash = :who"
        " AND stopped_on IS NULL"
        " AND created_at <= :at"
        " AND NOT EXISTS (SELECT 1 FROM messages_raw JOIN expenses ON expenses.message_id = messages_raw.id"
        "                 WHERE messages_raw.psid_hash = :who AND expenses.rule_id IS NULL"
        "                 AND (messages_raw.sent_at, messages_raw.id) > (r.created_at, r.message_id)"
        "                 AND messages_raw.sent_at <= :at)"
        " ORDER BY created_at DESC, id DESC"
        " LIMIT 1",
        {"who": psid_hash, "at": sent_at}).fetchone()


def delete_rule(conn: sqlite3.Connection, rule_id: int) -> int:
    """Delete a rule and every expense it made; return how many expenses."""
    expenses = conn.execute("DELETE FROM expenses WHERE rule_id = ?", (rule_id,)).rowcount
    conn.execute("DELETE FROM recurring_rules WHERE id = ?", (rule_id,))
    return expenses


def announce_occurrences(conn: sqlite3.Connection, psid_hash: str, message_id: int) -> list:
    """Mark the person's occurrences no reply has listed yet as listed by this message's reply; return
    them, oldest first, with their rule's period."""
    rows = conn.execute(
        "UPDATE expenses SET announced_by = ?"
        " WHERE psid_hash = ?"
        " AND rule_id IS NOT NULL"
        " AND announced_by IS NULL"
        " RETURNING id, description, amount_minor, currency, due_date,"
        " (SELECT period FROM recurring_rules WHERE recurring_rules.id = rule_id) AS period",
        (message_id, psid_hash)).fetchall()
    return sorted(rows, key=lambda row: (row["due_date"], row["id"]))


# ---- receipt drafts (receipts/: the photo read in the background; the person decides) -------------

def insert_draft(conn: sqlite3.Connection, psid_hash: str, message_id: int, mid: str, url: str | None,
                 status: str, reason: str | None, sent_at: str, now: str) -> int:
    return conn.execute(
        "INSERT INTO receipt_drafts (psid_hash, message_id, mid, status, url, reason, run_after, sent_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (psid_hash, message_id, mid, status, url, reason, now, sent_at),
    ).lastrowid


def drafts_waiting(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM receipt_drafts WHERE status = 'pending'").fetchone()[0]


def draft(conn: sqlite3.Connection, draft_id: int, psid_hash: str) -> sqlite3.Row | None:
    """One of a person's drafts (a button's id is input: another person's draft is none)."""
    return conn.execute("SELECT * FROM receipt_drafts WHERE id = ? AND psid_hash = ?", (draft_id, psid_hash)).fetchone()


def claim_draft(conn: sqlite3.Connection, now: str, retry_at: str) -> sqlite3.Row | None:
    """Take the oldest draft waiting to be read, and put it back for `retry_at` (a crash while reading it
    leaves it to be tried again then)."""
    return conn.execute(
        "UPDATE receipt_drafts SET attempts = attempts + 1, run_after = ?"
        " WHERE id = (SELECT id FROM receipt_drafts WHERE status = 'pending' AND run_after <= ? ORDER BY run_after, id"
        "             LIMIT 1)"
        " RETURNING *",
        (retry_at, now),
    ).fetchone()


def postpone_draft(conn: sqlite3.Connection, draft_id: int, run_after: str, reason: str) -> None:
    conn.execute("UPDATE receipt_drafts SET run_after = ?, reason = ? WHERE id = ? AND status = 'pending'",
                 (run_after, reason, draft_id))


def propose_draft(conn: sqlite3.Connection, draft_id: int, fields, text: str, now: str, told_at: str | None) -> bool:
    """Keep what was read (the photo's URL forgotten); False when the draft is gone (erased) or decided."""
    return conn.execute(
        "UPDATE receipt_drafts SET status = 'proposed', url = NULL, reason = NULL, ocr_text = ?, merchant = ?,"
        " amount_minor = ?, currency = ?, receipt_date = ?, read_at = ?, told_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (text, fields.merchant, fields.total_minor, fields.currency,
         fields.date.isoformat() if fields.date else None, now, told_at, draft_id),
    ).rowcount == 1


def draft_unreadable(conn: sqlite3.Connection, draft_id: int, reason: str, now: str, told_at: str | None) -> bool:
    return conn.execute(
        "UPDATE receipt_drafts SET status = 'unreadable', url = NULL, reason = ?, read_at = ?, told_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (reason, now, told_at, draft_id),
    ).rowcount == 1


def tell_drafts(conn: sqlite3.Connection, psid_hash: str, told_at: str) -> list:
    """The person's drafts read but never told (a restart forgot whom to answer), marked told now: the
    reply to their message carries them."""
    return conn.execute(
        "UPDATE receipt_drafts SET told_at = ?"
        " WHERE psid_hash = ? AND status IN ('proposed', 'unreadable') AND read_at IS NOT NULL AND told_at IS NULL"
        " RETURNING *",
        (told_at, psid_hash),
    ).fetchall()


def decide_draft(conn: sqlite3.Connection, draft_id: int, status: str, decided_at: str,
                 expense_id: int | None = None) -> None:
    """Save or drop a proposed draft; the text read goes with the decision."""
    conn.execute(
        "UPDATE receipt_drafts SET status = ?, expense_id = ?, decided_at = ?, ocr_text = NULL"
        " WHERE id = ? AND status = 'proposed'",
        (status, expense_id, decided_at, draft_id),
    )


def drop_stale_drafts(conn: sqlite3.Connection, sent_before: str, now: str) -> int:
    """Drop drafts nobody answered: proposed, or never read, and sent before `sent_before`."""
    return conn.execute(
        "UPDATE receipt_drafts SET status = 'dropped', url = NULL, ocr_text = NULL, decided_at = ?,"
        " reason = coalesce(reason, 'not answered in 7 days')"
        " WHERE status IN ('pending', 'proposed') AND sent_at < ?",
        (now, sent_before),
    ).rowcount
