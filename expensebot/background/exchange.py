"""Exchange rates in the background: fetch the ECB's files, keep them in `rates`, convert what waits.

Nothing here is on the webhook path. A write converts its own new expenses from the table at once
(a lookup); what it cannot convert yet (no rate for its day) waits with `rate_source` NULL, and
this thread converts it once the rate arrives. First start (the table empty): the full history;
afterwards the last 90 days, at start and daily after the ECB publishes (about 16:00 CET). A
failed fetch changes nothing, is logged, and is tried again after a backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Callable

from expensebot import rates, store, times
from expensebot.db import Database
from expensebot.logs import log_event
from expensebot.outbound import Client, OutboundError
from expensebot.periodic import Background, Periodic
from expensebot.settings import Settings

logger = logging.getLogger(__name__)

HISTORY, RECENT = "eurofxref-hist.zip", "eurofxref-hist-90d.xml"
DEADLINE = {HISTORY: 60.0, RECENT: 20.0}  # whole-call: connect, headers and body
MAX_BYTES = {HISTORY: 16 << 20, RECENT: 4 << 20}
BACKOFF = (30, 60, 300, 900, 1800, 3600)  # seconds after the 1st, 2nd, ... failure in a row
PUBLISHED = dt.time(16, 30)  # the ECB publishes around 16:00 CET: fetch after this, Frankfurt time
FRANKFURT = zoneinfo.ZoneInfo("Europe/Berlin")
BATCH = 500  # expenses converted in one transaction: a write never waits long for the lock


class Exchange(Background):
    """Keep the rates table fresh and convert expenses that wait (woken after a write left some unconverted,
    or a currency changed)."""

    def __init__(self, db: Database, http: Client | None, url: str, defaults: Settings, *,
                 interval: float = 60.0, now: Callable[[], dt.datetime] = times.utc_now):
        self.db = db
        self.http = http
        self.url = url.rstrip("/")  # '' or 'off': never fetch (the table is used as it is)
        self.defaults = defaults
        self.now = now
        self.next_fetch = 0.0  # monotonic; 0: at the first turn
        self.failures = 0
        self.default_checked = False
        self.loop = Periodic("exchange", interval, self.turn)

    def turn(self) -> None:
        if not self.default_checked:
            self._follow_the_default_currency()
            self.default_checked = True
        if self.fetching and time.monotonic() >= self.next_fetch:
            self.refresh()
        self.convert_waiting()

    @property
    def fetching(self) -> bool:
        return self.http is not None and self.url not in ("", "off")

    def refresh(self) -> int | None:
        """Fetch and keep the ECB's rates; return how many rates were new or changed (None: failed)."""
        with self.db.connection() as conn:
            name = RECENT if rates.newest_day(conn) else HISTORY
        started = time.monotonic()
        try:
            body = self.http.request("GET", f"{self.url}/{name}", timeout=DEADLINE[name], max_bytes=MAX_BYTES[name],
                                     cutoff=lambda: time.monotonic() if self.loop.stopping else float("inf"))
            found = rates.parse_history(body) if name == HISTORY else rates.parse_daily(body)
        except (OutboundError, rates.RatesError) as exc:
            self.failures += 1
            wait = BACKOFF[min(self.failures, len(BACKOFF)) - 1]
            self.next_fetch = time.monotonic() + wait
            self._note(name, f"failed: {exc}", None, 0)
            log_event(logger, "rates_failed", level=logging.WARNING, file=name, reason=str(exc), retry_in=wait)
            return None
        with self.db.transaction() as conn:
            changed = rates.keep(conn, found)
            newest, count = conn.execute("SELECT max(day), count(*) FROM rates").fetchone()
        self.failures = 0
        self.next_fetch = time.monotonic() + self._until_published()
        self._note(name, "ok", newest, changed)
        log_event(logger, "rates_loaded", file=name, newest=newest, count=count, changed=changed,
                  seconds=round(time.monotonic() - started, 2))
        return changed

    def convert_waiting(self) -> int:
        """Convert every expense waiting for a rate, or converted provisionally, that now can be."""
        converted, after = 0, None
        while not self.loop.stopping:
            with self.db.transaction() as conn:
                waiting = store.expenses_to_convert(conn, after, BATCH)
                if not waiting:
                    break
                converted += rates.convert_expenses(conn, [i for _, i in waiting], self.defaults, self.now())
            after = waiting[-1]
        if converted:
            log_event(logger, "expenses_converted", expenses=converted)
        return converted

    def _follow_the_default_currency(self) -> None:
        """EXPENSEBOT_CURRENCY changed since the last run: the expenses of everyone who never set
        their own currency are converted again, to the new one (checked once, at start)."""
        with self.db.connection() as conn:
            changed = store.default_currency_changed(conn, self.defaults.currency)
        if changed:
            with self.db.transaction() as conn:
                count = store.convert_again_by_default(conn, self.defaults.currency)
            log_event(logger, "conversions_restarted", currency=self.defaults.currency, expenses=count)

    def _until_published(self) -> float:
        """Seconds until the next fetch: today's publication if it is still to come, else tomorrow's."""
        now = self.now().astimezone(FRANKFURT)
        at = dt.datetime.combine(now.date(), PUBLISHED, FRANKFURT)
        if now >= at:
            at = dt.datetime.combine(now.date() + dt.timedelta(days=1), PUBLISHED, FRANKFURT)
        return (at - now).total_seconds()

    def _note(self, name: str, outcome: str, newest: str | None, changed: int) -> None:
        try:
            with self.db.transaction() as conn:
                store.note_rate_refresh(conn, times.iso_from_datetime(self.now()), f"{self.url}/{name}",
                                        outcome[:300], newest, changed)
        except Exception as exc:  # the log line says it all the same
            log_event(logger, "rates_note_failed", level=logging.WARNING, reason=str(exc))

