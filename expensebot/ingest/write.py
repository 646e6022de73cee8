"""Write first: commit each message, its expenses and its job in one transaction, or spool them.

`accept` is what the webhook calls before answering 200. The structure of a write: one
transaction per delivery; in it, each sender's settings and erasure are read once, then every
event is read (pure; an edit once its original is found), then each is stored, read again first
if a message before it changed its sender's settings. An event that can never be stored
(errors.EventRejected) is kept in rejected_events and the others are committed: when its writes
fail, the delivery is written again with each event in a savepoint of its own, so only its
writes are undone. When the database cannot take the write now (errors.DatabaseUnavailable)
the whole delivery goes to the spool, and `replay_spool` (on a background thread, see
service.py) writes it later through the same `write`, which is idempotent (INSERT OR IGNORE on
psid_hash, mid).

Ingest sees only psid_hash: the PSID to answer, and what a reply shows beyond the reading (the
day's total, budget use), are the reply side's (outbox.Addresses, replies.Replier); ingest lends
it the committing connection, still open, through `after_commit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from expensebot import logs, store, times
from expensebot.chat import meaning, parser, rules
from expensebot.chat.meaning import Reading
from expensebot.db import Database
from expensebot.errors import DatabaseUnavailable, EventRejected, classify, describe
from expensebot.ingest import effects
from expensebot.ingest.spool import Spool, SpoolError
from expensebot.ingest.webhook import Message
from expensebot.logs import Incident, log_event
from expensebot.settings import Settings, settings_from

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Saved:
    """A message committed by this call (new, or an edit applied), with what it produced."""

    message: Message
    message_id: int  # also the id of its job
    expense_ids: tuple[int, ...]
    reading: Reading
    outcome: dict | None = None  # what a command did: the expense undone, the rows erased
    job: str | None = None  # the status its enrichment job was given here ('pending', 'skipped'); None: untouched


# Called with the messages just committed and the connection that committed them, still open
# for reads (what replies show); it is closed when the call returns.
AfterCommit = Callable[[list[Saved], sqlite3.Connection], None]


class Ingest:
    def __init__(self, db: Database, spool: Spool, *, zone: dt.tzinfo, currency: str,
                 after_commit: AfterCommit | None = None, skip_jobs: bool = False):
        self.db = db
        self.spool = spool
        self.zone = zone
        self.currency = currency
        # What a person who never set their own currency or zone gets (the environment's).
        self.defaults = Settings(currency, getattr(zone, "key", None) or "UTC")
        self.after_commit = after_commit or (lambda saved, conn: None)
        # AI off: a message's job is written `skipped` in its own transaction, not left to a poller.
        self.skip_jobs = skip_jobs
        # Set while the spool holds events: new ones queue behind them, keeping arrival order.
        self.spooling = threading.Event()
        if spool.files():
            self.spooling.set()
        # Spool files already written into the database that could not be removed or set aside
        # (an immutable folder): replay passes them by.
        self._done: set[Path] = set()
        self.replay_failing_since: float | None = None  # monotonic; None while replay succeeds
        self.database_incident = Incident(logger, "database_unavailable", "database_available")
        self.spool_incident = Incident(logger, "spool_failed", "spool_recovered", level=logging.ERROR)

    def accept(self, messages: list[Message]) -> None:
        """Make messages durable: committed, or else spooled. Raise SpoolError if neither."""
        if not messages:
            return
        tried_database = not self.spooling.is_set()
        if tried_database:
            try:
                self.write(messages)
                self.database_incident.ended()
                return
            except DatabaseUnavailable as exc:
                self.database_incident.happened(str(exc))
        try:
            self.spool.append(messages)
        except SpoolError as exc:
            self.spool_incident.happened(str(exc))
            if tried_database:
                raise
            # The spool is waiting to drain, but it cannot take this delivery: the database may.
            try:
                self.write(messages)
                return
            except DatabaseUnavailable as unavailable:
                raise SpoolError(f"{exc}; database: {unavailable}") from unavailable
        self.spool_incident.ended()
        self.spooling.set()
        for message in messages:
            log_event(logger, "event_spooled", psid_hash=message.psid_hash, mid=message.mid)

    def write(self, messages: list[Message]) -> list[Saved]:
        """Commit messages in one transaction, log each, then hand them on; raise DatabaseUnavailable."""
        deadline = time.monotonic() + self.db.write_timeout
        with self.db.connection() as conn, logs.together():
            saved = self.save(conn, messages, deadline)
            for record in saved:
                message = record.message
                log_event(logger, "event_logged", psid_hash=message.psid_hash, mid=message.mid,
                          expense_id=record.expense_ids[0] if record.expense_ids else None,
                          expenses=len(record.expense_ids), kind=message.kind)
                if record.job == "skipped":
                    log_event(logger, "ai_enriched", psid_hash=message.psid_hash, mid=message.mid, status="skipped")
            try:
                self.after_commit(saved, conn)
            except Exception:  # the write is committed: nothing after it may turn it into an error
                log_event(logger, "after_commit_failed", level=logging.ERROR, traceback=traceback.format_exc())
        return saved

    def save(self, conn: sqlite3.Connection, messages: list[Message], deadline: float) -> list[Saved]:
        """Commit messages on conn in one transaction; return those new (or edited).

        Inside the transaction each sender's settings and erasure are read once (one statement),
        then every message is read, then each is stored; a message is read with its sender's
        settings as they stand after the messages before it (a 'currency EUR' then 'lunch 12' is
        in EUR: read again once the first is stored). A message whose writes fail is rejected
        alone: the delivery is written again from the start, this time each message in a
        savepoint of its own, so its failed writes are undone and the others kept. (Savepoints
        for every message, every time, cost two statements each.) Both attempts are made under
        the one write lock: no other delivery commits between them.
        """
        rejected_at = times.iso_utc(times.now_ms())
        with self.db.transaction(conn, deadline, prepare=store.INGEST_STATEMENTS):
            try:
                saved, rejected = self._save(conn, messages, rejected_at, isolated=False)
            except _IsolateEach:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                saved, rejected = self._save(conn, messages, rejected_at, isolated=True)
        self._log_outcomes(messages, saved, rejected)
        return saved

    def _save(self, conn: sqlite3.Connection, messages: list[Message], rejected_at: str, *,
              isolated: bool) -> tuple[list[Saved], list[tuple[Message, str]]]:
        """Write messages inside the open transaction; return those saved and those rejected (with why)."""
        saved, rejected = [], []
        people = {}
        for message in messages:
            if message.psid_hash not in people:
                people[message.psid_hash] = person_of(conn, message.psid_hash, self.defaults)
        # Every message is read first (pure Python), then each is stored (SQLite): each run keeps
        # its code warm in the CPU's caches, ~10 us a message in a big delivery. A message whose
        # sender's settings were replaced before it in this delivery ('currency EUR', even one
        # they had already; an erasure) is read again with them: read twice, which only such
        # rare deliveries pay.
        read_with = {psid_hash: person.settings for psid_hash, person in people.items()}
        reads = [self._read_event(message, read_with[message.psid_hash]) for message in messages]
        for message, read in zip(messages, reads):
            person = people[message.psid_hash]
            if person.settings is not read_with[message.psid_hash]:
                read = self._read_event(message, person.settings)
            try:
                if isinstance(read, EventRejected):
                    raise read
                if isolated:
                    with _savepoint(conn):
                        record = self._store(conn, message, person, read)
                else:
                    record = self._store(conn, message, person, read)
            except Exception as exc:
                problem = classify(exc)
                if isinstance(problem, DatabaseUnavailable):
                    raise problem from exc
                if not isolated and not isinstance(exc, EventRejected):
                    raise _IsolateEach from exc  # some of its writes may have been made: undo them all
                store.insert_rejected_event(conn, message.psid_hash, message.mid, message.event,
                                            str(problem), rejected_at)
                rejected.append((message, str(problem)))
                continue
            if record is not None:
                saved.append(record)
                if not (record.outcome or {}).get("edit_not_carried_out"):
                    people[message.psid_hash] = person.after(record, self.defaults)
        return saved, rejected

    def _log_outcomes(self, messages: list[Message], saved: list[Saved], rejected: list[tuple]) -> None:
        """Log each rejected event, and each one neither saved nor rejected (already stored, or erased)."""
        for message, reason in rejected:
            log_event(logger, "event_rejected", level=logging.WARNING, psid_hash=message.psid_hash,
                      mid=message.mid, reason=reason)
        if len(saved) + len(rejected) < len(messages):
            known = {id(r.message) for r in saved} | {id(message) for message, _ in rejected}
            for message in messages:
                if id(message) not in known:
                    log_event(logger, "event_duplicate", psid_hash=message.psid_hash, mid=message.mid)

    def replay_spool(self) -> int:
        """Write spooled files into the database, oldest first; return how many messages were new.

        Raises DatabaseUnavailable (try again later) or SpoolError (the folder can't be listed).
        A file that fails for any other reason is set aside and replay goes on with the next.
        """
        try:
            new = self._replay()
        except BaseException:
            if self.replay_failing_since is None:
                self.replay_failing_since = time.monotonic()
            raise
        self.replay_failing_since = None
        return new

    def _replay(self) -> int:
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
            self.database_incident.ended()
            self._forget(path)
            log_event(logger, "spool_replayed", file=path.name, messages=len(messages))
        if all(path in self._done for path in self.spool.files()):
            self.spooling.clear()
        return new

    def health_problem(self, stale_after: float) -> str | None:
        """Say why the spool is not doing its job (unlistable, not draining, replay stuck); None if it is."""
        try:
            age = self.spool.oldest_age()
        except SpoolError as exc:
            return str(exc)
        failing = self.replay_failing_since
        if failing is not None and time.monotonic() - failing > stale_after:
            return f"spool replay failing for {time.monotonic() - failing:.0f} s"
        if age is not None and age > stale_after:
            return f"spool not drained for {age:.0f} s"
        return None

    def _read_event(self, message: Message, settings: Settings) -> Reading | Settings | EventRejected:
        """Read one message, or say why it can never be stored.

        An edit is read once its original is found (in _store): for it, the settings to read it with.
        """
        if message.invalid:  # decided at the edge (webhook.py)
            return EventRejected(message.invalid)
        if message.kind == "edit":
            return settings
        try:
            return self.read(message, message.sent_ms, settings)
        except Exception as exc:
            return EventRejected(describe(exc))

    def _forget(self, path: Path) -> None:
        try:
            self.spool.remove(path)
        except OSError as exc:
            self._done.add(path)
            log_event(logger, "spool_file_kept", level=logging.WARNING, file=path.name,
                      reason=f"written to the database but not removed: {exc.strerror or exc}")

    def read(self, message: Message, sent_ms: int, settings: Settings | None = None) -> Reading:
        """Read a message's text as a command or as expenses, on the message's own date."""
        return meaning.read(message.text, settings or self.defaults, sent_ms)

    def _set_aside(self, path: Path, exc: Exception) -> None:
        try:
            name = self.spool.quarantine(path).name
        except OSError as rename_error:
            self._done.add(path)
            name = f"{path.name} (left in place: {rename_error.strerror or rename_error})"
        log_event(logger, "spool_file_rejected", level=logging.ERROR, file=name, reason=describe(exc))

    def _store(self, conn: sqlite3.Connection, message: Message, person: Person,
               reading: Reading | Settings) -> Saved | None:
        """Store one message with its expenses and job, and do its command; None when already stored.

        An edit comes with its sender's settings instead of a reading: it is read here, once.
        None too for an event from before the person erased their data: erasure is final.
        """
        received_at = times.iso_utc(message.received_ms)
        sent_at = times.iso_utc(message.sent_ms)
        if person.erased_at is not None and sent_at <= person.erased_at:
            return None
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
                job = self._job_status
                store.requeue_job(conn, message_id, received_at, job)
                return Saved(message, message_id, tuple(expense_ids), reading, job=job)
        message_id = store.insert_message(conn, message, received_at, sent_at)
        if message_id is None:
            return None
        expense_ids = store.insert_expenses(
            conn, message_id, message, self._expense_rows(reading, message.sent_ms), received_at)
        job = self._job_status
        store.insert_job(conn, message_id, received_at, job)
        if message.kind == "edit" and reading.command is not None:  # an edit never runs a command
            return Saved(message, message_id, tuple(expense_ids), reading, {"edit_not_carried_out": True}, job)
        return Saved(message, message_id, tuple(expense_ids), reading, effects.run(conn, message, reading.command),
                     job)

    @property
    def _job_status(self) -> str:
        return "skipped" if self.skip_jobs else "pending"

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



@dataclasses.dataclass(frozen=True)
class Person:
    """What storing a sender's messages depends on: their settings, and when they last erased their data."""

    settings: Settings
    erased_at: str | None  # ISO-8601 UTC; events sent up to then are not stored

    def after(self, record: Saved, defaults: Settings) -> Person:
        """The person as the message just stored left them (a 'currency EUR'; an erasure: defaults again)."""
        if record.outcome is not None and "erased" in record.outcome:
            return Person(defaults, max(self.erased_at or "", times.iso_utc(record.message.sent_ms)))
        return Person(record.reading.settings_after, self.erased_at)


def person_of(conn: sqlite3.Connection, psid_hash: str, defaults: Settings) -> Person:
    currency, timezone, erased_at = store.person_state(conn, psid_hash)
    return Person(settings_from(currency, timezone, defaults), erased_at)


class _IsolateEach(Exception):
    """A message's writes failed in a delivery written without savepoints: write it again with them."""


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """Undo one event's writes if storing it fails, keeping the rest of the transaction."""
    conn.execute("SAVEPOINT event")
    try:
        yield
    except BaseException as exc:
        try:
            conn.execute("ROLLBACK TO event")
            conn.execute("RELEASE event")
        except sqlite3.Error as undo_error:
            # SQLite rolled the whole transaction back itself (an I/O error, a full disk).
            raise DatabaseUnavailable(f"{describe(exc)}; then {describe(undo_error)}") from exc
        raise
    conn.execute("RELEASE event")
