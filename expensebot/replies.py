"""Replies after the commit, never on the request thread: compose from the database, send via the Send API.

The raw PSID a reply needs arrives in memory with the message and is dropped once the reply is
sent; it is never stored. Without FB_PAGE_ACCESS_TOKEN the reply is logged (text and psid_hash).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

import requests

from expensebot import chat, money, reading, store, summary, times
from expensebot.ai import AiClient, AiError, rephrasing_is_faithful
from expensebot.db import Database
from expensebot.enrich import RateLimiter
from expensebot.ingest import Saved
from expensebot.logs import log_event

logger = logging.getLogger(__name__)

# Meta's error codes: try again later, or never (MESSENGER.md, Sending).
RETRY_CODES = frozenset({1200, 613, 4, 2})
NEVER_RETRY_CODES = frozenset({551, 10, 100, 190})
SEND_TIMEOUT = (3.05, 10)  # connect, read
BACKOFF = (0.5, 1.0, 2.0)
# Replies waiting while the Send API fails for a long time: beyond this the oldest are dropped.
MAX_QUEUED_REPLIES = 10_000


class SendApiError(Exception):
    """The Send API refused or failed a message."""

    def __init__(self, message: str, code: int | None, subcode: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.retryable = retryable


class SendApi:
    """POST {FB_GRAPH_URL}/me/messages through one requests.Session with explicit timeouts."""

    def __init__(self, graph_url: str, page_access_token: str, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.url = f"{graph_url}/me/messages"
        self._token = page_access_token
        self._session = session or requests.Session()
        self._sleep = sleep

    def close(self) -> None:
        """Close the session's pooled connections."""
        self._session.close()

    def send(self, psid: str, message: dict) -> None:
        """Send a RESPONSE message (Reply.as_message), retrying temporary failures; raise SendApiError."""
        body = {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
        for delay in (*BACKOFF, None):
            try:
                return self._post(body)
            except SendApiError as exc:
                if not exc.retryable or delay is None:
                    raise
            self._sleep(delay)

    def _post(self, body: dict) -> None:
        try:
            response = self._session.post(self.url, params={"access_token": self._token}, json=body,
                                          timeout=SEND_TIMEOUT)
        except requests.RequestException as exc:
            raise SendApiError(type(exc).__name__, None, retryable=True) from None
        if response.status_code == 200:
            return
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code, subcode = error.get("code"), error.get("error_subcode")
        retryable = code in RETRY_CODES or (response.status_code >= 500 and code not in NEVER_RETRY_CODES)
        raise SendApiError(f"HTTP {response.status_code}", code, subcode, retryable)


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str
    quick_replies: tuple[chat.QuickReply, ...] = ()
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
    """Compose and send one reply per committed message, one after another, in commit order.

    The request thread only appends to a queue; one drain task at a time (on the executor)
    works through it. In order, so "summary" is answered after the expense sent just before it;
    and under load one wake-up, `gather` seconds after the first reply queued, serves all the
    replies queued by then instead of one thread hand-off per message.
    """

    def __init__(self, db: Database, executor: Executor, *, zone: dt.tzinfo, send_api: SendApi | None,
                 now: Callable[[], dt.datetime] = times.utc_now, ai: AiClient | None = None,
                 rate: RateLimiter | None = None, max_queued: int = MAX_QUEUED_REPLIES, gather: float = 0.0,
                 reports=None):
        self.db = db
        self.executor = executor
        self.zone = zone
        self.send_api = send_api
        self.now = now
        self.ai = ai
        self.rate = rate
        self.max_queued = max_queued
        self.gather = gather  # seconds a drain waits first, so replies queued meanwhile go with it
        self.reports = reports  # report.Links, or None: then `report` says it is not set up
        self._queue: collections.deque[tuple[Saved, str | None]] = collections.deque()
        self._lock = threading.Lock()
        self._draining = False
        self._stopped = False

    def submit(self, saved: list[Saved], recipients: Mapping[str, str]) -> None:
        """Queue a reply for every saved message (called after the commit)."""
        dropped = []
        with self._lock:
            if self._stopped:
                return
            self._queue.extend((record, recipients.get(record.message.psid_hash)) for record in saved)
            while len(self._queue) > self.max_queued:
                dropped.append(self._queue.popleft()[0])
            start = bool(self._queue) and not self._draining
            self._draining = self._draining or start
        for record in dropped:  # the Send API has been failing for a long while; the rows are safe
            log_event(logger, "reply_dropped", level=logging.WARNING, psid_hash=record.message.psid_hash,
                      mid=record.message.mid, reason="reply queue full")
        if start:
            self.executor.submit(self._drain)

    def stop(self) -> None:
        """Drop the replies not yet started (each logged) and wait for the one being sent."""
        with self._lock:
            self._stopped = True
            dropped = [record for record, _ in self._queue]
            self._queue.clear()
        for record in dropped:
            log_event(logger, "reply_dropped", level=logging.WARNING, psid_hash=record.message.psid_hash,
                      mid=record.message.mid, reason="shutting down")
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _drain(self) -> None:
        if self.gather:
            time.sleep(self.gather)
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                record, psid = self._queue.popleft()
            self.reply(record, psid)

    def reply(self, record: Saved, psid: str | None) -> None:
        """Compose and deliver one reply; failures are logged, never raised."""
        psid_hash = record.message.psid_hash
        try:
            reply = self.compose(record)
            if self.send_api is None:
                log_event(logger, "reply_logged", psid_hash=psid_hash, mid=record.message.mid, text=reply.text)
                return
            if psid is None:
                log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=psid_hash,
                          mid=record.message.mid, code=None, reason="recipient not known after a restart")
                return
            self.send_api.send(psid, reply.as_message())
            log_event(logger, "reply_sent", psid_hash=psid_hash, mid=record.message.mid)
        except SendApiError as exc:
            log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=psid_hash,
                      mid=record.message.mid, code=exc.code, subcode=exc.subcode, reason=str(exc))
        except Exception:
            logger.exception("reply failed for psid_hash %s", psid_hash)

    def compose(self, record: Saved) -> Reply:
        """Build the reply text from the message's reading and the rows in the database."""
        reading, command = record.reading, record.reading.command
        psid_hash = record.message.psid_hash
        settings = reading.settings_after
        outcome = record.outcome or {}
        if command is None:
            return self._expenses_reply(record)
        if outcome.get("edit_not_carried_out"):
            return Reply(chat.edited_command_reply(record.message.text or ""))
        if command.name == "did_you_mean" and command.topic == "question":
            command = self._model_query(record) or command
        if command.name in ("summary", "question"):
            with self.db.reading() as conn:
                if command.category:
                    computed = summary.term_summary(conn, psid_hash, command.period, settings.zone, command.category)
                else:
                    computed = summary.summarize(conn, psid_hash, command.period, self.now(), settings.zone)
            if command.name == "question":
                return Reply(chat.question_reply(computed, command.category))
            return Reply(self._rephrased(psid_hash, chat.summary_reply(computed)))
        if command.name == "help":
            return Reply(chat.HELP)
        if command.name == "report":
            offer = self.reports.offer(psid_hash) if self.reports is not None else None
            if offer is None:
                return Reply(chat.REPORT_NOT_SET_UP)
            month, url = offer
            return Reply(f"Your report for {month}", buttons=(("Open report", url),))
        if command.name == "welcome":
            return Reply(chat.WELCOME, tuple(chat.currency_choices(money.COMMON_CURRENCIES)))
        if command.name == "undo":
            return Reply(chat.undo_reply(outcome.get("undone")))
        if command.name == "delete_request":
            text, quick_replies = chat.delete_request_reply()
            return Reply(text, tuple(quick_replies))
        if command.name == "delete_confirm":
            return Reply(chat.deleted_reply(outcome["erased"]) if "erased" in outcome else chat.KEPT)
        if command.name == "currency_set":
            return Reply(chat.currency_set_reply(command.currency))
        if command.name == "currency_ask":
            text, quick_replies = chat.currency_ask_reply(command.choices, settings.currency)
            return Reply(text, tuple(quick_replies))
        if command.name == "timezone_set":
            return Reply(chat.timezone_set_reply(command.tz, self.now()))
        if command.name in ("settings", "timezone_show"):
            return Reply(chat.settings_reply(settings.currency, settings.tz))
        if command.name in ("budget_set", "budgets"):
            with self.db.reading() as conn:
                uses = summary.budget_use(conn, psid_hash, reading.today, settings.zone)
            if command.name == "budgets":
                return Reply(chat.budgets_reply(uses))
            use = next((u for u in uses if u.category == command.category), None)
            return Reply(chat.budget_set_reply(use, command.category, command.amount_minor, command.currency))
        if command.name == "budget_off":
            return Reply(chat.budget_off_reply(command.category, outcome.get("removed", False)))
        if command.name == "did_you_mean":
            return Reply(chat.did_you_mean(command.topic))
        return Reply(chat.KEPT)  # delete_cancel

    def _expenses_reply(self, record: Saved) -> Reply:
        """How the lines were read, the day's total and the budgets they count toward; or a hint."""
        reading = record.reading
        rejected = list(reading.parsed.rejected) if reading.parsed else []
        ask = next((line for line in rejected if line.choices), None)
        if not reading.expenses:
            if ask is not None:
                text, quick_replies = chat.which_currency_reply(ask)
                return Reply(text, tuple(quick_replies))
            return Reply(chat.hint_reply(rejected))
        text = chat.expenses_reply(list(reading.expenses), rejected, list(record.day_totals), reading.today,
                                   edited=record.message.kind == "edit", budgets=self._budgets_of(record))
        if ask is not None:
            return Reply(text, tuple(chat.which_currency_reply(ask)[1]))
        return Reply(text)

    def _model_query(self, record: Saved):
        """With AI on, the model's reading of a question the reader could not read, validated; else None."""
        psid_hash = record.message.psid_hash
        if self.ai is None or self.rate.acquire(psid_hash):
            return None
        try:
            answer = self.ai.complete(reading.QUESTION_PROMPT, record.message.text or "", json_object=True)
        except AiError as exc:
            log_event(logger, "ai_question_discarded", psid_hash=psid_hash, reason=str(exc))
            return None
        command = reading.read_model_query(answer, record.reading.today)
        if command is None:
            log_event(logger, "ai_question_discarded", psid_hash=psid_hash, reason="not a known category and period")
        return command

    def _budgets_of(self, record: Saved) -> list:
        """The month's use of the budgets this message's expenses count toward."""
        psid_hash, settings = record.message.psid_hash, record.reading.settings
        with self.db.reading() as conn:
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
        if self.ai is None or self.rate.acquire(psid_hash):
            return plain
        try:
            rephrased = self.ai.rephrase(plain)
        except AiError as exc:
            log_event(logger, "ai_rephrase_discarded", psid_hash=psid_hash, reason=str(exc))
            return plain
        if not rephrasing_is_faithful(plain, rephrased):
            log_event(logger, "ai_rephrase_discarded", psid_hash=psid_hash, reason="numbers not in the summary")
            return plain
        return rephrased
