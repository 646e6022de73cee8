#!/usr/bin/env python3
"""How long a summary takes for a heavy user of a big database: a target, not a test.

    .venv/bin/python bench/bench_summary.py                    # ~2 min, most of it building the file
    .venv/bin/python bench/bench_summary.py --rows 20000 --person-rows 5000 --repeat 5

Builds a database with the project's schema (expensebot.db.init: its indexes, and the triggers
that keep the per-day sums) holding --rows expenses over two years among --people people, one of
whom has --person-rows of them. Then, for every named period (expensebot.summary.PERIODS), times
that person's summary as GET /summary makes it: a fresh connection, the person's settings, then
summary.summarize. Prints the median per period and overall. Target: every period's median
<= 50 ms. Exit 0 when met, 1 when not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot import db, store, summary  # noqa: E402
from expensebot.settings import Settings  # noqa: E402

PERSON = "f" * 64
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc)
DAYS = 730
TARGET_MS = 50.0


def build(path: Path, rows: int, person_rows: int, people: int = 1000, seed: int = 1) -> None:
    """Fill a new database with `rows` expenses over DAYS days: `person_rows` of PERSON's, the rest other people's."""
    db.init(path)
    rng = random.Random(seed)
    start = NOW - dt.timedelta(days=DAYS)
    owners = [PERSON] * person_rows + [f"{rng.randrange(people):064x}" for _ in range(rows - person_rows)]
    rng.shuffle(owners)
    conn = db.connect(path)
    conn.execute("BEGIN")
    for first in range(0, rows, 50_000):
        conn.executemany(
            "INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
            " category, occurred_at, created_at) VALUES (?, ?, ?, 0, ?, ?, 'item', ?, ?, 'x')",
            [(n, owners[n], f"m_{n}", rng.randrange(100, 100_000), rng.choice(("USD", "USD", "EUR")),
              rng.choice(("food", "transport", "rent", None, "fun")),
              (start + dt.timedelta(seconds=rng.randrange(DAYS * 86400))).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
             for n in range(first, min(first + 50_000, rows))])
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
    print(f"{'PASS' if met else 'FAIL'}  every period's median <= {TARGET_MS:g} ms "
          f"(slowest: {worst}, {statistics.median(timings[worst]):.1f} ms)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
