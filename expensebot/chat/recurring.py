"""Recurring expenses, read and counted without a database: the rule a line states, and its due dates.

A rule is an expense line with a period word after its amount ('rent 1200 monthly', 'netflix 15.99
monthly on 15', 'gym 30 weekly since 2026-01-05'). Its due dates are pure date arithmetic on the
person's calendar, so daylight saving time changes neither the day nor the count, and the n-th due
date is the same whenever and however often it is computed: that is what keeps each occurrence once
(docs/CHAT.md, Recurring expenses).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import re

from expensebot.chat import parser

PERIODS = ("daily", "weekly", "monthly", "yearly")
MAX_RULES = 50                       # active rules a person may have
EARLIEST_START = dt.date(2004, 1, 1)  # as far back as an expense's ECB rate goes
MAX_DAYS_AHEAD = 366                 # a start date at most a year from today
_PUNCTUATION = ".,;:!?"
_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_DAY_OF_MONTH = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?")

# Why a rule line was not saved (the reply words each).
TOO_EARLY, TOO_LATE, BAD_DAY, NOT_ONE_EXPENSE = "too_early", "too_late", "bad_day", "not_one_expense"


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a rule line says: one expense, how often, from when."""

    description: str
    amount_minor: int
    currency: str
    category: str | None
    period: str             # one of PERIODS
    start: dt.date          # 'since', else the day the message was sent
    day: int | None = None  # 'on N': the day of the month of a monthly rule

    @property
    def anchor_day(self) -> int:
        """The day of the month a monthly or yearly rule falls on (shorter months: their last day)."""
        return self.day or self.start.day


@dataclasses.dataclass(frozen=True)
class Refused:
    """A line shaped like a rule that cannot be one: `reason` is one of the reasons above."""

    reason: str


def read(text: str, default_currency: str, today: dt.date) -> Rule | Refused | None:
    """The rule a one-line message states; Refused when it is shaped like one but cannot be; None
    when it is no rule (then it is read as expenses, as ever)."""
    if "\n" in text.strip():
        return None
    words = text.split()
    modifiers: dict[str, str] = {}
    tags: list[str] = []
    while words:  # from the end: '#tag', 'since DATE', 'on N', in any order after the period word
        last = words[-1].rstrip(_PUNCTUATION)
        if last.startswith("#"):
            tags.insert(0, words.pop())
        elif len(words) >= 2 and words[-2].lower() in ("since", "on") and words[-2].lower() not in modifiers:
            modifiers[words[-2].lower()] = last.lower()
            del words[-2:]
        else:
            break
    if len(words) < 3 or words[-1].lower().rstrip(_PUNCTUATION) not in PERIODS:
        return None
    period = words.pop().lower().rstrip(_PUNCTUATION)
    return _rule(" ".join([*words, *tags]), period, modifiers, default_currency, today)


def _rule(line: str, period: str, modifiers: dict[str, str], default_currency: str,
          today: dt.date) -> Rule | Refused | None:
    parsed = parser.parse_message(line, default_currency=default_currency, today=today)
    if not parsed.expenses:
        return None if not parsed.rejected else Refused(NOT_ONE_EXPENSE)  # 'every day 3 monthly' is no rule
    if len(parsed.expenses) != 1 or parsed.rejected:
        return Refused(NOT_ONE_EXPENSE)
    expense = parsed.expenses[0]
    if expense.date != today or expense.rate is not None:  # a start date is written with 'since'
        return Refused(NOT_ONE_EXPENSE)
    start = today
    if "since" in modifiers:
        start = _date(modifiers["since"])
        if start is None:
            return Refused(NOT_ONE_EXPENSE)
    if start < EARLIEST_START:
        return Refused(TOO_EARLY)
    if start > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        return Refused(TOO_LATE)
    day = None
    if "on" in modifiers:
        match = _DAY_OF_MONTH.fullmatch(modifiers["on"])
        if period != "monthly" or match is None or not 1 <= int(match[1]) <= 31:
            return Refused(BAD_DAY)
        day = int(match[1])
    return Rule(expense.description, expense.amount_minor, expense.currency, expense.category, period, start, day)


def _date(word: str) -> dt.date | None:
    match = _DATE.fullmatch(word)
    if match is None:
        return None
    try:
        return dt.date(*map(int, match.groups()))
    except ValueError:
        return None


# ---- due dates -------------------------------------------------------------------------------------

def due_date(period: str, start: dt.date, anchor_day: int, number: int) -> dt.date:
    """The due date number `number` (0: the first) of a rule: its first due date on or after start,
    then one each period. Days 29-31 fall on the last day of shorter months; Feb 29 on Feb 28."""
    if period == "daily":
        return start + dt.timedelta(days=number)
    if period == "weekly":
        return start + dt.timedelta(weeks=number)
    if period == "yearly":
        return _clamped(start.year + number, start.month, anchor_day)
    months = start.year * 12 + start.month - 1 + number
    if _clamped(start.year, start.month, anchor_day) < start:  # 'on 15' sent on the 20th: next month's
        months += 1
    return _clamped(months // 12, months % 12 + 1, anchor_day)


def _clamped(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def first_after(period: str, start: dt.date, anchor_day: int, day: dt.date) -> tuple[int, dt.date]:
    """The number and date of a rule's first due date after `day` (its next, seen on that day)."""
    number = _about(period, start, day)
    while due_date(period, start, anchor_day, number) <= day:
        number += 1
    while number > 0 and due_date(period, start, anchor_day, number - 1) > day:
        number -= 1
    return number, due_date(period, start, anchor_day, number)


def _about(period: str, start: dt.date, day: dt.date) -> int:
    """A number near the first due date after `day`, never below 0 (first_after steps from it)."""
    days = (day - start).days
    spans = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 366}
    return max(0, days // spans[period] - 1)
