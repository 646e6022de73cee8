"""The words of a reply: composed after the commit from the message's reading and the database.

Sending is outbox.py's (order, batching, retries) over graph.py's client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from expensebot import chat, summary, times
from expensebot.ai import AiClient, AiError, rephrasing_is_faithful
from expensebot.db import Database
from expensebot.enrich import RateLimiter
from expensebot.ingest import Saved
from expensebot.logs import log_event

logger = logging.getLogger(__name__)


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
    """Word the reply to one committed message from its reading and the rows (outbox.py sends it)."""

    def __init__(self, db: Database, *, zone: dt.tzinfo, now: Callable[[], dt.datetime] = times.utc_now,
                 ai: AiClient | None = None, rate: RateLimiter | None = None):
        self.db = db
        self.zone = zone
        self.now = now
        self.ai = ai
        self.rate = rate

    def needs_model(self, record: Saved) -> bool:
        """Whether composing this reply may wait for the model (up to AI_TIMEOUT): a summary with AI on."""
        command = record.reading.command
        return self.ai is not None and command is not None and command.name == "summary"

    def compose(self, record: Saved) -> Reply:
        """Build the reply text from the message's reading and the rows in the database."""
        reading, command = record.reading, record.reading.command
        psid_hash = record.message.psid_hash
        if command is None:
            if not reading.expenses:
                return Reply(chat.hint_reply(list(reading.parsed.rejected) if reading.parsed else []))
            return Reply(chat.expenses_reply(list(reading.expenses), list(reading.parsed.rejected),
                                             list(record.day_totals), reading.today,
                                             edited=record.message.kind == "edit"))
        if command.name == "summary":
            with self.db.reading() as conn:
                computed = summary.summarize(conn, psid_hash, command.period, self.now(), self.zone)
            return Reply(self._rephrased(psid_hash, chat.summary_reply(computed)))
        if command.name == "help":
            return Reply(chat.HELP)
        if command.name == "undo":
            return Reply(chat.undo_reply(record.outcome["undone"]))
        if command.name == "delete_request":
            text, quick_replies = chat.delete_request_reply()
            return Reply(text, tuple(quick_replies))
        if command.name == "delete_confirm":
            return Reply(chat.deleted_reply(record.outcome["erased"]))
        return Reply(chat.KEPT)  # delete_cancel

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
