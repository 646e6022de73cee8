"""JSON-line logs: one object per line on stdout, no payloads, PSIDs or secrets (events: docs/REFERENCE.md)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator

from expensebot import times
from expensebot.jsontext import dumps_with


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields) -> None:
    """Log one structured event: {"event": event, **fields}."""
    if not logger.isEnabledFor(level):
        return
    handler = _sole_handler(logger)
    if handler is None:
        logger.log(level, event, extra={"fields": fields})
    else:
        handler.write(_line(time.time(), logging.getLevelName(level).lower(), event, fields), logger, level)


def _line(created: float, level: str, event: str, fields: dict) -> str:
    return _encode({"ts": _iso(created), "level": level, "event": event, **fields})


def _sole_handler(logger: logging.Logger) -> JsonLines | None:
    """configure()'s handler when it alone would see this logger's records, unfiltered; else None.

    Then a line is written without building a LogRecord and passing it through the logging
    tree (half the cost of a line). Anything else listening (pytest's caplog, a handler an
    embedding program adds) gets records the usual way.
    """
    handler = _configured
    handlers = logging.root.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler or logging.root.filters:
        return None
    node = logger
    while node is not logging.root:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    return handler


_encode = dumps_with(default=str)  # json.dumps(line, default=str), a kept encoder


_together = threading.local()  # .depth > 0: this thread's lines wait for one write at the end (.held)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Write the lines this thread logs inside the block with one write, at its end (a delivery's, a batch's).

    Each flush is a system call that also hands the GIL to another thread and waits to get it
    back; a delivery of one message logs two lines, a batch of replies fifty. The lines of our
    handler (JsonLines) are held until then and written at once, in the order they were logged.
    """
    if not getattr(_together, "depth", 0):
        _together.held = []
    _together.depth = getattr(_together, "depth", 0) + 1
    try:
        yield
    finally:
        _together.depth -= 1
        if not _together.depth:
            held, _together.held = _together.held, []
            for handler, lines in itertools.groupby(held, key=lambda pair: pair[0]):
                handler.write_lines([line for _, line in lines])
            for handler in logging.getLogger().handlers:
                if isinstance(handler, JsonLines):
                    try:
                        handler.flush()
                    except Exception:  # as emit(): a broken stream is reported on stderr, never raised
                        handler.handleError(logging.makeLogRecord({"msg": "flushing the lines logged together"}))


class JsonLines(logging.StreamHandler):
    """A StreamHandler that holds a `together()` block's lines and writes them at its end, with one flush."""

    def flush(self) -> None:
        if not getattr(_together, "depth", 0):
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(_together, "depth", 0):
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:  # as StreamHandler.emit
            self.handleError(record)
            return
        _together.held.append((self, line))

    def write(self, line: str, logger: logging.Logger, level: int) -> None:
        """Write one formatted line (log_event's direct path), as emit() would."""
        if getattr(_together, "depth", 0):
            _together.held.append((self, line))
            return
        try:
            with self.lock:
                self.stream.write(line + self.terminator)
                self.flush()
        except Exception:  # as emit(): a broken stream is reported on stderr, never raised
            self.handleError(logger.makeRecord(logger.name, level, "(unknown file)", 0, line, (), None))

    def write_lines(self, lines: list[str]) -> None:
        """Write lines held by a together() block, in one write; a failure is reported, never raised."""
        try:
            with self.lock:
                self.stream.write("".join(line + self.terminator for line in lines))
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": f"writing {len(lines)} lines logged together"}))


_configured: JsonLines | None = None  # the handler configure() installed


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
        return _encode(line)


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
    global _configured
    handler = JsonLines(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(HideReportTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _configured = handler
    root.setLevel(level)
    queue_logger = logging.getLogger("waitress.queue")
    queue_logger.filters[:] = [EverySoOften()]


def _iso(created: float) -> str:
    return times.iso_utc(int(created * 1000))
