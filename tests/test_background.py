"""The one background-thread loop the bot's pollers share."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from conftest import wait_for

from expensebot.errors import DatabaseUnavailable
from expensebot.periodic import Periodic


def test_runs_on_its_interval_and_at_once_when_woken():
    calls = []
    ticker = Periodic("test-periodic", 3600, lambda: calls.append(time.monotonic())).start()
    try:
        time.sleep(0.1)
        assert calls == []  # an hour's interval: nothing yet
        ticker.wake()
        assert wait_for(lambda: len(calls) == 1)  # within seconds: woken, not because its hour was up
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
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert [r.getMessage() for r in errors] == ["task_failed"]
        # One JSON line: the traceback is a field of it, not lines of its own.
        assert errors[0].fields["reason"] == "RuntimeError: boom"
        assert "Traceback" in errors[0].fields["traceback"] and errors[0].exc_info is None
    finally:
        ticker.stop()


def test_a_bug_failing_every_turn_logs_once_then_its_count_and_duration(caplog):
    failing = [True]

    def task():
        if failing[0]:
            raise KeyError("bug")

    ticker = Periodic("test-bug", 3600, task)
    for _ in range(50):
        ticker.run_once()
    failing[0] = False
    ticker.run_once()
    ticker.run_once()
    events = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert events == [("ERROR", "task_failed"), ("WARNING", "task_recovered")]
    recovered = caplog.records[-1].fields
    assert recovered["count"] == 50 and 0 <= recovered["seconds"] < 60


@pytest.mark.parametrize("error", [
    sqlite3.OperationalError("database is locked"),
    DatabaseUnavailable("locked"),
])
def test_an_unavailable_database_is_one_warning_per_incident_without_traceback(caplog, error):
    if isinstance(error, sqlite3.OperationalError):
        error.sqlite_errorcode = 5  # SQLITE_BUSY, as SQLite sets it

    def task():
        raise error

    ticker = Periodic("test-locked", 3600, task)
    for _ in range(20):
        ticker.run_once()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", "task_unavailable")]
    assert "traceback" not in caplog.records[0].fields and caplog.records[0].exc_info is None


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
    assert wait_for(lambda: ticker.stopping)  # stop() has begun...
    stopper.join(0.2)
    assert stopper.is_alive()  # ...and waits for the task
    release.set()
    stopper.join(5)
    assert finished == [1]
    assert not any(t.name == "test-stop" for t in threading.enumerate())
