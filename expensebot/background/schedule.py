"""Recurring expenses in the background: each due date of each rule made an expense, once.

Every minute (and at start, and when a new rule was written) the scheduler makes what is due up to
today in each person's zone: so a rule's expense appears within a minute of the due day's local
midnight while the bot runs, and at start every date missed while it was stopped is caught up.
A catch-up is written in short transactions of BATCH dates, each started after a quiet moment
without webhook deliveries: messages are acknowledged as fast during a catch-up as without one. Each date
is keyed by UNIQUE (rule_id, due_date) (occurrences.py), so a crash in the middle makes nothing
twice and, after the restart, misses nothing.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Callable

from expensebot import occurrences, store, times
from expensebot.db import Database
from expensebot.logs import log_event
from expensebot.periodic import Background, Periodic
from expensebot.settings import Settings

logger = logging.getLogger(__name__)
BATCH = 10  # due dates made in one transaction
# Before each transaction a catch-up waits for QUIET seconds without a webhook delivery, GIVE_WAY at
# most: messages are never queued behind it, and under unbroken traffic it still moves (slowly).
QUIET = 0.005
GIVE_WAY = 0.1


class Schedule(Background):
    """Make recurring rules' due dates expenses (a `Periodic`, woken after a rule is written)."""

    def __init__(self, db: Database, defaults: Settings, *, interval: float = 60.0,
                 now: Callable[[], dt.datetime] = times.utc_now, on_created: Callable[[], None] = lambda: None):
        self.db = db
        self.defaults = defaults
        self.now = now
        self.on_created = on_created  # the exchange converts what could not be at once
        self.loop = Periodic("recurring", interval, self.turn)

    def turn(self) -> int:
        """Make every due date that is due now; return how many expenses were made."""
        now = self.now()
        # No zone is more than 14 hours ahead of UTC: no person's today is after UTC's tomorrow.
        horizon = (now.astimezone(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()
        with self.db.connection() as conn:
            waiting = collections.deque(store.rules_due_by(conn, horizon))
        created, rules = 0, len(waiting)
        while waiting and not self.loop.stopping:
            self.db.wait_quiet(QUIET, GIVE_WAY)
            with self.db.transaction() as conn:
                created += self._batch(conn, waiting, now)
        if created:
            log_event(logger, "recurring_created", expenses=created, rules=rules)
            self.on_created()
        return created

    def _batch(self, conn, waiting: collections.deque, now: dt.datetime) -> int:
        """Make up to BATCH due dates of the waiting rules, each read again in this transaction (it may
        have been stopped, taken back or erased since); drop a rule from `waiting` once it is done."""
        budget, created = BATCH, 0
        while waiting and budget > 0:
            rule = store.rule_by_id(conn, waiting[0])
            if rule is None:
                waiting.popleft()
                continue
            own = store.settings_of(conn, rule["psid_hash"], self.defaults)
            progress = occurrences.create_due(conn, rule, own, now, budget)
            budget -= progress.dates
            created += progress.created
            if progress.done:
                waiting.popleft()
        return created
