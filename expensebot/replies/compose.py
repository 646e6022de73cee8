"""The words of a reply: composed after the commit from the message's reading and the database.

Everything a reply shows beyond the reading is read here. An expense reply's day total and budget
use (`Shown`) are read right after the commit, on the connection that committed it (`shown`,
called by the outbox's `submit`); a command's (a summary, budgets) when it is composed, on one
fresh read connection per batch of replies (`Reads`). Sending is outbox.py's (order, batching,
retries) over graph.py's client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Iterator

from expensebot import money, store, summary, times
from expensebot.ai import AiClient, AiError
from expensebot.chat import meaning
from expensebot.db import Database
from expensebot.ingest.write import Saved
from expensebot.limits import RateLimiter
from expensebot.logs import log_event
from expensebot.replies import words
from expensebot.replies.faithful import rephrasing_is_faithful

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str
    quick_replies: tuple[words.QuickReply, ...] = ()
    buttons: tuple[tuple[str, str], ...] = ()  # (title, url): URL buttons under the text

    def as_message(self) -> dict:
        """The Send API's `message` object: text with quick replies, or a button template."""
        if self.buttons:
            buttons = [{"type": "web_url", "url": url, "title": title} for title, url in self.buttons]
            return {"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": self.text, "buttons": buttons}}}
        message = {"text": self.text}
        if self.quick_replies:
            message["quick_replies"] = [{"content_type": "text", "title": q.title, "payload": q.payload}
                                        for q in self.quick_replies]
        return message


@dataclasses.dataclass(frozen=True)
class Shown:
    """What an expense reply shows beyond its reading: the day's totals and the budgets it counts toward."""

    day_totals: list[tuple[str, int]]  # (currency, total_minor), most used first
    budgets: list  # summary.BudgetUse


class Reads:
    """One fresh read connection shared by the replies composed together, opened on first use."""

    def __init__(self, db: Database):
        self.db = db
        self._conn: sqlite3.Connection | None = None

    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.db.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Replier:
    """Word the reply to one committed message from its reading and the rows (outbox.py sends it)."""

    def __init__(self, db: Database, *, zone: dt.tzinfo, now: Callable[[], dt.datetime] = times.utc_now,
                 ai: AiClient | None = None, rate: RateLimiter | None = None, reports=None):
        self.db = db
        self.zone = zone
        self.now = now
        self.ai = ai
        self.rate = rate
        self.reports = reports  # report.Links, or None: then `report` says it is not set up

    def needs_model(self, record: Saved) -> bool:
        """Whether composing this reply may wait for the model (up to AI_TIMEOUT): a summary with AI on."""
        command = record.reading.command
        return self.ai is not None and command is not None and command.name == "summary"

    @contextlib.contextmanager
    def reads(self) -> Iterator[Reads]:
        """A read connection (opened only if needed) for composing several replies, closed afterwards."""
        reads = Reads(self.db)
        try:
            yield reads
        finally:
            reads.close()

    def shown(self, conn: sqlite3.Connection, saved: list[Saved], upto: int | None) -> list[Shown | None]:
        """Read what each expense reply will show, on a connection already open (ingest's, right after its commit).

        One entry per record: None for a reply that shows nothing from the rows (a command, a
        hint), or when the read failed (composing reads it again). Reading here saves the
        reply side a connection of its own and keeps its sender threads off SQLite, where
        every statement hands the GIL to the request thread and back.
        """
        out: list[Shown | None] = []
        for record in saved:
            if record.reading.command is not None or not record.reading.expenses:
                out.append(None)
                continue
            try:
                out.append(self._shown(record, conn, upto))
            except (sqlite3.Error, OverflowError):
                out.append(None)
        return out

    def _shown(self, record: Saved, conn: sqlite3.Connection, upto: int | None) -> Shown:
        """Read an expense reply's day totals and budgets; raise sqlite3.Error, or OverflowError after 9999-12-31."""
        bounds = summary.day_bounds(record.reading.today, record.reading.settings.zone)
        totals, has_budgets = store.day_totals(conn, record.message.psid_hash, *bounds, upto)
        return Shown(totals, self._budgets_of(record, conn) if has_budgets else [])

    def compose(self, record: Saved, reads: Reads | None = None, *, upto: int | None = None,
                shown: Shown | None = None) -> Reply:
        """Build the reply text from the message's reading and the rows in the database.

        `upto`: the last expense id of the message's own transaction; the day's total counts no
        expense stored after it, so it is the total as it stood right after that commit, however
        late the reply is composed. None counts every expense stored by now. `shown`: what
        `shown()` read for it already; None: read here.
        """
        if reads is None:
            with self.reads() as reads:
                return self._compose(record, reads, upto, shown)
        return self._compose(record, reads, upto, shown)

    def _compose(self, record: Saved, reads: Reads, upto: int | None, shown: Shown | None) -> Reply:
        reading, command = record.reading, record.reading.command
        psid_hash = record.message.psid_hash
        settings = reading.settings_after
        outcome = record.outcome or {}
        if command is None:
            return self._expenses_reply(record, reads, upto, shown)
        if outcome.get("edit_not_carried_out"):
            return Reply(words.edited_command_reply(record.message.text or ""))
        if command.name == "did_you_mean" and command.topic == "question":
            command = self._model_query(record) or command
        if command.name in ("summary", "question"):
            conn = reads.conn()
            if command.category:
                computed = summary.term_summary(conn, psid_hash, command.period, settings.zone, command.category)
            else:
                computed = summary.summarize(conn, psid_hash, command.period, self.now(), settings.zone)
            if command.name == "question":
                return Reply(words.question_reply(computed, command.category))
            return Reply(self._rephrased(psid_hash, words.summary_reply(computed)))
        if command.name == "help":
            return Reply(words.HELP)
        if command.name == "report":
            offer = self.reports.offer(psid_hash) if self.reports is not None else None
            if offer is None:
                return Reply(words.REPORT_NOT_SET_UP)
            month, url = offer
            return Reply(f"Your report for {month}", buttons=(("Open report", url),))
        if command.name == "welcome":
            return Reply(words.WELCOME, tuple(words.currency_choices(money.COMMON_CURRENCIES)))
        if command.name == "undo":
            return Reply(words.undo_reply(outcome.get("undone")))
        if command.name == "delete_request":
            text, quick_replies = words.delete_request_reply()
            return Reply(text, tuple(quick_replies))
        if command.name == "delete_confirm":
            return Reply(words.deleted_reply(outcome["erased"]) if "erased" in outcome else words.KEPT)
        if command.name == "currency_set":
            return Reply(words.currency_set_reply(command.currency))
        if command.name == "currency_ask":
            text, quick_replies = words.currency_ask_reply(command.choices, settings.currency)
            return Reply(text, tuple(quick_replies))
        if command.name == "timezone_set":
            return Reply(words.timezone_set_reply(command.tz, self.now()))
        if command.name in ("settings", "timezone_show"):
            return Reply(words.settings_reply(settings.currency, settings.tz))
        if command.name in ("budget_set", "budgets"):
            uses = summary.budget_use(reads.conn(), psid_hash, reading.today, settings.zone)
            if command.name == "budgets":
                return Reply(words.budgets_reply(uses))
            use = next((u for u in uses if u.category == command.category), None)
            return Reply(words.budget_set_reply(use, command.category, command.amount_minor, command.currency))
        if command.name == "budget_off":
            return Reply(words.budget_off_reply(command.category, outcome.get("removed", False)))
        if command.name == "did_you_mean":
            return Reply(words.did_you_mean(command.topic))
        return Reply(words.KEPT)  # delete_cancel

    def _expenses_reply(self, record: Saved, reads: Reads, upto: int | None, shown: Shown | None) -> Reply:
        """How the lines were read, the day's total and the budgets they count toward; or a hint."""
        reading = record.reading
        rejected = list(reading.parsed.rejected) if reading.parsed else []
        ask = next((line for line in rejected if line.choices), None)
        if not reading.expenses:
            if ask is not None:
                text, quick_replies = words.which_currency_reply(ask)
                return Reply(text, tuple(quick_replies))
            return Reply(words.hint_reply(rejected))
        if shown is None:
            shown = self._read_shown(record, reads, upto)
        text = words.expenses_reply(list(reading.expenses), rejected, shown.day_totals, reading.today,
                                   edited=record.message.kind == "edit", budgets=shown.budgets)
        if ask is not None:
            return Reply(text, tuple(words.which_currency_reply(ask)[1]))
        return Reply(text)

    def _model_query(self, record: Saved):
        """With AI on, the model's reading of a question the reader could not read, validated; else None."""
        psid_hash = record.message.psid_hash
        if self.ai is None or self.rate.wait(psid_hash):
            return None
        try:
            answer = self.ai.complete(meaning.QUESTION_PROMPT, record.message.text or "", json_object=True)
        except AiError as exc:
            log_event(logger, "ai_question_discarded", psid_hash=psid_hash, reason=str(exc))
            return None
        command = meaning.read_model_query(answer, record.reading.today)
        if command is None:
            log_event(logger, "ai_question_discarded", psid_hash=psid_hash, reason="not a known category and period")
        return command

    def _read_shown(self, record: Saved, reads: Reads, upto: int | None) -> Shown:
        """_shown on the batch's read connection; without day totals or budgets if they can't be read (logged)."""
        try:
            return self._shown(record, reads.conn(), upto)
        except (sqlite3.Error, OverflowError) as exc:
            log_event(logger, "day_totals_failed", level=logging.WARNING, reason=str(exc))
            return Shown([], [])

    def _budgets_of(self, record: Saved, conn: sqlite3.Connection) -> list:
        """The month's use of the budgets this message's expenses count toward."""
        psid_hash, settings = record.message.psid_hash, record.reading.settings
        uses = summary.budget_use(conn, psid_hash, record.reading.today, settings.zone)
        if not uses:
            return []
        categories = {"", *store.message_categories(conn, record.message_id)}
        currencies = {expense.currency for expense in record.reading.expenses}
        return [use for use in uses if use.category in categories and use.currency in currencies]

    def _rephrased(self, psid_hash: str, plain: str) -> str:
        """The model's wording of a computed summary when it adds no number of its own; else plain.

        The AI call has a whole-call deadline (AI_TIMEOUT), so the plain answer is never later than that.
        """
        if self.ai is None or self.rate.wait(psid_hash):
            return plain
        try:
            rephrased = self.ai.rephrase(plain)
        except AiError as exc:
            log_event(logger, "ai_rephrase_discarded", psid_hash=psid_hash, reason=str(exc))
            return plain
        if not rephrasing_is_faithful(plain, rephrased):
            log_event(logger, "ai_rephrase_discarded", psid_hash=psid_hash, reason="states what the summary does not")
            return plain
        return rephrased
