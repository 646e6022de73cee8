"""AI enrichment in the background: the jobs table is the queue, the database the only memory.

A poller thread takes due jobs from the database (woken after each commit, and every second),
never more than the pool can run, so 100,000 pending jobs cost no RAM. A failure is retried with
backoff, then the job stays `error` with its reason; while the model rests (ai.py), jobs wait
`pending`, untouched. With AI off they end `skipped` (docs/DURABILITY.md). Nothing here can touch
or delay a write.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from expensebot import store, times
from expensebot.ai import AiClient, AiError
from expensebot.db import Database
from expensebot.errors import describe, is_expected
from expensebot.limits import RateLimiter
from expensebot.logs import Incident, log_event
from expensebot.periodic import Periodic

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_AFTER_MS = 5_000  # then 10 s; after MAX_ATTEMPTS the job is `error`
SKIP_BATCH = 500


class Enricher:
    def __init__(self, db: Database, ai: AiClient | None, rate: RateLimiter, *, workers: int = 2,
                 poll_interval: float = 1.0, now_ms: Callable[[], int] = times.now_ms):
        self.db = db
        self.ai = ai
        self.rate = rate
        self.now_ms = now_ms
        self.capacity = workers * 2  # jobs in memory at once, running or queued for a worker
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="enrich")
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._poller = Periodic("enrich-poller", poll_interval, self.dispatch)
        # A locked or read-only database fails every job alike: one warning, not one per job.
        self._unavailable = Incident(logger, "enrich_unavailable", "enrich_available")

    def start(self) -> Enricher:
        self._poller.start()
        return self

    def stop(self) -> None:
        self._poller.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)  # the AI client is its creator's to close

    def wake(self) -> None:
        """Look for due jobs now (called after a commit); with AI off the timer's batches suffice."""
        if self.ai is not None and len(self._in_flight) < self.capacity and not self.ai.resting():
            self._poller.wake()

    def dispatch(self) -> int:
        """Hand due jobs to the pool (or skip them all, with AI off); return how many."""
        now = times.iso_utc(self.now_ms())
        if self.ai is None:
            return self._skip_all(now)
        if self.ai.resting():  # the timer looks again within a second
            return 0
        with self._lock:
            free = self.capacity - len(self._in_flight)
            if free <= 0:
                return 0
            with self.db.connection() as conn:
                due = [job["message_id"] for job in store.due_jobs(conn, now, free + len(self._in_flight))
                       if job["message_id"] not in self._in_flight][:free]
            self._in_flight.update(due)
        for message_id in due:
            self._pool.submit(self.run_job, message_id)
        return len(due)

    def run_job(self, message_id: int) -> None:
        """Enrich one message; contain every failure, leave durable state."""
        try:
            self._enrich(message_id)
            self._unavailable.ended()
        except Exception as exc:
            if is_expected(exc):
                self._unavailable.happened(describe(exc))
            else:  # a bug: one JSON line, the traceback in a field
                log_event(logger, "enrich_job_failed", level=logging.ERROR, message_id=message_id,
                          reason=describe(exc), traceback=traceback.format_exc())
        finally:
            with self._lock:
                self._in_flight.discard(message_id)
            self._poller.wake()

    def _enrich(self, message_id: int) -> None:
        with self.db.connection() as conn:
            job = store.job_message(conn, message_id)
            expenses = store.uncategorized_expenses(conn, message_id)
        if job is None or job["status"] != "pending":
            return
        if not expenses:
            return self._finish(message_id, job, "skipped", attempted=False)
        for expense in expenses:
            if self.ai.resting():  # left pending as it is: not this job's failure
                return
            wait = self.rate.wait(job["psid_hash"])
            if wait:
                return self._postpone(message_id, job, int(wait * 1000), "rate limited", attempted=False)
            try:
                category = self.ai.categorize(expense["description"])
            except AiError as exc:
                if job["attempts"] + 1 >= MAX_ATTEMPTS:
                    return self._finish(message_id, job, "error", str(exc))
                return self._postpone(message_id, job, RETRY_AFTER_MS * 2 ** job["attempts"], str(exc), attempted=True)
            with self.db.transaction() as conn:
                store.set_ai_category(conn, expense["id"], expense["description"], category)
        self._finish(message_id, job, "ok")

    def _postpone(self, message_id: int, job, delay_ms: int, reason: str, attempted: bool) -> None:
        now_ms = self.now_ms()
        with self.db.transaction() as conn:
            store.postpone_job(conn, message_id, times.iso_utc(now_ms + delay_ms), times.iso_utc(now_ms),
                               reason if attempted else None, attempted)
        # An AI failure (attempted) is a warning; waiting out the rate limit is routine.
        log_event(logger, "ai_postponed", level=logging.WARNING if attempted else logging.INFO,
                  psid_hash=job["psid_hash"], mid=job["mid"], reason=reason, seconds=round(delay_ms / 1000, 1))

    def _finish(self, message_id: int, job, status: str, reason: str | None = None,
                attempted: bool = True) -> None:
        with self.db.transaction() as conn:
            store.finish_job(conn, message_id, status, times.iso_utc(self.now_ms()), reason, attempted)
        fields = {"error": reason} if reason else {}
        log_event(logger, "ai_enriched", level=logging.WARNING if status == "error" else logging.INFO,
                  psid_hash=job["psid_hash"], mid=job["mid"], status=status, **fields)

    def _skip_all(self, now: str) -> int:
        """AI off: end every due job `skipped`, SKIP_BATCH per short transaction (webhooks take turns).
        All of them, not one batch a turn: more than SKIP_BATCH a second would leave a growing backlog."""
        skipped = 0
        while not self._poller.stopping:
            with self.db.transaction() as conn:
                jobs = store.skip_due_jobs(conn, now, SKIP_BATCH)
            for job in jobs:
                log_event(logger, "ai_enriched", psid_hash=job["psid_hash"], mid=job["mid"], status="skipped")
            skipped += len(jobs)
            if len(jobs) < SKIP_BATCH:
                break
        return skipped
