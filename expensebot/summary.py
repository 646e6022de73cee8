"""Totals computed from the expenses rows at request time, for a period in the person's own zone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from expensebot import store
from expensebot.chat import periods
from expensebot.settings import Settings

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
class Converted:
    """The period's expenses in the person's currency, at each one's own rate (docs/CURRENCIES.md)."""

    currency: str
    total_minor: int
    count: int                    # the expenses in the total
    pending: int = 0              # waiting for their rate: not in the total
    unconverted: tuple[str, ...] = ()  # currencies the ECB publishes no rate for: never in the total
    at_own_rate: int = 0          # of `count`, converted at the person's own rate ('@ 0.0062'), not the ECB's
    # Of `unconverted`, those whose expenses with the person's own rate are in the total.
    own_rate_only: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Summary:
    period: str
    start: str | None  # ISO-8601 UTC, inclusive; None for "all"
    end: str | None    # exclusive
    currencies: tuple[CurrencyTotal, ...]  # largest count first
    label: str = ""    # how a reply names the period: 'This month', 'November 2026'
    converted: Converted | None = None

    @property
    def mixed(self) -> bool:
        """More than one currency, or one that is not the person's: then the converted total is said."""
        return self.converted is not None and any(t.currency != self.converted.currency for t in self.currencies)

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
            **({"converted": dataclasses.asdict(self.converted)} if self.converted else {}),
        }


def day_bounds(day: dt.date, zone: dt.tzinfo) -> tuple[str, str]:
    """Return the UTC bounds [start, end) of a calendar day in zone."""
    return periods.midnight(day, zone), periods.midnight(day + dt.timedelta(days=1), zone)


def summarize(conn: sqlite3.Connection, psid_hash: str, period: str | periods.Period,
              now: dt.datetime, settings: Settings) -> Summary:
    """Aggregate one person's expenses of a period (a name of PERIODS, or any Period) from the rows."""
    if isinstance(period, str):
        period = periods.named(period, now.astimezone(settings.zone).date())
    start, end = period.bounds(settings.zone)
    rows = store.category_totals(conn, psid_hash, start, end)
    categories: dict[str, dict[str | None, list[int]]] = {}
    for row in rows:
        total = categories.setdefault(row["currency"], {}).setdefault(row["category"], [0, 0])
        total[0] += row["total_minor"]
        total[1] += row["count"]
    # Currency totals are the sums of their categories' SQL sums: one pass over the rows.
    totals = []
    for currency, parts in categories.items():
        ordered = tuple(sorted((CategoryTotal(category, minor, count) for category, (minor, count) in parts.items()),
                               key=lambda c: (-c.total_minor, c.category or "")))
        totals.append(CurrencyTotal(currency, sum(c.total_minor for c in ordered), sum(c.count for c in ordered),
                                    ordered))
    totals.sort(key=lambda total: (-total.count, total.currency))
    own = store.own_rate_counts(conn, psid_hash, start, end, settings.currency)
    return Summary(period.key, start, end, tuple(totals), period.label, converted(rows, settings.currency, own))


def term_summary(conn: sqlite3.Connection, psid_hash: str, period: periods.Period, settings: Settings,
                 term: str) -> Summary:
    """Totals of the expenses of a period in one category or with one word ('food', 'coffee')."""
    start, end = period.bounds(settings.zone)
    rows = store.term_totals(conn, psid_hash, start, end, term)
    totals: dict[str, list[int]] = {}
    for row in rows:
        total = totals.setdefault(row["currency"], [0, 0])
        total[0] += row["total_minor"]
        total[1] += row["count"]
    currencies = sorted((CurrencyTotal(currency, minor, count, ()) for currency, (minor, count) in totals.items()),
                        key=lambda total: (-total.count, total.currency))
    own = store.own_rate_counts(conn, psid_hash, start, end, settings.currency, term)
    return Summary(period.key, start, end, tuple(currencies), period.label, converted(rows, settings.currency, own))


def converted(rows, currency: str, own_rates: dict[str, int] | None = None) -> Converted:
    """The converted total of rows of store.category_totals or store.term_totals, in `currency`;
    own_rates: how many of them are at the person's own rate, per currency (store.own_rate_counts)."""
    own_rates = own_rates or {}
    total = count = pending = 0
    unconverted = set()
    for row in rows:
        if row["converted_currency"] != currency:
            pending += row["count"]  # not converted yet, or to the person's currency before this one
            continue
        total += row["converted_minor"]
        count += row["converted_count"]
        if row["converted_count"] < row["count"]:
            unconverted.add(row["currency"])
    return Converted(currency, total, count, pending, tuple(sorted(unconverted)), sum(own_rates.values()),
                     tuple(sorted(unconverted & set(own_rates))))


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
        # An expense counts in a budget's currency at its converted amount when it was converted to
        # that currency, else as it is when it was spent in it; toward the budget for everything
        # (''), and toward its category's.
        amounts = {row["converted_currency"]: row["converted_minor"]} if row["converted_currency"] else {}
        amounts.setdefault(row["currency"], row["total_minor"])
        for code, amount in amounts.items():
            for category in {"", row["category"] or ""}:
                spent[code, category] = spent.get((code, category), 0) + amount
    return [BudgetUse(b["category"], spent.get((b["currency"], b["category"]), 0), b["amount_minor"], b["currency"])
            for b in budgets]

