"""The one background-thread loop the bot's pollers share."""

from __future__ import annotations

import threading
import time

from conftest import wait_for
from expensebot.background import Periodic


def test_runs_on_its_interval_and_at_once_when_woken():
    calls = []
    ticker = Periodic("test-periodic", 3600, lambda: calls.append(time.monotonic())).start()
    try:
        time.sleep(0.1)
        assert calls == []  # an hour's interval: nothing yet
        woken = time.monotonic()
        ticker.wake()
        assert wait_for(lambda: len(calls) == 1)
        assert calls[0] - woken < 1
    finally:
        ticker.stop()


def test_a_failing_task_is_logged_and_the_thread_goes_on(caplog):
    calls = []

    def task():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    ticker = Periodic("test-failing", 0.02, task).start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["test-failing failed"]
    finally:
        ticker.stop()


def test_stop_lets_the_running_task_finish_then_ends_the_thread():
    started, release, finished = threading.Event(), threading.Event(), []

    def task():
        started.set()
        release.wait(5)
        finished.append(1)

    ticker = Periodic("test-stop", 0.01, task).start()
    assert started.wait(5)
    stopper = threading.Thread(target=ticker.stop)
    stopper.start()
    time.sleep(0.05)
    assert stopper.is_alive()  # waiting for the task
    release.set()
    stopper.join(5)
    assert finished == [1]
    assert not any(t.name == "test-stop" for t in threading.enumerate())
