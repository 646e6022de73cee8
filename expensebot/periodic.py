"""A background thread that runs one task every few seconds, or as soon as it is woken."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

from expensebot.errors import describe, is_expected
from expensebot.logs import Incident

logger = logging.getLogger(__name__)


class Periodic:
    """Call `task` every `interval` seconds on a daemon thread; `wake()` makes the next call now.

    A failing task is tried again at the next turn: the thread never dies of it. Failures are one
    incident until a turn succeeds: a warning when an operator can fix the cause (a locked database),
    else an error with the traceback in a field; and one line when it ends, with how many turns failed.
    """

    def __init__(self, name: str, interval: float, task: Callable[[], object]):
        self.name = name
        self.interval = interval
        self.task = task
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.failing = Incident(logger, "task_unavailable", "task_recovered")

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once stop() was called: a long task can end early."""
        return self._stopping.is_set()

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
            if is_expected(exc):
                self.failing.happened(describe(exc), task=self.name)
            else:
                self.failing.happened(describe(exc), level=logging.ERROR, event="task_failed", task=self.name,
                                      traceback="".join(traceback.format_exception(exc)))
        else:
            self.failing.ended(task=self.name)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self.run_once()


class Background:
    """A task on a `Periodic` of its own (`self.loop`, made by the subclass): started with a turn at
    once, woken after a write that gives it work, stopped with the service."""

    loop: Periodic

    def start(self):
        self.loop.start()
        self.loop.wake()
        return self

    def stop(self) -> None:
        self.loop.stop()

    def wake(self) -> None:
        self.loop.wake()
