"""Totals computed from the expenses rows at request time, for a period in the person's own zone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from expensebot import store
from expensebot.chat import periods

PERIODS = periods.NAMED  # what GET /summary and the CLI take


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
    label: str = ""    # how a reply names the period: 'This month', 'November 2026'

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


def day_bounds(day: dt.date, zone: dt.tzinfo) -> tuple[str, str]:
    """Return the UTC bounds [start, end) of a calendar day in zone."""
    return periods.midnight(day, zone), periods.midnight(day + dt.timedelta(days=1), zone)


def summarize(conn: sqlite3.Connection, psid_hash: str, period: str | periods.Period,
              now: dt.datetime, zone: dt.tzinfo) -> Summary:
    """Aggregate one person's expenses of a period (a name of PERIODS, or any Period) from the rows."""
    if isinstance(period, str):
        period = periods.named(period, now.astimezone(zone).date())
    start, end = period.bounds(zone)
    categories: dict[str, list[CategoryTotal]] = {}
    for row in store.category_totals(conn, psid_hash, start, end):
        categories.setdefault(row["currency"], []).append(
            CategoryTotal(row["category"], row["total_minor"], row["count"]))
    # Currency totals are the sums of their categories' SQL sums: one pass over the rows.
    totals = sorted(
        (CurrencyTotal(currency, sum(c.total_minor for c in parts), sum(c.count for c in parts), tuple(parts))
         for currency, parts in categories.items()),
        key=lambda total: (-total.count, total.currency))
    return Summary(period.key, start, end, tuple(totals), period.label)


def term_summary(conn: sqlite3.Connection, psid_hash: str, period: periods.Period, zone: dt.tzinfo,
                 term: str) -> Summary:
    """Totals of the expenses of a period in one category or with one word ('food', 'coffee')."""
    start, end = period.bounds(zone)
    totals = tuple(CurrencyTotal(row["currency"], row["total_minor"], row["count"], ())
                   for row in store.term_totals(conn, psid_hash, start, end, term))
    return Summary(period.key, start, end, totals, period.label)


@dataclasses.dataclass(frozen=True)
class BudgetUse:
    category: str      # '' for everything
    spent_minor: int   # this month, in the budget's currency, from the rows
    amount_minor: int
    currency: str

    @property
    def over(self) -> bool:
        return self.spent_minor > self.amount_minor


def budget_use(conn: sqlite3.Connection, psid_hash: str, today: dt.date, zone: dt.tzinfo) -> list[BudgetUse]:
    """Each budget of the person with what the month of `today` (in zone) used of it, from the rows."""
    budgets = store.budgets_of(conn, psid_hash)
    if not budgets:
        return []
    start, end = periods.named("month", today).bounds(zone)
    spent: dict[tuple[str, str], int] = {}
    for row in store.category_totals(conn, psid_hash, start, end):
        # Every expense counts toward the budget for everything (''), and toward its category's.
        for category in {"", row["category"] or ""}:
            key = (row["currency"], category)
            spent[key] = spent.get(key, 0) + row["total_minor"]
    return [BudgetUse(b["category"], spent.get((b["currency"], b["category"]), 0), b["amount_minor"], b["currency"])
            for b in budgets]

