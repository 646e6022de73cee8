"""A background thread that runs one task every few seconds, or as soon as it is woken."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from expensebot.errors import describe, is_expected
from expensebot.logs import log_event

logger = logging.getLogger(__name__)


class Periodic:
    """Call `task` every `interval` seconds on a daemon thread; `wake()` makes the next call now.

    A failing task is tried again at the next turn: the thread never dies of it. Failures are
    logged once per incident, not once per turn: the first failure as one line (a database that
    cannot take writes now or a spool folder that can't be listed as a warning with its reason;
    anything else, a bug, as an error with the traceback in a field), then, when a turn succeeds
    again, one line with how many turns failed and for how long.
    """

    def __init__(self, name: str, interval: float, task: Callable[[], object],
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.interval = interval
        self.task = task
        self.clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._incident: tuple[str, float, int] | None = None  # (reason, since, failed turns)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once stop() was called: a long task can end early."""
        return self._stopping.is_set()

    @property
    def failing_since(self) -> float | None:
        """When (clock) the current run of failed turns began; None while turns succeed."""
        incident = self._incident
        return incident[1] if incident else None

    def stop(self, timeout: float = 10.0) -> None:
        """Let the task being run finish, then end the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> None:
        """Run the task once, containing and logging its failure (the thread's turn)."""
        try:
            self.task()
        except Exception as exc:
            self._failed(exc)
        else:
            self._recovered()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self.run_once()

    def _failed(self, exc: Exception) -> None:
        reason = describe(exc)
        if self._incident is not None:
            first, since, turns = self._incident
            self._incident = (first, since, turns + 1)
            return
        self._incident = (reason, self.clock(), 1)
        if is_expected(exc):
            log_event(logger, "task_unavailable", level=logging.WARNING, task=self.name, reason=reason)
        else:
            log_event(logger, "task_failed", level=logging.ERROR, task=self.name, reason=reason,
                      traceback="".join(traceback.format_exception(exc)))

    def _recovered(self) -> None:
        if self._incident is None:
            return
        reason, since, turns = self._incident
        self._incident = None
        log_event(logger, "task_recovered", level=logging.WARNING, task=self.name, reason=reason,
                  failed_turns=turns, seconds=round(self.clock() - since, 3))
