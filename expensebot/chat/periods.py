"""Periods a person asks about ('this month', 'november', 'last 7 days') as local calendar days."""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt

from expensebot import times

NAMED = ("today", "week", "month", "year", "all")  # the periods GET /summary and the CLI take
MAX_DAYS = 3660


@dataclasses.dataclass(frozen=True)
class Period:
    """Local days [start, end) with a name for replies; start and end None for all time."""

    key: str                 # 'month', '2026', '2026-11', 'last-7-days', ...
    label: str               # 'This month', '2026', 'November 2026', 'Last 7 days'
    start: dt.date | None
    end: dt.date | None

    def bounds(self, zone: dt.tzinfo) -> tuple[str | None, str | None]:
        """The period's UTC bounds [start, end), local midnight to local midnight in zone."""
        if self.start is None:
            return None, None
        return midnight(self.start, zone), midnight(self.end, zone)


def named(key: str, today: dt.date) -> Period:
    """One of NAMED, around today (weeks start on Monday)."""
    if key == "all":
        return Period("all", "All time", None, None)
    if key == "today":
        return Period("today", "Today", today, today + dt.timedelta(days=1))
    if key == "week":
        start = today - dt.timedelta(days=today.weekday())
        return Period("week", "This week", start, start + dt.timedelta(days=7))
    if key == "month":
        return dataclasses.replace(month(today.year, today.month), key="month", label="This month")
    if key == "year":
        return dataclasses.replace(year(today.year), key="year", label="This year")
    raise ValueError(f"unknown period {key!r}")


def day(date: dt.date, label: str | None = None) -> Period:
    return Period(date.isoformat(), label or date.isoformat(), date, date + dt.timedelta(days=1))


def month(year_: int, month_: int) -> Period:
    start = dt.date(year_, month_, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return Period(f"{year_:04d}-{month_:02d}", f"{calendar.month_name[month_]} {year_}", start, end)


def year(year_: int) -> Period:
    return Period(f"{year_:04d}", f"{year_}", dt.date(year_, 1, 1), dt.date(year_ + 1, 1, 1))


def last_days(count: int, today: dt.date) -> Period:
    """The last `count` days, today included."""
    return Period(f"last-{count}-days", f"Last {count} days" if count > 1 else "Today",
                  today - dt.timedelta(days=count - 1), today + dt.timedelta(days=1))


def previous(key: str, today: dt.date) -> Period:
    """Last week, last month or last year."""
    if key == "week":
        end = today - dt.timedelta(days=today.weekday())
        return Period("last-week", "Last week", end - dt.timedelta(days=7), end)
    if key == "month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return dataclasses.replace(month(last.year, last.month), label="Last month")
    return dataclasses.replace(year(today.year - 1), label="Last year")


def midnight(date: dt.date, zone: dt.tzinfo) -> str:
    """Local midnight of date in zone, as ISO-8601 UTC."""
    return times.iso_from_datetime(dt.datetime.combine(date, dt.time(0), zone))
