"""Totals computed from the expenses rows at request time, for a period in EXPENSEBOT_TZ."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from expensebot import store, times

PERIODS = ("today", "week", "month", "year", "all")


@dataclasses.dataclass(frozen=True)
class CategoryTotal:
    category: str | None
    total_minor: int
    count: int


@dataclasses.dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    total_minor: int
    count: int
    categories: tuple[CategoryTotal, ...]  # largest first


@dataclasses.dataclass(frozen=True)
class Summary:
    period: str
    start: str | None  # ISO-8601 UTC, inclusive; None for "all"
    end: str | None    # exclusive
    currencies: tuple[CurrencyTotal, ...]  # largest count first

    @property
    def count(self) -> int:
        return sum(total.count for total in self.currencies)

    def as_json(self) -> dict:
        return {
            "period": self.period,
            "from": self.start,
            "to": self.end,
            "count": self.count,
            "currencies": {
                total.currency: {
                    "total_minor": total.total_minor,
                    "count": total.count,
                    "categories": {
                        category.category or "uncategorized": {
                            "total_minor": category.total_minor, "count": category.count}
                        for category in total.categories
                    },
                }
                for total in self.currencies
            },
        }


def period_bounds(period: str, now: dt.datetime, zone: dt.tzinfo) -> tuple[str | None, str | None]:
    """Return the UTC bounds [start, end) of a period containing now, in zone (weeks start Monday)."""
    today = now.astimezone(zone).date()
    if period == "all":
        return None, None
    if period == "today":
        start, end = today, today + dt.timedelta(days=1)
    elif period == "week":
        start = today - dt.timedelta(days=today.weekday())
        end = start + dt.timedelta(days=7)
    elif period == "month":
        start = today.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    elif period == "year":
        start, end = today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return _midnight(start, zone), _midnight(end, zone)


def day_bounds(day: dt.date, zone: dt.tzinfo) -> tuple[str, str]:
    """Return the UTC bounds [start, end) of a calendar day in zone."""
    return _midnight(day, zone), _midnight(day + dt.timedelta(days=1), zone)


def summarize(conn: sqlite3.Connection, psid_hash: str, period: str,
              now: dt.datetime, zone: dt.tzinfo) -> Summary:
    """Aggregate one person's expenses of a period from the rows."""
    start, end = period_bounds(period, now, zone)
    categories: dict[str, list[CategoryTotal]] = {}
    for row in store.category_totals(conn, psid_hash, start, end):
        categories.setdefault(row["currency"], []).append(
            CategoryTotal(row["category"], row["total_minor"], row["count"]))
    # Currency totals are the sums of their categories' SQL sums: one pass over the rows.
    totals = sorted(
        (CurrencyTotal(currency, sum(c.total_minor for c in parts), sum(c.count for c in parts), tuple(parts))
         for currency, parts in categories.items()),
        key=lambda total: (-total.count, total.currency))
    return Summary(period, start, end, tuple(totals))


def _midnight(day: dt.date, zone: dt.tzinfo) -> str:
    return times.iso_from_datetime(dt.datetime.combine(day, dt.time(0), zone))
