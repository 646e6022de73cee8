"""Replies on their way out: each person's in commit order, different people in parallel, batched under load.

The request thread only queues (`submit`). A few sender threads take work: at most one reply per
person in flight, so one person's replies go out in the order their messages were committed while
nobody waits behind someone else's. When several people's replies are ready, one sender takes up
to MAX_BATCH of them (one per person) and sends them as one Graph batch request; a lone reply goes
as a plain call. A reply whose wording waits for the model (a summary) goes alone, so only that
person's queue waits for it. Retryable failures are tried again after a backoff, the person's
later replies waiting behind; the rest are logged. Queues are capped per person and in total.

The reply side owns addressing: `Addresses` keeps, in memory only, the PSID to answer for each
psid_hash. The webhook remembers a delivery's senders there before handing the messages to
ingest (which sees only psid_hash), and `submit` takes each job's PSID from it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import heapq
import itertools
import logging
import math
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from expensebot import logs
from expensebot.ingest.write import Saved
from expensebot.logs import log_event
from expensebot.periodic import Periodic
from expensebot.replies.compose import Reads, Replier, Shown
from expensebot.replies.graph import MAX_BATCH, GraphClient, GraphError

logger = logging.getLogger(__name__)

SENDERS = 8
BACKOFF = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd and 4th attempt
MAX_PER_PERSON = 50  # beyond this a person's oldest queued reply is dropped
MAX_QUEUED = 10_000  # beyond this new replies are dropped (the rows are safe either way)
GRACE = 5.0  # on close, seconds to send what is queued
MAX_ADDRESSES = 50_000  # PSIDs remembered, the most recent senders'
CLOSE_WITHIN = 9.5  # close returns by then, whatever the Send API does
CALL_OVERRUN = 1.0  # on close, how long a call may run past the grace
POLL = 0.25  # an idle sender looks for retries that came due this often
MAX_RETRY_AFTER = 60.0  # the longest Retry-After waited out; a reply waits in memory and its person's behind it


class Addresses:
    """The PSID to answer for each psid_hash: in memory only, the `limit` most recent senders.

    Remembered by the webhook before the messages are written (or spooled), so a spooled
    message's reply can follow the replay; a job copies its PSID when it is queued and keeps
    it until the reply is done. Nothing here is ever written to a row, a file or a log line.
    """

    def __init__(self, limit: int = MAX_ADDRESSES):
        self.limit = limit
        self._psids: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def remember(self, recipients: Mapping[str, str]) -> None:
        """Keep these senders' PSIDs (psid_hash -> PSID), forgetting the least recent beyond the limit."""
        if not recipients:
            return
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


@dataclasses.dataclass
class Job:
    record: Saved
    psid: str | None  # in memory only (from Addresses); None after a restart (the spool keeps no PSIDs)
    upto: int | None = None  # the last expense id of its transaction: the day total is read as of then
    queued_at: float = 0.0  # the outbox's clock when it was queued: it goes within `gather` of then
    shown: Shown | None = None  # what the reply shows from the rows, when read at the commit
    message: dict | None = None  # composed once, kept for retries
    attempts: int = 0

    @property
    def psid_hash(self) -> str:
        return self.record.message.psid_hash

    @property
    def mid(self) -> str:
        return self.record.message.mid


class Outbox:
    """Queue, compose and send replies; `close()` is bounded whatever the Send API does.

    `graph` None: replies are composed and logged (`reply_logged`), not sent. An `executor` given
    runs the sending there, as soon as a reply is queued (tests pass one that runs it inline);
    otherwise `senders` threads of our own do, lingering so replies go out in batches: a reply
    waits up to `gather` seconds for others, and batches go at least `gather` apart unless a
    whole one (MAX_BATCH) is ready (`_linger`).
    """

    def __init__(self, replier: Replier, graph: GraphClient | None, *, senders: int = SENDERS,
                 executor: Executor | None = None, gather: float = 0.0, backoff: tuple[float, ...] = BACKOFF,
                 max_per_person: int = MAX_PER_PERSON, max_queued: int = MAX_QUEUED,
                 addresses: Addresses | None = None, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.replier = replier
        self.graph = graph
        self.addresses = addresses if addresses is not None else Addresses()
        self.executor = executor
        self.gather = gather
        self.backoff = backoff
        self.max_per_person = max_per_person
        self.max_queued = max_queued
        self.clock = clock
        self.sleep = sleep
        mutex = threading.RLock()
        self._lock = threading.Condition(mutex)  # the queues' state; notified as each reply is done
        # Lingering senders wait on this one, told only of what ends a linger (close, a whole
        # batch ready): woken at every reply done, they cost a batch a fifth more CPU (measured).
        self._linger_over = threading.Condition(mutex)
        self._queues: dict[str, collections.deque[Job]] = {}  # jobs not in flight, per person
        self._ready: dict[str, None] = {}  # people whose next reply can go now, oldest first
        self._busy: set[str] = set()  # people with a reply in flight or waiting to be retried
        self._retries: list[tuple[float, int, str]] = []  # (due, tie-break, psid_hash)
        self._seq = itertools.count()
        self._queued = 0
        self._closed = False
        self._send_until = math.inf
        self._closing = threading.Event()
        self._waking = False
        self._last_claim = -math.inf  # when the latest batch was taken (clock)
        self._senders = [] if executor else [
            Periodic(f"reply-sender-{i}", POLL, functools.partial(self._work, i)) for i in range(senders)]
        self._idle = set(range(len(self._senders)))

    def start(self) -> Outbox:
        for sender in self._senders:
            sender.start()
        return self

    def submit(self, saved: list[Saved], conn: sqlite3.Connection | None = None) -> None:
        """Queue a reply for every saved message (called after the commit); never blocks on sending.

        `conn`: the connection that committed them, still open: what the replies show from the
        rows is read on it now (else by the sender, on a connection of its own).
        """
        dropped = []
        # Saved together, in one transaction: each reply's day total counts them all, and no later one.
        upto = max((i for record in saved for i in record.expense_ids), default=None)
        shown = self.replier.shown(conn, saved, upto) if conn is not None else [None] * len(saved)
        queued_at = self.clock()
        with self._lock:
            for record, facts in zip(saved, shown):
                if self._closed:
                    dropped.append((record, "shutting down"))
                elif self._queued >= self.max_queued:
                    dropped.append((record, "reply queue full"))
                else:
                    dropped.extend(self._enqueue(Job(record, self.addresses.get(record.message.psid_hash), upto,
                                                     queued_at, facts)))
            wake = bool(self._ready) and not self._waking
            self._waking = self._waking or wake
            if len(self._ready) >= MAX_BATCH:  # a lingering sender takes a whole batch now
                self._linger_over.notify_all()
        for record, reason in dropped:
            self._log_dropped(record, reason)
        if wake:
            self._wake()

    def close(self, grace: float = GRACE, within: float = CLOSE_WITHIN) -> None:
        """Take no more replies, send what can go within `grace` s, log the rest as dropped; return within `within` s."""
        started = self.clock()
        with self._lock:
            self._closed = True
            self._send_until = started + grace
            self._linger_over.notify_all()  # a lingering sender sends now
        if self.graph is not None:  # a call in flight (even one the Send API hangs) ends by then
            self.graph.cutoff = started + min(grace + CALL_OVERRUN, within - CALL_OVERRUN)
        if self._senders:
            for sender in self._senders:
                sender.wake()
            with self._lock:
                self._lock.wait_for(lambda: not self._queues and not self._busy, timeout=grace)
                self._send_until = -math.inf
            self._closing.set()
            for sender in self._senders:
                sender.stop(timeout=max(started + within - self.clock(), 0.0))
        with self._lock:
            self._send_until = -math.inf
            left = [job for queue in self._queues.values() for job in queue]
            self._queues.clear()
            self._ready.clear()
            self._retries.clear()
            self._queued = 0
        for job in left:
            self._log_dropped(job.record, "shutting down")

    def _enqueue(self, job: Job) -> list[tuple[Saved, str]]:
        queue = self._queues.setdefault(job.psid_hash, collections.deque())
        dropped = []
        if len(queue) >= self.max_per_person:
            dropped.append((queue.popleft().record, "too many replies queued for this person"))
            self._queued -= 1
        queue.append(job)
        self._queued += 1
        if job.psid_hash not in self._busy:
            self._ready[job.psid_hash] = None
        return dropped

    def _wake(self) -> None:
        if self.executor is not None:
            self.executor.submit(self._work, None)
            return
        with self._lock:  # taken out of the idle set now, so the next wake-up goes to another sender
            sender = self._idle.pop() if self._idle else None
        if sender is not None:
            self._senders[sender].wake()

    def _work(self, sender: int | None) -> None:
        """Send until nothing is ready: on a sender thread (woken, or every POLL s), or on the executor."""
        with self._lock:
            self._idle.discard(sender)
        try:
            while True:
                with self._linger_over:  # woken by close() and by a whole batch
                    while self.gather and (linger := self._linger()) > 0:
                        self._linger_over.wait(linger)
                jobs = self._claim()
                if jobs:
                    self._deliver(jobs)
                elif sender is None and (due := self._next_retry()) is not None:
                    self.sleep(max(due - self.clock(), 0.0))  # on the executor: nobody else will retry
                else:
                    return
        except Exception:
            log_event(logger, "reply_sender_failed", level=logging.ERROR, traceback=traceback.format_exc())
        finally:
            with self._lock:
                # A reply queued while this sender was finishing found no idle sender: take it now.
                again = sender is not None and bool(self._ready) and self.clock() < self._send_until
                if sender is not None:
                    self._idle.add(sender)
                self._lock.notify_all()
            if again:
                self._senders[sender].wake()

    def _linger(self) -> float:
        """Seconds to wait so more replies join the batch.

        A batch goes when a whole one is ready, on close, or once its oldest reply has waited
        `gather` and the previous batch went `gather` ago. Without this, senders that keep up
        take each reply as it comes, alone, each with a read connection (and the GIL) of its own.
        """
        with self._lock:
            if not self._ready or len(self._ready) >= MAX_BATCH or self._closed:
                return 0.0
            oldest = min(self._queues[psid_hash][0].queued_at for psid_hash in self._ready)
            return max(oldest, self._last_claim) + self.gather - self.clock()

    def _next_retry(self) -> float | None:
        with self._lock:
            return self._retries[0][0] if self._retries and self.clock() < self._send_until else None

    def _claim(self) -> list[Job]:
        """Take the next reply of up to MAX_BATCH ready people; one that waits for the model goes alone."""
        with self._lock:
            self._waking = False
            now = self.clock()
            while self._retries and self._retries[0][0] <= now:
                _, _, psid_hash = heapq.heappop(self._retries)
                self._busy.discard(psid_hash)
                self._ready[psid_hash] = None
            if now >= self._send_until:
                return []
            jobs: list[Job] = []
            for psid_hash in list(itertools.islice(self._ready, 2 * MAX_BATCH)):
                head = self._queues[psid_hash][0]
                slow = head.message is None and self.replier.needs_model(head.record)
                if slow and jobs:
                    continue
                del self._ready[psid_hash]
                self._busy.add(psid_hash)
                jobs.append(self._queues[psid_hash].popleft())
                self._queued -= 1
                if slow or len(jobs) == MAX_BATCH:
                    break
            if jobs:
                self._last_claim = now
            more = bool(self._ready) and not self._waking and bool(self._idle)
            self._waking = self._waking or more
        if more:
            self._wake()
        return jobs

    def _deliver(self, jobs: list[Job]) -> None:
        # Each stretch's lines go out together (one write), but none waits on the Send API call.
        with logs.together():
            sendable, done = [], []
            with self.replier.reads() as reads:  # one read connection for the whole batch's wording
                for job in jobs:
                    (sendable if self._compose(job, reads) and self._addressable(job) else done).append(job)
            self._release(done)
        if not sendable:
            return
        try:
            if len(sendable) == 1:
                self.graph.send_message(sendable[0].psid, sendable[0].message)
                outcomes = [None]
            else:
                outcomes = self.graph.send_batch([(job.psid, job.message) for job in sendable])
        except GraphError as exc:  # the call failed as a whole: each reply on its own account
            outcomes = [exc] * len(sendable)
        except Exception:  # a bug, not the Send API: logged, and these people's later replies still go
            log_event(logger, "reply_send_crashed", level=logging.ERROR, replies=len(sendable),
                      traceback=traceback.format_exc())
            outcomes = [GraphError("sending failed")] * len(sendable)
        with logs.together():
            self._release([job for job, error in zip(sendable, outcomes) if self._settle(job, error)])

    def _compose(self, job: Job, reads: Reads) -> bool:
        """Word the reply (once); False when done with the job here (logged or failed: to release)."""
        try:
            if job.message is None:
                reply = self.replier.compose(job.record, reads, upto=job.upto, shown=job.shown)
                job.message = reply.as_message()
                if self.graph is None:
                    log_event(logger, "reply_logged", psid_hash=job.psid_hash, mid=job.mid, text=reply.text)
                    return False
            return True
        except Exception:
            log_event(logger, "reply_compose_failed", level=logging.ERROR, psid_hash=job.psid_hash, mid=job.mid,
                      traceback=traceback.format_exc())
            return False

    def _addressable(self, job: Job) -> bool:
        if job.psid is not None:
            return True
        log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=job.psid_hash, mid=job.mid,
                  code=None, reason="recipient not known after a restart")
        return False

    def _settle(self, job: Job, error: GraphError | None) -> bool:
        """Log the reply's outcome, or queue it again to retry; True when done with it (to release)."""
        if error is None:
            log_event(logger, "reply_sent", psid_hash=job.psid_hash, mid=job.mid)
        elif error.retryable and job.attempts < len(self.backoff) and self._retry(job, error.retry_after):
            return False
        elif error.retryable and self._closed:
            self._log_dropped(job.record, "shutting down")
        else:
            log_event(logger, "reply_failed", level=logging.WARNING, psid_hash=job.psid_hash, mid=job.mid,
                      code=error.code, subcode=error.subcode, reason=str(error))
        return True

    def _retry(self, job: Job, asked: float | None = None) -> bool:
        """Requeue the job first in its person's queue, due after its backoff or Graph's `asked` wait; False if closing."""
        due = self.clock() + max(self.backoff[job.attempts], min(asked or 0.0, MAX_RETRY_AFTER))
        with self._lock:
            if due >= self._send_until:
                return False
            job.attempts += 1
            self._queues.setdefault(job.psid_hash, collections.deque()).appendleft(job)
            self._queued += 1
            heapq.heappush(self._retries, (due, next(self._seq), job.psid_hash))
            self._lock.notify_all()
        return True

    def _release(self, jobs: list[Job]) -> None:
        """These people's replies are done: the next one of each (if any) is ready."""
        if not jobs:
            return
        with self._lock:
            for job in jobs:
                self._busy.discard(job.psid_hash)
                if self._queues.get(job.psid_hash):
                    self._ready[job.psid_hash] = None
                else:
                    self._queues.pop(job.psid_hash, None)
            self._lock.notify_all()

    def _log_dropped(self, record: Saved, reason: str) -> None:
        log_event(logger, "reply_dropped", level=logging.WARNING, psid_hash=record.message.psid_hash,
                  mid=record.message.mid, reason=reason)
