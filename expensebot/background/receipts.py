"""Receipt photos read in the background, one at a time: downloaded, read on this machine, proposed.

The photo's message was stored, and its draft (`receipt_drafts`, pending) written, before the
webhook answered. This thread claims the oldest waiting draft (a claim puts it back for RETRY, so a
crash or a restart in the middle leaves it to be read again), downloads it (receipts/download.py),
reads it (receipts/ocr.py, then receipts/fields.py) and keeps what it read, forgetting the image;
then it sends the person what it read with Save / Fix / Drop. One thread is the whole pool: a
reading takes 1-2 s of one core, and the other core stays with the webhook and the replies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import logging
import re
import time
from collections.abc import Callable

from expensebot import money, outbound, store, times
from expensebot.ai import AiClient, AiError
from expensebot.db import Database
from expensebot.logs import log_event
from expensebot.periodic import Background, Periodic
from expensebot.receipts import download, fields, ocr
from expensebot.replies import compose
from expensebot.replies.outbox import Outbox
from expensebot.settings import Settings

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # downloads (or crashes while reading) before a draft is `unreadable`
RETRY = dt.timedelta(seconds=30)
KEEP_DRAFTS = dt.timedelta(days=7)  # a draft not answered by then is dropped


class ReceiptReader(Background):
    """Read waiting receipt photos (a `Periodic`, woken when a photo is stored).

    The answer goes through `outbox` when it knows whom to answer; else (a restart forgot it) with the
    reply to the person's next message (ingest/write.py).
    """

    def __init__(self, db: Database, http: outbound.Client, hosts: tuple[str, ...], defaults: Settings,
                 outbox: Outbox, *, ai: AiClient | None = None,
                 interval: float = 5.0, now: Callable[[], dt.datetime] = times.utc_now):
        self.db = db
        self.http = http
        self.hosts = hosts
        self.defaults = defaults
        self.outbox = outbox
        self.ai = ai
        self.now = now
        self.reader = ocr.Reader()
        self.loop = Periodic("receipts", interval, self.turn)

    def turn(self) -> int:
        """Drop drafts nobody answered in 7 days, then read every waiting photo; return how many were read."""
        now = self.now()
        with self.db.transaction() as conn:
            store.drop_stale_drafts(conn, times.iso_from_datetime(now - KEEP_DRAFTS), times.iso_from_datetime(now))
        read = 0
        while not self.loop.stopping:
            now = self.now()
            with self.db.transaction() as conn:
                draft = store.claim_draft(conn, times.iso_from_datetime(now), times.iso_from_datetime(now + RETRY))
            if draft is None:
                return read
            self.read(draft)
            read += 1
        return read

    def read(self, draft) -> None:
        """Download and read one claimed draft, keep what was read, and tell the person."""
        started = time.monotonic()
        if draft["attempts"] > MAX_ATTEMPTS:  # claimed that often and never finished: a crash each time
            return self._finish(draft, None, "the photo could not be read", started)
        try:
            data = download.download(self.http, draft["url"], self.hosts)
        except download.Refused as exc:
            return self._finish(draft, None, str(exc), started)
        except outbound.OutboundError as exc:
            if draft["attempts"] >= MAX_ATTEMPTS:
                return self._finish(draft, None, "the photo could not be downloaded", started)
            with self.db.transaction() as conn:
                store.postpone_draft(conn, draft["id"], times.iso_from_datetime(self.now() + RETRY * draft["attempts"]),
                                     f"download failed: {exc}")
            return None
        try:
            lines = self.reader.lines(data)
        except ocr.Unreadable as exc:
            return self._finish(draft, None, str(exc), started)
        finally:
            del data  # the image is not kept: only the text read from it
        with self.db.connection() as conn:
            own = store.settings_of(conn, draft["psid_hash"], self.defaults)
        today = times.local_date(times.ms_from_iso(draft["sent_at"]), own.zone)
        found = fields.read_fields(lines, default_currency=own.currency, today=today)
        if found.total_minor is None:
            return self._finish(draft, None, "no total found: it does not look like a receipt", started)
        if self.ai is not None:
            found = self._checked_by_model(found, lines, today)
        return self._finish(draft, found, None, started, text="\n".join(lines))

    def _checked_by_model(self, found: fields.Fields, lines: list[str], today: dt.date) -> fields.Fields:
        """With AI on, the model may pick the fields from the text read (never the image); what it
        says is taken only where that exact amount or date is in the text. Failing: the rules'."""
        text = "\n".join(lines)
        try:
            answer = self.ai.read_receipt(text)
        except AiError as exc:
            log_event(logger, "ai_receipt_failed", level=logging.WARNING, reason=str(exc))
            return found
        return checked(found, answer, text, today)

    def _finish(self, draft, found: fields.Fields | None, reason: str | None, started: float,
                text: str | None = None) -> None:
        """Keep what was read (or why nothing was), then send it to the person."""
        now = times.iso_from_datetime(self.now())
        known = self.outbox.addresses.get(draft["psid_hash"]) is not None
        with self.db.transaction() as conn:
            if found is not None:
                kept = store.propose_draft(conn, draft["id"], found, text or "", now, now if known else None)
            else:
                kept = store.draft_unreadable(conn, draft["id"], reason, now, now if known else None)
            row = store.draft(conn, draft["id"], draft["psid_hash"])
        if not kept:  # erased, or dropped, while it was being read
            return
        log_event(logger, "receipt_read", psid_hash=draft["psid_hash"], mid=draft["mid"], status=row["status"],
                  reason=reason, seconds=round(time.monotonic() - started, 2))
        if not (known and self.outbox.send(draft["psid_hash"], draft["mid"], times.ms_from_iso(draft["sent_at"]),
                                           compose.receipt_answer(dict(row)).as_message())):
            log_event(logger, "receipt_not_told", level=logging.WARNING, psid_hash=draft["psid_hash"],
                      mid=draft["mid"], reason="whom to answer is not known since a restart: told in the next reply")


def checked(found: fields.Fields, answer: dict, text: str, today: dt.date) -> fields.Fields:
    """The rules' fields, with each of the model's that the text bears out: a total printed in it (as
    23.45 or 23,45), a date printed in it in a receipt's format, a known currency code, a merchant
    that is one of its lines' words."""
    changes = {}
    currency = answer.get("currency")
    currency = currency.upper() if isinstance(currency, str) and money.is_currency(currency.upper()) else None
    total = answer.get("total")
    if isinstance(total, str | int | float) and (amount := _printed_amount(str(total), text)) is not None:
        digits = money.minor_digits(currency or found.currency)
        changes["total_minor"] = int(amount.scaleb(digits).to_integral_value())
        if currency:
            changes["currency"] = currency
    day = answer.get("date")
    try:
        day = dt.date.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        day = None
    if day is not None and day <= today and _date_printed(day, text):
        changes["date"] = day
    merchant = answer.get("merchant")
    if isinstance(merchant, str) and merchant.strip() and merchant.strip().lower() in text.lower():
        changes["merchant"] = merchant.strip()[:60]
    return dataclasses.replace(found, **changes)


def _printed_amount(total: str, text: str) -> decimal.Decimal | None:
    """The total as a number when the text prints it, with a decimal point or comma; else None."""
    if not re.fullmatch(r"[0-9]{1,9}([.,][0-9]{1,3})?", total.strip()):
        return None
    whole, _, cents = total.strip().replace(",", ".").partition(".")
    forms = {f"{whole}.{cents}", f"{whole},{cents}"} if cents else {whole}
    if not any(re.search(rf"(?<![0-9.,]){re.escape(form)}(?![0-9])", text) for form in forms):
        return None
    return decimal.Decimal(f"{whole}.{cents}" if cents else whole)


def _date_printed(day: dt.date, text: str) -> bool:
    """Whether the text prints this date in one of the numeric forms receipts use."""
    forms = {day.isoformat(), f"{day:%d.%m.%Y}", f"{day:%d.%m.%y}", f"{day:%d/%m/%Y}", f"{day:%m/%d/%Y}",
             f"{day:%d/%m/%y}", f"{day:%m/%d/%y}", f"{day:%d-%m-%Y}", f"{day:%Y/%m/%d}"}
    return any(form in text for form in forms)
