"""Write first: each delivery's messages committed in one transaction before the 200, or spooled.

Each message is read, stored in a savepoint of its own and, once the transaction has committed,
handed on (docs/ARCHITECTURE.md). When the database cannot take the write now the whole delivery is
spooled, and `replay` writes it later through the same `write`, which is idempotent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from expensebot import rates, store, times
from expensebot.chat import meaning, periods, rules
from expensebot.chat.meaning import Reading
from expensebot.db import Database
from expensebot.errors import DatabaseUnavailable, EventRejected, classify, describe
from expensebot.events import Message
from expensebot.ingest import effects
from expensebot.ingest.effects import Outcome
from expensebot.ingest.spool import Spool, SpoolError
from expensebot.journal import Journal
from expensebot.logs import Incident, log_event
from expensebot.periodic import Periodic
from expensebot.receipts import download
from expensebot.settings import Settings, settings_from

logger = logging.getLogger(__name__)
# Expenses converted again in the transaction of a new currency or zone; a person with more has the
# rest converted by the background within seconds (each waits, counted as pending, until then).
CONVERT_AT_ONCE = 1000
# Replies that never carry the monthly digest: the question before an erasure, and its answers.
NO_DIGEST = ("delete_request", "delete_confirm", "delete_cancel")
ANNOUNCED = 3  # recurring expenses a reply lists one by one ("and N more" after them)


@dataclasses.dataclass(frozen=True)
class Saved:
    """A message committed by this write (new, or an edit applied), with what it produced."""

    message: Message
    message_id: int  # also the id of its enrichment job
    expense_ids: tuple[int, ...]
    reading: Reading
    outcome: Outcome = effects.NOTHING
    job: str | None = None  # the status its enrichment job was given: pending, or skipped at once
    digest: str | None = None  # 'YYYY-MM': its reply carries that month's digest (given once, with this message)
    # Recurring expenses made since the person's last message, which this message's reply lists (each
    # is marked as listed by it in its own transaction, so it is listed once): the first few, and how many.
    added: tuple[dict, ...] = ()
    added_count: int = 0
    # Receipt drafts read while the bot did not know whom to answer (a restart): this reply tells them.
    receipts: tuple[dict, ...] = ()


@dataclasses.dataclass(frozen=True)
class Person:
    """What storing a sender's messages depends on: their settings, and when they last erased their data."""

    settings: Settings
    settings_at: str  # ISO-8601 UTC: when the later of their settings was set ('' for never)
    erased_at: str | None  # ISO-8601 UTC; events sent up to then are not stored


class Ingest:
    def __init__(self, db: Database, spool: Spool, defaults: Settings, *,
                 after_commit: Callable[[list[Saved]], None] | None = None, ai_enabled: bool = False,
                 replay_interval: float = 0.5, now: Callable[[], dt.datetime] = times.utc_now,
                 receipt_hosts: tuple[str, ...] | None = None):
        self.db = db
        self.spool = spool
        self.defaults = defaults  # what a person who never set their own currency or zone gets
        self.after_commit = after_commit or (lambda saved: None)
        self.ai_enabled = ai_enabled
        self.now = now  # for conversions: whether today's rate may stand in provisionally
        self.receipt_hosts = receipt_hosts  # where a receipt photo may come from; None: receipts not set up
        self.journal = Journal(db.path)
        # Spool files written into the database that could not be removed (an immutable folder).
        self._done: set[Path] = set()
        # True while the spool holds events: new ones queue behind them, keeping arrival order.
        self.spooling = bool(spool.files())
        self.replayer = Periodic("spool-replayer", replay_interval, self.replay)
        self.database_down = Incident(logger, "database_unavailable", "database_available")
        self.spool_down = Incident(logger, "spool_failed", "spool_recovered", level=logging.ERROR)
        self.last_failure: str | None = None  # why the last delivery was answered 503; None once one was taken

    def accept(self, messages: list[Message]) -> None:
        """Make messages durable: committed, or else spooled. Raise SpoolError if neither."""
        if not messages:
            return
        try:
            self._accept(messages)
        except SpoolError as exc:
            self.last_failure = str(exc)
            raise
        self.last_failure = None

    def _accept(self, messages: list[Message]) -> None:
        database_problem = "the spool is draining"
        if not self.spooling:
            try:
                self.write(messages)
                self.database_down.ended()
                return
            except DatabaseUnavailable as exc:
                self.database_down.happened(str(exc))
                database_problem = str(exc)
        try:
            self.spool.append(messages)
        except SpoolError as exc:
            self.spool_down.happened(str(exc))
            if not self.spooling:
                raise SpoolError(f"{exc}; database: {database_problem}") from exc
            # The spool is waiting to drain but cannot take this delivery: the database may.
            try:
                self.write(messages)
                return
            except DatabaseUnavailable as unavailable:
                raise SpoolError(f"{exc}; database: {unavailable}") from unavailable
        self.spool_down.ended()
        self.spooling = True
        for message in messages:
            log_event(logger, "event_spooled", psid_hash=message.psid_hash, mid=message.mid)

    def write(self, messages: list[Message]) -> list[Saved]:
        """Commit messages in one transaction, in the order they were sent; then hand them on.

        Raises DatabaseUnavailable when the database cannot take them now (nothing is kept then).
        """
        ordered = sorted(messages, key=lambda message: message.sent_ms)  # stable: ties keep body order
        saved, rejected, erased, duplicates = [], [], [], []
        with self.db.transaction() as conn:
            for message in ordered:
                person = self._person(conn, message.psid_hash)  # as the messages before this one left them
                if person.erased_at is not None and times.iso_utc(message.sent_ms) <= person.erased_at:
                    erased.append(message)  # erasure is final: nothing sent before it is stored again
                    continue
                try:
                    with _savepoint(conn):
                        record = self._store(conn, message, person)
                except Exception as exc:
                    problem = classify(exc)
                    if isinstance(problem, DatabaseUnavailable):
                        raise problem from exc
                    store.insert_rejected_event(conn, message, str(problem), times.iso_utc(times.now_ms()))
                    rejected.append((message, str(problem)))
                    continue
                if record is None:
                    duplicates.append(message)
                    continue
                saved.append(record)
                if record.outcome.erased:
                    self._journal_erasure(message)
        self._hand_on(saved, rejected, erased, duplicates)
        return saved

    def replay(self) -> int:
        """Write spooled files into the database, oldest first; return how many messages were new.

        Raises DatabaseUnavailable (try again later) or SpoolError (the folder can't be listed).
        A file that fails for any other reason is set aside and replay goes on with the next.
        """
        new = 0
        for path in self.spool.files():
            if path in self._done:
                continue
            try:
                messages = self.spool.load(path)
                new += len(self.write(messages))
            except DatabaseUnavailable:
                raise
            except Exception as exc:  # can never be written: unreadable, or a bug handling it
                self._set_aside(path, exc)
                continue
            self.database_down.ended()
            self._forget(path)
            log_event(logger, "spool_replayed", file=path.name, messages=len(messages))
        self.spooling = any(path not in self._done for path in self.spool.files())
        return new

    def health_problem(self, stale_after: float) -> str | None:
        """Say why events may not be durable now (the last delivery refused, the spool stuck); None if fine."""
        if self.last_failure is not None:
            return f"the last delivery was stored nowhere: {self.last_failure}"
        try:
            age = self.spool.oldest_age()
        except SpoolError as exc:
            return str(exc)
        since = self.replayer.failing.since
        if since is not None and time.monotonic() - since > stale_after:
            return f"spool replay failing for {time.monotonic() - since:.0f} s"
        if age is not None and age > stale_after:
            return f"spool not drained for {age:.0f} s"
        return None

    def read(self, message: Message, settings: Settings, sent_ms: int | None = None) -> Reading:
        """Read a message's text as a command or as expenses, on its own date (an edit: the original's);
        a photo without text is a receipt to read."""
        reading = meaning.read(message.text, settings, message.sent_ms if sent_ms is None else sent_ms,
                               button=message.kind in ("quick_reply", "postback"))
        if message.kind == "message" and not message.text and download.photo_url(message.event):
            return dataclasses.replace(reading, command=meaning.Command("receipt_photo"))
        return reading

    def _person(self, conn: sqlite3.Connection, psid_hash: str) -> Person:
        row = store.person_state(conn, psid_hash)
        return Person(settings_from(row["currency"], row["timezone"], self.defaults), row["settings_at"],
                      row["erased_at"])

    def _settings_at(self, conn: sqlite3.Connection, psid_hash: str, sent_at: str,
                     person: Person | None = None) -> Settings:
        """The person's settings as they stood when a message was sent; `person` (now) answers if none was set since."""
        if person is not None and sent_at >= person.settings_at:
            return person.settings
        row = store.settings_as_of(conn, psid_hash, sent_at)
        return settings_from(row["currency"], row["timezone"], self.defaults)

    def _store(self, conn: sqlite3.Connection, message: Message, person: Person) -> Saved | None:
        """Store one message with its expenses, job and command's effect; None when already stored."""
        if message.invalid:  # decided at the edge (webhook.py)
            raise EventRejected(message.invalid)
        received_at, sent_at = times.iso_utc(message.received_ms), times.iso_utc(message.sent_ms)
        if message.kind == "edit":
            edited = store.apply_edit(conn, message)
            if edited is not None:
                return self._edit(conn, message, person, edited)
        message_id = store.insert_message(conn, message, received_at, sent_at)
        if message_id is None:
            return None
        reading = self.read(message, self._settings_at(conn, message.psid_hash, sent_at, person))
        saved = self._save_expenses(conn, message, message_id, reading, message.sent_ms, person.settings)
        if message.kind == "edit" and reading.command is not None:  # an edit never runs a command
            return dataclasses.replace(saved, outcome=Outcome(not_carried_out=True))
        outcome = effects.run(conn, message, reading.command, reading, person.settings, self.now(), message_id,
                              self.receipt_hosts)
        if reading.changes_settings or outcome.erased:
            outcome = dataclasses.replace(outcome, reread=self._read_again_after(conn, message.psid_hash, sent_at))
        if reading.changes_settings:  # converted again to the new currency: most people's at once, here
            waiting = store.expenses_to_convert(conn, None, CONVERT_AT_ONCE, psid_hash=message.psid_hash)
            rates.convert_expenses(conn, [i for _, i in waiting], self.defaults, self.now())
        added = store.announce_occurrences(conn, message.psid_hash, message_id)
        receipts = store.tell_drafts(conn, message.psid_hash, received_at)
        return dataclasses.replace(saved, outcome=outcome, digest=_digest(conn, message, reading),
                                   added=tuple(dict(row) for row in added[:ANNOUNCED]), added_count=len(added),
                                   receipts=tuple(dict(row) for row in receipts))

    def _edit(self, conn: sqlite3.Connection, message: Message, person: Person, edited: sqlite3.Row) -> Saved:
        """Read an edited message again, on the original's day, and replace its expenses."""
        message_id, sent_ms = edited["id"], times.ms_from_iso(edited["sent_at"])
        reading = self.read(message, self._settings_at(conn, message.psid_hash, edited["sent_at"], person), sent_ms)
        if reading.command is not None or store.rule_of_message(conn, message_id):
            # commands run once, when sent: the rows stay (a recurring rule, and what it made, too)
            return Saved(message, message_id, (), reading, Outcome(not_carried_out=True))
        store.delete_expenses_of_message(conn, message_id)
        return self._save_expenses(conn, message, message_id, reading, sent_ms, person.settings)

    def _save_expenses(self, conn: sqlite3.Connection, message: Message, message_id: int, reading: Reading,
                       sent_ms: int, own: Settings) -> Saved:
        """Insert a message's expenses and queue its enrichment job: pending when the model has an
        expense to categorise, else skipped at once (AI off, or nothing for it)."""
        received_at, now = times.iso_utc(message.received_ms), self.now()
        rows = _expense_rows(reading, sent_ms)
        # Converted to the person's currency now: at their own rate when they wrote one, else from the
        # rates table (what cannot be yet waits).
        converted = [_conversion(conn, expense, row, reading, own, now).columns
                     for expense, row in zip(reading.expenses, rows)]
        expense_ids = store.insert_expenses(conn, message_id, message.psid_hash, message.mid,
                                            [(*row, *conversion) for row, conversion in zip(rows, converted)],
                                            received_at)
        uncategorised = any(category is None for _, _, _, _, category, *_ in rows)
        job = "pending" if self.ai_enabled and uncategorised else "skipped"
        store.queue_job(conn, message_id, received_at, job)
        return Saved(message, message_id, tuple(expense_ids), reading, job=job)

    def _read_again_after(self, conn: sqlite3.Connection, psid_hash: str, sent_at: str) -> int:
        """Read again what the person sent after a setting or an erasure that arrived late, as if it had come in time.

        Each message with its settings as they stood when it was sent; each expense still stored
        keeps its row and gets the new reading's amount, currency and time. Return how many changed.
        """
        changed = 0
        for row in store.messages_with_expenses_after(conn, psid_hash, sent_at):
            message = Message(psid_hash, "", row["kind"], row["text"], times.ms_from_iso(row["sent_at"]), 0, "")
            reading = self.read(message, self._settings_at(conn, psid_hash, row["sent_at"]))
            for line, amount, currency, description, *_, occurred_at in _expense_rows(reading, message.sent_ms):
                changed += store.reread_expense(conn, row["id"], line, description, amount, currency, occurred_at)
        return changed

    def _hand_on(self, saved: list[Saved], rejected: list[tuple[Message, str]], erased: list[Message],
                 duplicates: list[Message]) -> None:
        """Log what the committed write did, then give the saved messages to replies and enrichment."""
        for record in saved:
            message = record.message
            log_event(logger, "event_logged", psid_hash=message.psid_hash, mid=message.mid,
                      expense_id=record.expense_ids[0] if record.expense_ids else None,
                      expenses=len(record.expense_ids), kind=message.kind)
            if record.job == "skipped":
                log_event(logger, "ai_enriched", psid_hash=message.psid_hash, mid=message.mid, status="skipped")
        for message, reason in rejected:
            log_event(logger, "event_rejected", level=logging.WARNING, psid_hash=message.psid_hash,
                      mid=message.mid, reason=reason)
        for message in erased:
            log_event(logger, "event_erased", psid_hash=message.psid_hash, mid=message.mid)
        for message in duplicates:
            log_event(logger, "event_duplicate", psid_hash=message.psid_hash, mid=message.mid)
        try:
            self.after_commit(saved)
        except Exception:  # the write is committed: nothing after it may turn it into an error
            log_event(logger, "after_commit_failed", level=logging.ERROR, traceback=traceback.format_exc())

    def _journal_erasure(self, message: Message) -> None:
        """Note the erasure in the journal before it commits, so that no restored backup undoes it."""
        try:
            self.journal.append(message.psid_hash, times.iso_utc(message.sent_ms))
        except OSError as exc:  # the database still records it; a restore then needs the live file
            log_event(logger, "erasure_journal_failed", level=logging.ERROR, psid_hash=message.psid_hash,
                      path=str(self.journal.path), reason=exc.strerror or str(exc))

    def _forget(self, path: Path) -> None:
        try:
            self.spool.remove(path)
        except OSError as exc:
            self._done.add(path)
            log_event(logger, "spool_file_kept", level=logging.WARNING, file=path.name,
                      reason=f"written to the database but not removed: {exc.strerror or exc}")

    def _set_aside(self, path: Path, exc: Exception) -> None:
        try:
            name = self.spool.quarantine(path).name
        except OSError as rename_error:
            self._done.add(path)
            name = f"{path.name} (left in place: {rename_error.strerror or rename_error})"
        log_event(logger, "spool_file_rejected", level=logging.ERROR, file=name, reason=describe(exc))


def _digest(conn: sqlite3.Connection, message: Message, reading: Reading) -> str | None:
    """The month whose digest the reply to this new message carries, if any: the month before the
    message's own (in the person's zone when it was sent), given with the first message of the month
    stored while the person had expenses in it and wants digests (docs/CHAT.md, Monthly digest)."""
    if reading.command is not None and reading.command.name in NO_DIGEST:
        return None
    try:
        last = periods.previous("month", reading.today)
        start, end = last.bounds(reading.settings.zone)
    except (OverflowError, ValueError):  # a message from the first month of year 1
        return None
    given = store.mark_digest(conn, message.psid_hash, last.key, start, end, times.iso_utc(message.sent_ms))
    return last.key if given else None


def _expense_rows(reading: Reading, sent_ms: int) -> list[tuple]:
    """Rows for store.insert_expenses: (line, amount, currency, text, category, source, occurred_at)."""
    return [
        (position, e.amount_minor, e.currency, e.description, *_category(e), _occurred_at(e.date, reading, sent_ms))
        for position, e in enumerate(reading.expenses)
    ]


def _conversion(conn: sqlite3.Connection, expense, row: tuple, reading: Reading, own: Settings,
                now: dt.datetime) -> rates.Conversion:
    """An expense's conversion to the person's currency, from its row for store.insert_expenses."""
    _, amount, currency, *_, occurred_at = row
    # A rate is written in the currency the message was read in: one set since makes it no longer apply.
    if expense.rate is not None and reading.settings.currency == own.currency:
        local_day = times.local_date(times.ms_from_iso(occurred_at), own.zone)
        return rates.by_person(amount, currency, own.currency, expense.rate, local_day)
    return rates.convert_for(conn, amount, currency, occurred_at, own, now)


def _occurred_at(date: dt.date, reading: Reading, sent_ms: int) -> str:
    if date == reading.today:
        return times.iso_utc(sent_ms)
    # A written date: noon there keeps the day the same whatever the offset to UTC.
    return times.iso_from_datetime(dt.datetime.combine(date, dt.time(12), reading.settings.zone))


def _category(expense) -> tuple[str | None, str | None]:
    """The person's #category, else a keyword rule's, else none yet (the AI may add one later)."""
    if expense.category:
        return expense.category, "user"
    category = rules.categorize(expense.description)
    return (category, "rule") if category else (None, None)


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """Undo one message's writes if storing it fails, keeping the rest of the transaction."""
    conn.execute("SAVEPOINT message")
    try:
        yield
    except BaseException as exc:
        try:
            conn.execute("ROLLBACK TO message")
            conn.execute("RELEASE message")
        except sqlite3.Error as undo_error:
            # SQLite rolled the whole transaction back itself (an I/O error, a full disk).
            raise DatabaseUnavailable(f"{describe(exc)}; then {describe(undo_error)}") from exc
        raise
    conn.execute("RELEASE message")
