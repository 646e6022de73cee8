"""Write first: commit each message, its expenses and its job in one transaction, or spool them.

`accept` is what the webhook calls before answering 200. When the database cannot take the
write in time the messages go to the spool, and `replay_spool` (on a background thread, see
service.py) writes them later through the same `write`, which is idempotent (INSERT OR IGNORE
on psid_hash, mid).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping

from expensebot import commands, parser, reading, rules, store, summary, times
from expensebot.db import Database, DatabaseUnavailable
from expensebot.logs import log_event
from expensebot.reading import Reading
from expensebot.settings import Settings, settings_of
from expensebot.spool import Spool
from expensebot.webhook import Message

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Saved:
    """A message committed by this call (new, or an edit applied), with what it produced."""

    message: Message
    message_id: int  # also the id of its job
    expense_ids: tuple[int, ...]
    reading: Reading
    outcome: dict | None = None  # what a command did: the expense undone, the rows erased
    day_totals: tuple[tuple[str, int], ...] = ()  # (currency, total_minor) of its day, read after the commit


AfterCommit = Callable[[list[Saved], Mapping[str, str]], None]


class Ingest:
    def __init__(self, db: Database, spool: Spool, *, zone: dt.tzinfo, currency: str,
                 after_commit: AfterCommit | None = None):
        self.db = db
        self.spool = spool
        self.zone = zone
        self.currency = currency
        # What a person who never set their own currency or zone gets (the environment's).
        self.defaults = Settings(currency, getattr(zone, "key", None) or "UTC")
        self.after_commit = after_commit or (lambda saved, recipients: None)
        # Set while the spool holds events: new ones queue behind them, keeping arrival order.
        self.spooling = threading.Event()
        if spool.files():
            self.spooling.set()
        # PSIDs of spooled messages, in memory only, so their replies can follow the replay.
        self._spooled_recipients: dict[str, str] = {}

    def accept(self, messages: list[Message], recipients: Mapping[str, str] | None = None) -> None:
        """Make messages durable: committed, or else spooled. Raise SpoolError if neither."""
        if not messages:
            return
        recipients = recipients or {}
        if not self.spooling.is_set():
            try:
                self.write(messages, recipients)
                return
            except DatabaseUnavailable as exc:
                log_event(logger, "database_unavailable", level=logging.WARNING, reason=str(exc))
        self.spool.append(messages)
        self.spooling.set()
        self._spooled_recipients.update(recipients)
        for message in messages:
            log_event(logger, "event_spooled", psid_hash=message.psid_hash, mid=message.mid)

    def write(self, messages: list[Message], recipients: Mapping[str, str]) -> list[Saved]:
        """Commit messages in one transaction, log each, then hand them on; raise DatabaseUnavailable."""
        deadline = time.monotonic() + self.db.write_timeout
        with self.db.connection() as conn:
            saved = self.save(conn, messages, deadline)
        for record in saved:
            message = record.message
            log_event(logger, "event_logged", psid_hash=message.psid_hash, mid=message.mid,
                      expense_id=record.expense_ids[0] if record.expense_ids else None,
                      expenses=len(record.expense_ids), kind=message.kind)
        if len(saved) < len(messages):
            known = {(r.message.psid_hash, r.message.mid) for r in saved}
            for message in messages:
                if (message.psid_hash, message.mid) not in known:
                    log_event(logger, "event_duplicate", psid_hash=message.psid_hash, mid=message.mid)
        try:
            self.after_commit(saved, recipients)
        except Exception:  # the write is committed: nothing after it may turn it into an error
            logger.exception("handing committed messages on failed")
        return saved

    def save(self, conn: sqlite3.Connection, messages: list[Message], deadline: float) -> list[Saved]:
        """Commit messages on conn in one transaction; return those new (or edited), with day totals.

        The texts are read before the write lock is taken, each with its sender's settings as
        they stand after the messages before it (a 'currency EUR' then 'lunch 12' is in EUR);
        an edit is read once, inside, on its original message's date.
        """
        people = {m.psid_hash: settings_of(conn, m.psid_hash, self.defaults) for m in messages}
        readings = []
        for message in messages:
            settings = people[message.psid_hash]
            read = None if message.kind == "edit" else reading.read(message.text, settings, message.sent_ms)
            people[message.psid_hash] = read.settings_after if read else settings
            readings.append((message, read or settings))
        saved = []
        with self.db.transaction(conn, deadline, prepare=store.INGEST_STATEMENTS):
            # A redelivered 'currency EUR' is not stored again, so its setting did not change: the
            # messages after it are read again with the settings that really hold.
            current = {m.psid_hash: settings_of(conn, m.psid_hash, self.defaults) for m in messages}
            for message, read in readings:
                settings = current[message.psid_hash]
                if isinstance(read, Settings):
                    read = settings
                elif read.settings != settings:
                    read = reading.read(message.text, settings, message.sent_ms)
                record = self._save(conn, message, read)
                if record is not None:
                    saved.append(record)
                    carried_out = not (record.outcome or {}).get("edit_not_carried_out")
                    current[message.psid_hash] = record.reading.settings_after if carried_out else settings
        return self._with_day_totals(conn, saved)

    def replay_spool(self) -> int:
        """Write spooled files into the database, oldest first; return how many messages were new."""
        new = 0
        for path in self.spool.files():
            try:
                messages = self.spool.load(path)
                new += len(self.write(messages, self._spooled_recipients))
            except DatabaseUnavailable as exc:
                if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                    return new
                self._set_aside(path, exc)
                continue
            except (ValueError, TypeError, OSError) as exc:
                self._set_aside(path, exc)
                continue
            self.spool.remove(path)
            log_event(logger, "spool_replayed", file=path.name, messages=len(messages))
        if not self.spool.files():
            self.spooling.clear()
            self._spooled_recipients.clear()
        return new

    def read(self, message: Message, sent_ms: int, settings: Settings | None = None) -> Reading:
        """Read a message's text as a command or as expenses, on the message's own date."""
        return reading.read(message.text, settings or self.defaults, sent_ms)

    def _set_aside(self, path, exc: Exception) -> None:
        bad = self.spool.quarantine(path)
        log_event(logger, "spool_file_rejected", level=logging.ERROR, file=bad.name,
                  reason=f"{type(exc).__name__}: {exc}")

    def _save(self, conn: sqlite3.Connection, message: Message, reading: Reading | Settings) -> Saved | None:
        """Store one message with its expenses and job, and do its command; None when already stored.

        An edit comes with its sender's settings instead of a reading: it is read here, once.
        """
        received_at = times.iso_utc(message.received_ms)
        if message.kind == "edit":
            settings = reading
            edited = store.apply_edit(conn, message)
            if edited is None:  # an edit whose original we never saw: stored as a message of its own
                reading = self.read(message, message.sent_ms, settings)
            else:
                message_id = edited["id"]
                # The expense keeps the day of the original message, not of the edit.
                sent_ms = times.ms_from_iso(edited["sent_at"])
                reading = self.read(message, sent_ms, settings)
                if reading.command is not None:  # an edited command is not carried out: rows stay
                    return Saved(message, message_id, (), reading, {"edit_not_carried_out": True})
                store.delete_expenses_of_message(conn, message_id)
                expense_ids = store.insert_expenses(
                    conn, message_id, message, self._expense_rows(reading, sent_ms), received_at)
                store.requeue_job(conn, message_id, received_at)
                return Saved(message, message_id, tuple(expense_ids), reading)
        message_id = store.insert_message(conn, message, received_at, times.iso_utc(message.sent_ms))
        if message_id is None:
            return None
        expense_ids = store.insert_expenses(
            conn, message_id, message, self._expense_rows(reading, message.sent_ms), received_at)
        store.insert_job(conn, message_id, received_at)
        outcome = commands.run(conn, message, reading.command)
        return Saved(message, message_id, tuple(expense_ids), reading, outcome)

    def _with_day_totals(self, conn: sqlite3.Connection, saved: list[Saved]) -> list[Saved]:
        """Add each expense message's day total for its reply, read right after the commit.

        On the write's own connection, already open, but outside the write lock; once per
        person and day in a batch. The write is committed: a failed read only leaves the
        total out of the replies.
        """
        totals: dict[tuple[dt.date, str], tuple] = {}
        try:
            for record in saved:
                key = (record.reading.today, record.message.psid_hash)
                if record.reading.expenses and key not in totals:
                    bounds = summary.day_bounds(record.reading.today, record.reading.settings.zone)
                    totals[key] = tuple(store.currency_totals(conn, record.message.psid_hash, *bounds))
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: the day after 9999-12-31
            log_event(logger, "day_totals_failed", level=logging.WARNING, reason=str(exc))
            return saved
        return [dataclasses.replace(r, day_totals=totals[r.reading.today, r.message.psid_hash])
                if r.reading.expenses else r for r in saved]

    def _expense_rows(self, reading: Reading, sent_ms: int) -> list[tuple]:
        """Rows for store.insert_expenses: (line, amount, currency, text, category, source, occurred_at)."""
        return [
            (position, e.amount_minor, e.currency, e.description, *_category(e),
             _occurred_at(e.date, reading, sent_ms))
            for position, e in enumerate(reading.expenses)
        ]


def _occurred_at(date: dt.date, reading: Reading, sent_ms: int) -> str:
    if date == reading.today:
        return times.iso_utc(sent_ms)
    # A written date: noon there keeps the day the same whatever the offset to UTC.
    return times.iso_from_datetime(dt.datetime.combine(date, dt.time(12), reading.settings.zone))


def _category(expense: parser.ParsedExpense) -> tuple[str | None, str | None]:
    """The person's #category, else a keyword rule's, else none yet (the AI may add one later)."""
    if expense.category:
        return expense.category, "user"
    category = rules.categorize(expense.description)
    return (category, "rule") if category else (None, None)

