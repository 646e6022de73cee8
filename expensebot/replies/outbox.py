"""Replies on their way out: per-person queues, one dispatcher, a small pool of senders (docs/REPLIES.md).

`Addresses` keeps, in memory only, the PSID to answer for each psid_hash: ingest sees only psid_hash.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import threading
import time
import traceback
from collections.abc import Mapping

from expensebot import store, times
from expensebot.db import Database
from expensebot.identity import Sealer
from expensebot.ingest.write import Saved
from expensebot.logs import log_event
from expensebot.periodic import Periodic
from expensebot.replies.compose import Replier
from expensebot.replies.graph import MAX_BATCH, GraphClient, GraphError

logger = logging.getLogger(__name__)

SENDERS = 4  # batches in flight at once
# How often the dispatcher looks for replies to send (and retries that came due). A person does
# not notice a twentieth of a second; under load, the replies of that long go in one batch.
TICK = 0.05
BACKOFF = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd and 4th attempt
MAX_PER_PERSON = 50  # beyond this a person's oldest queued reply is dropped
MAX_QUEUED = 10_000  # beyond this new replies are dropped (the rows are safe either way)
GRACE = 5.0  # on close, seconds to send what is queued
CLOSE_WITHIN = 9.5  # close returns by then, whatever the Send API does
CALL_OVERRUN = 1.0  # on close, how long a call may run past the grace
MAX_ADDRESSES = 50_000  # PSIDs remembered, the most recent senders'
WINDOW_MS = 24 * 3600 * 1000  # the Send API takes a RESPONSE only this long after the person's message
MAX_RETRY_AFTER = 60.0  # the longest Retry-After waited out; a reply waits in memory and its person's behind it


class Addresses:
    """The PSID to answer for each psid_hash: in memory only, the `limit` most recent senders."""

    def __init__(self, limit: int = MAX_ADDRESSES):
        self.limit = limit
        self._psids: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def remember(self, recipients: Mapping[str, str]) -> None:
        """Keep these senders' PSIDs (psid_hash -> PSID), forgetting the least recent beyond the limit."""
        with self._lock:
            for psid_hash, psid in recipients.items():
                self._psids[psid_hash] = psid
                self._psids.move_to_end(psid_hash)
            while len(self._psids) > self.limit:
                self._psids.popitem(last=False)

    def get(self, psid_hash: str) -> str | None:
        with self._lock:
            return self._psids.get(psid_hash)

    def __len__(self) -> int:
        return len(self._psids)


@dataclasses.dataclass(eq=False)
class Job:
    psid_hash: str
    mid: str
    sent_ms: int  # when the message it answers was sent
    psid: str | None  # in memory only; None after a restart when nobody kept it
    record: Saved | None = None  # what to word the reply from; None once `message` is kept across a stop
    message: dict | None = None  # the Send API message, composed once and kept for retries
    attempts: int = 0
    due: float = 0.0  # the outbox clock's time it may go (a retry's backoff)


class Outbox:
    """Queue, word and send replies; `close()` is bounded whatever the Send API does.

    `graph` None: replies are worded and logged (`reply_logged`), not sent. `db` is where the
    replies are read and, with a `sealer`, where replies still queued at a stop are kept.
    """

    def __init__(self, replier: Replier, graph: GraphClient | None, db: Database, *,
                 sealer: Sealer | None = None, backoff: tuple[float, ...] = BACKOFF):
        self.replier = replier
        self.graph = graph
        self.db = db
        self.sealer = sealer
        self.backoff = backoff
        self.senders = SENDERS
        self.max_per_person = MAX_PER_PERSON
        self.max_queued = MAX_QUEUED
        self.addresses = Addresses()
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[Job]] = {}  # replies not yet claimed, per person
        self._busy: set[str] = set()  # people with a reply in flight
        self._queued = 0
        self._in_flight = 0  # batches handed to the pool and not yet settled
        self._closed = False
        self._kept: list[Job] = []  # retryable at the stop: kept for the restart
        self._pool = concurrent.futures.ThreadPoolExecutor(SENDERS, thread_name_prefix="reply-sender")
        self._dispatcher = Periodic("reply-dispatcher", TICK, self.dispatch)

    def start(self) -> Outbox:
        """Queue again the replies kept at the last stop, then start dispatching."""
        if self.sealer is not None:
            self._restore()
        self._dispatcher.start()
        return self

    def submit(self, saved: list[Saved]) -> None:
        """Queue a reply for every saved message (called after the commit); never blocks on sending."""
        self._enqueue([Job(record.message.psid_hash, record.message.mid, record.message.sent_ms,
                           self.addresses.get(record.message.psid_hash), record) for record in saved])

    def send(self, psid_hash: str, mid: str, sent_ms: int, message: dict) -> bool:
        """Queue a message worded elsewhere (a receipt that was read) as a reply to the person's message
        `mid`; False when their PSID is not known here (kept in memory only: a restart forgot it)."""
        psid = self.addresses.get(psid_hash)
        if psid is None:
            return False
        self._enqueue([Job(psid_hash, mid, sent_ms, psid, message=message)])
        return True

    def dispatch(self) -> None:
        """Hand batches of ready replies to free senders (the dispatcher's turn)."""
        while True:
            with self._lock:
                if self._in_flight >= self.senders:
                    return
                batch = self._claim()
                if not batch:
                    return
                self._in_flight += 1
            self._pool.submit(self._send, batch)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued reply has been sent or given up, at most `timeout` s; tell whether."""
        ends = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._queued and not self._in_flight:
                    return True
            if time.monotonic() >= ends:
                return False
            self._dispatcher.wake()
            time.sleep(0.005)

    def close(self) -> None:
        """Take no more replies, send what can go in GRACE, keep the rest for the restart; back within CLOSE_WITHIN."""
        started = time.monotonic()
        with self._lock:
            self._closed = True
        if self.graph is not None:  # a call in flight (even one the Send API hangs) ends by then
            self.graph.cutoff = started + min(GRACE + CALL_OVERRUN, CLOSE_WITHIN - CALL_OVERRUN)
        self.drain(GRACE)
        self._dispatcher.stop(timeout=max(started + CLOSE_WITHIN - time.monotonic(), 0.0))
        self._pool.shutdown(wait=True)
        with self._lock:
            # Those in flight at the stop went before those queued behind them.
            left = self._kept + [job for queue in self._queues.values() for job in queue]
            self._queues.clear()
            self._queued, self._kept = 0, []
        self._keep(left)

    def _enqueue(self, jobs: list[Job], retry: bool = False) -> None:
        """Queue jobs at the back of their person's queue (a retry: at the front); closed, keep a retry."""
        dropped = []
        with self._lock:
            for job in jobs:
                if self._closed:
                    if retry:
                        self._kept.append(job)
                    else:
                        dropped.append((job, "shutting down"))
                    continue
                if self._queued >= self.max_queued:
                    dropped.append((job, "reply queue full"))
                    continue
                queue = self._queues.setdefault(job.psid_hash, collections.deque())
                if len(queue) >= self.max_per_person:
                    dropped.append((queue.popleft(), "too many replies queued for this person"))
                    self._queued -= 1
                queue.appendleft(job) if retry else queue.append(job)
                self._queued += 1
            whole_batch = len(self._queues) - len(self._busy) >= MAX_BATCH
        for job, reason in dropped:
            self._log_dropped(job, reason)
        if whole_batch:
            self._dispatcher.wake()

    def _claim(self) -> list[Job]:
        """Take the next reply of up to MAX_BATCH ready people (lock held); one that waits for the model goes alone."""
        now = time.monotonic()
        batch: list[Job] = []
        for psid_hash, queue in self._queues.items():
            head = queue[0]
            if psid_hash in self._busy or head.due > now:
                continue
            alone = head.record is not None and head.message is None and self.replier.needs_model(head.record)
            if alone and batch:
                continue
            batch.append(head)
            if alone or len(batch) == MAX_BATCH:
                break
        for job in batch:
            queue = self._queues[job.psid_hash]
            queue.popleft()
            if not queue:
                del self._queues[job.psid_hash]
            self._busy.add(job.psid_hash)
            self._queued -= 1
        return batch

    def _send(self, jobs: list[Job]) -> None:
        """Word, send and settle one batch (on a sender thread)."""
        try:
            self._word(jobs, self.replier)
            if self.graph is None:  # worded and logged, not sent
                return
            for job in jobs:
                if job.message is not None and job.psid is None:
                    log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=job.psid_hash, mid=job.mid,
                              code=None, reason="recipient not known after a restart")
            sendable = [job for job in jobs if job.message is not None and job.psid is not None]
            if sendable:
                for job, error in zip(sendable, self._deliver(sendable)):
                    self._settle(job, error)
        except Exception:  # a bug, not the Send API: logged, and these people's later replies still go
            log_event(logger, "reply_sender_failed", level=logging.ERROR, traceback=traceback.format_exc())
        finally:
            with self._lock:
                self._busy.difference_update(job.psid_hash for job in jobs)
                self._in_flight -= 1

    def _word(self, jobs: list[Job], replier: Replier) -> None:
        """Word, on one read connection, each reply not worded yet (a retry keeps its words); log those that fail."""
        wording = [job for job in jobs if job.message is None]
        if not wording:
            return
        try:
            with self.db.connection() as conn:
                for job in wording:
                    try:
                        reply = replier.compose(job.record, conn)
                    except Exception:
                        log_event(logger, "reply_compose_failed", level=logging.ERROR, psid_hash=job.psid_hash,
                                  mid=job.mid, traceback=traceback.format_exc())
                        continue
                    job.message = reply.as_message()
                    if self.graph is None:
                        log_event(logger, "reply_logged", psid_hash=job.psid_hash, mid=job.mid, text=reply.text)
        except Exception as exc:  # the database cannot be read: these replies cannot be worded
            for job in wording:
                if job.message is None:
                    log_event(logger, "reply_compose_failed", level=logging.ERROR, psid_hash=job.psid_hash,
                              mid=job.mid, reason=str(exc))

    def _deliver(self, jobs: list[Job]) -> list[GraphError | None]:
        """Send the batch: one call for one reply, a batch request for several; per job, None or its error."""
        try:
            if len(jobs) == 1:
                self.graph.send_message(jobs[0].psid, jobs[0].message)
                return [None]
            return self.graph.send_batch([(job.psid, job.message) for job in jobs])
        except GraphError as exc:  # the call failed as a whole: each reply on its own account
            return [exc] * len(jobs)

    def _settle(self, job: Job, error: GraphError | None) -> None:
        """Log the reply's outcome, or queue it again to retry."""
        if error is None:
            log_event(logger, "reply_sent", psid_hash=job.psid_hash, mid=job.mid)
            return
        if error.retryable and job.attempts < len(self.backoff):
            wait = max(self.backoff[job.attempts], min(error.retry_after or 0.0, MAX_RETRY_AFTER))
            job.attempts += 1
            job.due = time.monotonic() + wait
            self._enqueue([job], retry=True)
            return
        log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=job.psid_hash, mid=job.mid,
                  code=error.code, subcode=error.subcode, reason=str(error))

    def _keep(self, jobs: list[Job]) -> None:
        """Keep unsent replies for the restart (PSID sealed), or log them dropped; worded without the model
        (a stop waits for no AI call). A reply to a message its person has erased since is not kept."""
        keepable = [job for job in jobs if job.psid is not None and self.sealer is not None]
        for job in jobs:
            if job not in keepable:
                self._log_dropped(job, "shutting down")
        if not keepable:
            return
        self._word(keepable, self.replier.without_model())
        try:
            now = times.iso_utc(times.now_ms())
            with self.db.transaction() as conn:
                kept = store.save_pending_replies(conn, [
                    (job.psid_hash, job.mid, self.sealer.seal(job.psid, job.psid_hash), json.dumps(job.message),
                     times.iso_utc(job.sent_ms), now) for job in keepable if job.message is not None])
        except Exception as exc:
            for job in keepable:
                self._log_dropped(job, f"shutting down, and could not be kept: {exc}")
            return
        log_event(logger, "replies_kept", replies=kept)

    def _restore(self) -> None:
        """Queue the replies kept at the last stop whose 24-hour window is still open."""
        try:
            with self.db.transaction() as conn:
                rows = store.take_pending_replies(conn)
        except Exception as exc:
            log_event(logger, "replies_not_restored", level=logging.WARNING, reason=str(exc))
            return
        now_ms, jobs = times.now_ms(), []
        for row in rows:
            job = Job(row["psid_hash"], row["mid"], times.ms_from_iso(row["sent_at"]),
                      self.sealer.open(row["recipient"], row["psid_hash"]), message=json.loads(row["message"]))
            if now_ms - job.sent_ms >= WINDOW_MS:
                self._log_dropped(job, "the person's 24-hour window closed while the bot was stopped")
            else:
                jobs.append(job)
        self._enqueue(jobs)
        if rows:
            log_event(logger, "replies_restored", replies=len(jobs))

    def _log_dropped(self, job: Job, reason: str) -> None:
        log_event(logger, "reply_dropped", level=logging.WARNING, psid_hash=job.psid_hash, mid=job.mid,
                  reason=reason)
