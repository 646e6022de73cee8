"""The words of a reply, composed after the commit from the message's reading and the rows.

The rows are read as they stood right after the message's own commit: an expense reply's day total
counts no expense stored after the message's last one (`upto`), however late it is composed
(docs/REPLIES.md). REPLIES maps every command (chat/meaning.COMMAND_NAMES) to its reply.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable

from expensebot import money, occurrences, store, summary, times
from expensebot.ai import AiClient, AiError
from expensebot.chat import meaning, periods
from expensebot.ingest.write import Saved
from expensebot.logs import log_event
from expensebot.replies import words
from expensebot.replies.faithful import rephrasing_is_faithful
from expensebot.settings import Settings

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


class Replier:
    """Word the reply to one committed message from its reading and the rows (outbox.py sends it).

    `report_link(psid_hash)`: the person's report link, or None when links are not set up. With `ai`, the model
    may rephrase a summary or read a question the reader could not, within `rate`; numbers come from the rows.
    """

    def __init__(self, *, now: Callable[[], dt.datetime] = times.utc_now, ai: AiClient | None = None,
                 rate=None, report_link: Callable[[str], str | None] = lambda psid_hash: None,
                 converting: bool = False):
        self.now = now
        self.ai = ai
        self.rate = rate
        self.report_link = report_link
        self.converting = converting  # RATES_URL is not off: replies show converted amounts

    def without_model(self) -> Replier:
        """The same replier, with the model left out: summaries in their plain words."""
        return Replier(now=self.now, report_link=self.report_link, converting=self.converting)

    def needs_model(self, record: Saved) -> bool:
        """Whether composing this reply may wait for the model (up to AI_TIMEOUT)."""
        command = record.reading.command
        return self.ai is not None and command is not None and (
            command.name == "summary" or (command.name == "did_you_mean" and command.topic == "question"))

    def compose(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        """Build the reply from the message's reading and the rows, read on conn."""
        if record.outcome.not_carried_out:
            reply = Reply(words.edited_command_reply(record.message.text or ""))
        else:
            command = record.reading.command
            reply = REPLIES[command.name if command else None](self, record, conn)
        if record.added_count:  # recurring expenses made since the person's last message
            added = words.added_lines(list(record.added), record.added_count)
            reply = dataclasses.replace(reply, text=words.fit([reply.text, *added]))
        for draft in record.receipts:  # read while the bot could not say so (a restart in between)
            told = receipt_answer(draft)
            reply = dataclasses.replace(reply, text=words.fit([reply.text, "", told.text]),
                                        quick_replies=reply.quick_replies or told.quick_replies)
        return self._with_digest(reply, record, conn) if record.digest else reply

    def _with_digest(self, reply: Reply, record: Saved, conn: sqlite3.Connection) -> Reply:
        """The reply with the digest of the month its message was given (write.py decided it, once):
        that month summed by summary.summarize, as `summary <month>` would, in the zone of the message's
        time and the person's currency now; with the report button when reports are set up."""
        psid_hash = record.message.psid_hash
        own = store.settings_of(conn, psid_hash, record.reading.settings)
        settings = dataclasses.replace(record.reading.settings, currency=own.currency)
        month = periods.month(*map(int, record.digest.split("-")))
        last_day = month.start - dt.timedelta(days=1)
        before = periods.month(last_day.year, last_day.month)
        computed, previous = (self._month_summary(conn, psid_hash, period, settings) for period in (month, before))
        over = [use for use in summary.budget_use(conn, psid_hash, month.start, settings.zone) if use.over]
        lines = [reply.text, "", *words.digest_reply(computed, previous, over)]
        if reply.buttons:  # the report's own button: its text must stay within a button template's
            return dataclasses.replace(reply, text=words.fit(lines, words.MAX_BUTTON_TEXT))
        text, buttons = words.fit(lines), ()
        # The report button goes where a button template can hold the whole text (and no quick replies wait).
        if not reply.quick_replies and len(text) <= words.MAX_BUTTON_TEXT and (url := self.report_link(psid_hash)):
            buttons = (("Open report", url),)
        return dataclasses.replace(reply, text=text, buttons=buttons)

    def _month_summary(self, conn: sqlite3.Connection, psid_hash: str, period: periods.Period,
                       settings: Settings) -> summary.Summary:
        computed = summary.summarize(conn, psid_hash, period, self.now(), settings)
        return computed if self.converting else dataclasses.replace(computed, converted=None)

    def _recurring(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        """A rule made, listed or stopped; each with its next due date after the message's day."""
        command, outcome, today = record.reading.command, record.outcome, record.reading.today
        if command.name == "recurring_list":
            rules = store.active_rules(conn, record.message.psid_hash)
            return Reply(words.rules_reply([words.rule_line(dict(rule), occurrences.next_after(rule, today))
                                            for rule in rules]))
        if command.name == "recurring_stop":
            return Reply(words.rule_stopped_reply(outcome.rule, command.target))
        if outcome.too_many_rules:
            return Reply(words.TOO_MANY_RULES)
        return Reply(words.rule_set_reply(outcome.rule, occurrences.next_after(outcome.rule, today), today))

    def _expenses(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        """How the lines were read, the day's total and the budgets they count toward; or a hint."""
        reading = record.reading
        rejected = list(reading.parsed.rejected) if reading.parsed else []
        ask = next((line for line in rejected if line.choices), None)
        if not reading.expenses:
            if ask is not None:
                return Reply(*words.which_currency_reply(ask))
            return Reply(words.hint_reply(rejected))
        conversions = store.conversions_of(conn, record.expense_ids) if self.converting else ()
        totals, budgets = self._day_and_budgets(record, conn, conversions)
        text = words.expenses_reply(list(reading.expenses), rejected, totals, reading.today,
                                    edited=record.message.kind == "edit", budgets=budgets, conversions=conversions)
        return Reply(text, words.which_currency_reply(ask)[1] if ask is not None else ())

    def _day_and_budgets(self, record: Saved, conn: sqlite3.Connection, conversions=()) -> tuple[list, list]:
        """The day's totals as of the message's own commit, and the month's use of its budgets (in
        an expense's currency, or the one it was converted to)."""
        reading, psid_hash = record.reading, record.message.psid_hash
        try:
            bounds = summary.day_bounds(reading.today, reading.settings.zone)
            totals = store.day_totals(conn, psid_hash, *bounds, upto=max(record.expense_ids))
            uses = summary.budget_use(conn, psid_hash, reading.today, reading.settings.zone)
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: a day after 9999-12-31
            log_event(logger, "day_totals_failed", level=logging.WARNING, reason=str(exc))
            return [], []
        if not uses:
            return totals, []
        categories = {"", *store.message_categories(conn, record.message_id)}
        currencies = {expense.currency for expense in reading.expenses}
        currencies |= {row["converted_currency"] for row in conversions if row and row["converted_minor"] is not None}
        return totals, [use for use in uses if use.category in categories and use.currency in currencies]

    def _summary(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        command, psid_hash = record.reading.command, record.message.psid_hash
        # The period in the zone as of the question; conversions are to the person's currency now.
        own = store.settings_of(conn, psid_hash, record.reading.settings_after)
        settings = dataclasses.replace(record.reading.settings_after, currency=own.currency)
        if command.category:
            computed = summary.term_summary(conn, psid_hash, command.period, settings, command.category)
        else:
            computed = summary.summarize(conn, psid_hash, command.period, self.now(), settings)
        if not self.converting:
            computed = dataclasses.replace(computed, converted=None)
        if command.name == "question":
            return Reply(words.question_reply(computed, command.category))
        return Reply(self._rephrased(psid_hash, words.summary_reply(computed)))

    def _did_you_mean(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        command = record.reading.command
        if command.topic == "question" and (asked := self._model_query(record)) is not None:
            return self._summary(dataclasses.replace(record, reading=dataclasses.replace(
                record.reading, command=asked)), conn)
        return Reply(words.DID_YOU_MEAN.get(command.topic, words.HINT))

    def _report(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        url = self.report_link(record.message.psid_hash)
        if url is None:
            return Reply(words.REPORT_NOT_SET_UP)
        month = self.now().astimezone(record.reading.settings_after.zone).date()
        return Reply(f"Your report for {month:%B %Y}", buttons=(("Open report", url),))

    def _budgets(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        reading, command = record.reading, record.reading.command
        uses = summary.budget_use(conn, record.message.psid_hash, reading.today, reading.settings.zone)
        if command.name == "budgets":
            return Reply(words.budgets_reply(uses))
        if record.outcome.late:
            return Reply(words.late_budget_reply(command.category))
        use = next((u for u in uses if u.category == command.category), None)
        return Reply(words.budget_set_reply(use, command.category, command.amount_minor, command.currency))

    def _setting(self, record: Saved, conn: sqlite3.Connection) -> Reply:
        command, outcome = record.reading.command, record.outcome
        if outcome.late:
            text = words.late_setting_reply(store.settings_of(conn, record.message.psid_hash, record.reading.settings))
        elif command.name == "currency_set":
            text = words.currency_set_reply(command.currency)
        else:
            text = words.timezone_set_reply(command.tz, self.now())
        return Reply(words.fit([text, words.reread_line(outcome.reread)]) if outcome.reread else text)

    def _model_query(self, record: Saved) -> meaning.Command | None:
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

    def _rephrased(self, psid_hash: str, plain: str) -> str:
        """The model's wording of a computed summary when it adds nothing of its own; else plain."""
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


def receipt_answer(draft: dict) -> Reply:
    """What a photo was read as, with Save / Fix / Drop; or why it could not be read."""
    if draft["status"] == "proposed":
        return Reply(*words.receipt_proposal(draft))
    return Reply(words.receipt_unreadable(draft["reason"]))


def _receipt_photo(record: Saved) -> Reply:
    """The answer to a photo: it is being read (what was read follows, from background/receipts.py),
    or why it cannot be."""
    draft = record.outcome.receipt
    if draft["status"] == "off":
        return Reply(words.RECEIPTS_OFF)
    if draft["status"] == "unreadable":
        return Reply(words.receipt_unreadable(draft["reason"]))
    return Reply(words.RECEIPT_READING)


def _text(make: Callable[[Saved], Reply]) -> Callable[[Replier, Saved, sqlite3.Connection], Reply]:
    """A reply that needs neither the rows nor the replier."""
    return lambda replier, record, conn: make(record)


# The reply to each kind of message: None is a message that is no command (expenses, or a hint).
REPLIES: dict[str | None, Callable[[Replier, Saved, sqlite3.Connection], Reply]] = {
    None: Replier._expenses,
    "summary": Replier._summary,
    "question": Replier._summary,
    "did_you_mean": Replier._did_you_mean,
    "report": Replier._report,
    "budget_set": Replier._budgets,
    "budgets": Replier._budgets,
    "currency_set": Replier._setting,
    "timezone_set": Replier._setting,
    "help": _text(lambda record: Reply(words.HELP)),
    "welcome": _text(lambda record: Reply(words.WELCOME, words.currency_choices(money.COMMON_CURRENCIES))),
    "undo": _text(lambda record: Reply(words.rule_undone_reply(record.outcome.rule) if record.outcome.rule
                                       else words.undo_reply(list(record.outcome.undone)))),
    "recurring_set": Replier._recurring,
    "recurring_list": Replier._recurring,
    "recurring_stop": Replier._recurring,
    "delete_request": _text(lambda record: Reply(*words.delete_request_reply())),
    "delete_confirm": _text(lambda record: Reply(
        words.deleted_reply(*record.outcome.erased) if record.outcome.erased else words.KEPT)),
    "delete_cancel": _text(lambda record: Reply(words.KEPT)),
    "currency_ask": _text(lambda record: Reply(*words.currency_ask_reply(
        record.reading.command.choices, record.reading.settings.currency))),
    "settings": _text(lambda record: Reply(words.settings_reply(record.reading.settings))),
    "timezone_show": _text(lambda record: Reply(words.settings_reply(record.reading.settings))),
    "digest_on": _text(lambda record: Reply(words.digest_set_reply(True, record.outcome.late))),
    "digest_off": _text(lambda record: Reply(words.digest_set_reply(False, record.outcome.late))),
    "budget_off": _text(lambda record: Reply(words.budget_off_reply(
        record.reading.command.category, record.outcome.removed))),
    "receipt_photo": _text(_receipt_photo),
    **{name: _text(lambda record: Reply(words.receipt_decided(
        record.outcome.receipt, record.outcome.receipt_was, record.reading.command.name)))
       for name in ("receipt_save", "receipt_fix", "receipt_drop")},
}
