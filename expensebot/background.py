"""A background thread that runs one task every few seconds, or as soon as it is woken."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Periodic:
    """Call `task` every `interval` seconds on a daemon thread; `wake()` makes the next call now.

    A failing task is logged and tried again at the next turn: the thread never dies of it.
    """

    def __init__(self, name: str, interval: float, task: Callable[[], object]):
        self.name = name
        self.interval = interval
        self.task = task
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

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

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.task()
            except Exception:
                logger.exception("%s failed", self.name)
