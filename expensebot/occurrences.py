"""Recurring rules' due dates made expenses, each once: by the message that makes a rule, and by the
scheduler (background/schedule.py) after that.

Each due date of a rule is an ordinary expense row, keyed by UNIQUE (rule_id, due_date) and written
with INSERT OR IGNORE, in the same transaction that moves the rule's `next_number` on: a crash, a
second scheduler turn or a restart in the middle of a catch-up makes no date twice and skips none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from expensebot import rates, store, times
from expensebot.chat import recurring
from expensebot.settings import Settings


@dataclasses.dataclass(frozen=True)
class Progress:
    dates: int    # due dates looked at (each costs one INSERT)
    created: int  # expenses made (a date made already counts in dates only)
    done: bool    # nothing more is due for this rule now


def due_date(rule: sqlite3.Row, number: int) -> dt.date:
    return recurring.due_date(rule["period"], dt.date.fromisoformat(rule["start_date"]), rule["anchor_day"], number)


def next_after(rule: sqlite3.Row, day: dt.date) -> dt.date:
    """The rule's first due date after `day` (what `recurring` shows as its next)."""
    return recurring.first_after(rule["period"], dt.date.fromisoformat(rule["start_date"]), rule["anchor_day"], day)[1]


def create_due(conn: sqlite3.Connection, rule: sqlite3.Row, own: Settings, now: dt.datetime, limit: int) -> Progress:
    """Make at most `limit` of the rule's due dates up to today in the person's zone (and not after
    its stop) expenses, dated noon of their day there and converted like any expense."""
    last = now.astimezone(own.zone).date()
    if rule["stopped_on"]:
        last = min(last, dt.date.fromisoformat(rule["stopped_on"]))
    number, created, dates = rule["next_number"], 0, 0
    created_at = times.iso_from_datetime(now)
    due = due_date(rule, number)
    while dates < limit and due <= last:
        occurred_at = times.iso_from_datetime(dt.datetime.combine(due, dt.time(12), own.zone))
        conversion = rates.convert_for(conn, rule["amount_minor"], rule["currency"], occurred_at, own, now).columns
        created += store.insert_occurrence(conn, rule, number, due.isoformat(), occurred_at, conversion, created_at)
        dates += 1
        number += 1
        due = due_date(rule, number)
    if dates:
        store.advance_rule(conn, rule["id"], number, due.isoformat())
    return Progress(dates, created, due > last)
