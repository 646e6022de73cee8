"""JSON-line logs: one object per line on stdout, no payloads, PSIDs or secrets (events: docs/REFERENCE.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator

from expensebot import times


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields) -> None:
    """Log one structured event: {"event": event, **fields}."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


_ENCODER = json.JSONEncoder(default=str)  # json.dumps(default=...) builds one per call
_together = threading.local()  # .depth > 0: this thread's lines wait for one write at the end


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Write the lines this thread logs inside the block with one write, at its end (a delivery's, a batch's).

    Each flush is a system call that also hands the GIL to another thread and waits to get it
    back; a delivery of one message logs two lines, a batch of replies fifty.
    """
    _together.depth = getattr(_together, "depth", 0) + 1
    try:
        yield
    finally:
        _together.depth -= 1
        if not _together.depth:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, JsonLines):
                    handler.flush()


class JsonLines(logging.StreamHandler):
    """A StreamHandler whose flush waits for the end of a `together()` block on this thread."""

    def flush(self) -> None:
        if not getattr(_together, "depth", 0):
            super().flush()


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; structured events keep their own fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": _iso(record.created), "level": record.levelname.lower()}
        fields = getattr(record, "fields", None)
        if fields is not None:
            line["event"] = record.msg
            line.update(fields)
        else:
            line["event"] = "log"
            line["logger"] = record.name
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


class EverySoOften(logging.Filter):
    """Let a noisy record through at most once per interval, counting what it held back.

    waitress warns "Task queue depth is N" on every request while all threads are busy:
    under a burst that is thousands of lines a second saying the same thing.
    """

    def __init__(self, interval: float = 60.0, clock=time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._next = 0.0
        self._held_back = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self.clock()
            if now < self._next:
                self._held_back += 1
                return False
            self._next = now + self.interval
            if self._held_back:
                record.msg = f"{record.msg} ({self._held_back} similar lines held back)"
                self._held_back = 0
            return True


class Incident:
    """A condition that lasts (a locked database, a full spool): logged when it starts and ends.

    `happened` logs one warning the first time, then only counts; `ended` logs one line with the
    count and how long it lasted. Never a traceback: these are expected conditions, not bugs.
    """

    def __init__(self, logger: logging.Logger, started_event: str, ended_event: str,
                 level: int = logging.WARNING, clock=time.monotonic):
        self.logger = logger
        self.level = level
        self.started_event = started_event
        self.ended_event = ended_event
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._count = 0
        self._reason = ""

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def happened(self, reason: str) -> None:
        with self._lock:
            self._count += 1
            if self._since is not None:
                return
            self._since, self._reason = self.clock(), reason
        log_event(self.logger, self.started_event, level=self.level, reason=reason)

    def ended(self) -> None:
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            seconds, count, reason = self.clock() - self._since, self._count, self._reason
            self._since, self._count = None, 0
        log_event(self.logger, self.ended_event, level=logging.WARNING, reason=reason,
                  count=count, seconds=round(seconds, 3))


class HideReportTokens(logging.Filter):
    """Cut report links' tokens out of a line before it is written.

    waitress names the request path in a few lines ("Client disconnected while serving /report/…",
    "Exception while serving …"), and under /report/ the path holds the link's bearer token.
    """

    _PATH = re.compile(r"/report/(?!style\.css(?![^/\s?#'\"]))[^/\s?#'\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "fields", None) is None:
            message = record.getMessage()
            hidden = self._PATH.sub("/report/<token>", message)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


def configure(stream=None, level: int = logging.INFO) -> None:
    """Send every log record to stream (stdout) as JSON lines."""
    # Nothing reads a record's caller, thread or process: don't collect them
    # ("Optimization" in the logging HOWTO; findCaller's stack walk is most of a LogRecord).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = JsonLines(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(HideReportTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    queue_logger = logging.getLogger("waitress.queue")
    queue_logger.filters[:] = [EverySoOften()]


def _iso(created: float) -> str:
    return times.iso_utc(int(created * 1000))
