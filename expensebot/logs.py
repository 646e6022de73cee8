"""JSON-line logs: one object per line on stdout, no payloads, PSIDs or secrets (events: docs/REFERENCE.md).

A structured event is a record whose message is the event name and whose `fields` are the rest of
the line (`log_event`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time

from expensebot import times


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields) -> None:
    """Log one structured event: {"event": event, **fields}."""
    logger.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; structured events keep their own fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": times.iso_utc(int(record.created * 1000)), "level": record.levelname.lower()}
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
        return json.dumps(line, default=str)


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


class Incident:
    """A condition that lasts (a locked database, a full spool, a failing task): logged when it starts and ends.

    `happened` logs one line the first time, then only counts; `ended` logs one line with the
    count and how long it lasted; `since` says when it began (monotonic), None when it is not on.
    """

    def __init__(self, logger: logging.Logger, started_event: str, ended_event: str, level: int = logging.WARNING):
        self.logger = logger
        self.level = level
        self.started_event = started_event
        self.ended_event = ended_event
        self._lock = threading.Lock()
        self.since: float | None = None
        self._count = 0
        self._reason = ""

    def happened(self, reason: str, level: int | None = None, event: str | None = None, **fields) -> None:
        """Note the condition; the first time, log it (as `event` and `level` when given)."""
        with self._lock:
            self._count += 1
            if self.since is not None:
                return
            self.since, self._reason = time.monotonic(), reason
        log_event(self.logger, event or self.started_event, level=level or self.level, reason=reason, **fields)

    def ended(self, **fields) -> None:
        with self._lock:
            if self.since is None:
                return
            seconds, count, reason = time.monotonic() - self.since, self._count, self._reason
            self.since, self._count = None, 0
        log_event(self.logger, self.ended_event, level=logging.WARNING, reason=reason,
                  count=count, seconds=round(seconds, 3), **fields)


def configure(stream=None) -> None:
    """Send every log record to stream (stdout) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(HideReportTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("waitress.queue").filters[:] = [EverySoOften()]
