#!/usr/bin/env python3
"""Summary latency as the database grows: one person with 2,000 expenses among N rows.

Builds databases with the project's own schema (expensebot.db.init) holding SMALL and LARGE
numbers of expense rows spread over 1,000 people, one of whom has 2,000 rows, then times
expensebot.summary.summarize for that person, every period, on a fresh connection per call
(as GET /summary does). Prints p50/p99/max per size and the large/small ratio.
Targets: p99 under 10 ms at 1,000,000 rows, and flat (ratio near 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot import db, summary  # noqa: E402

PERSON = "f" * 64
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc)


def build(path: Path, rows: int, person_rows: int = 2000, people: int = 1000, seed: int = 1) -> None:
    """Fill a database with `rows` expenses: `person_rows` for PERSON, the rest over other people."""
    db.init(path)
    rng = random.Random(seed)
    conn = db.connect(path)
    start = NOW - dt.timedelta(days=730)
    categories = ["food", "transport", "rent", None, "fun"]

    def expense(n: int, psid_hash: str):
        when = start + dt.timedelta(seconds=rng.randrange(730 * 86400))
        return (n, psid_hash, f"m_{n}", 0, rng.randrange(100, 100000), rng.choice(["USD", "USD", "EUR"]),
                "item", rng.choice(categories), when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "x")

    conn.execute("BEGIN")
    batch = []
    for n in range(rows):
        owner = PERSON if n % (rows // person_rows) == 0 and n // (rows // person_rows) < person_rows \
            else f"{rng.randrange(people):064x}"
        batch.append(expense(n, owner))
        if len(batch) == 50_000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _insert(conn, batch) -> None:
    conn.executemany(
        "INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
        " category, occurred_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)


def time_summaries(path: Path, repeat: int) -> list[float]:
    """Milliseconds per summarize call, fresh connection each time, cycling through the periods."""
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    database = db.Database(path)
    timings = []
    for n in range(repeat):
        period = summary.PERIODS[n % len(summary.PERIODS)]
        started = time.perf_counter()
        with database.connection() as conn:
            result = summary.summarize(conn, PERSON, period, NOW, zone)
        timings.append((time.perf_counter() - started) * 1000)
        assert result.period == period
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="rows in the small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="rows in the large database")
    parser.add_argument("--repeat", type=int, default=500, help="summaries timed per database")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in (("small", args.small), ("large", args.large)):
            path = Path(tmp) / f"{name}.db"
            started = time.perf_counter()
            build(path, rows)
            print(f"built {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
            time_summaries(path, 50)  # warm the page cache, as a running server has it
            timings = sorted(time_summaries(path, args.repeat))
            results[name] = (statistics.median(timings), timings[int(len(timings) * 0.99) - 1], timings[-1])
    print(f"{'rows':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, rows in (("small", args.small), ("large", args.large)):
        print(f"{rows:>10,} {results[name][0]:8.2f} {results[name][1]:8.2f} {results[name][2]:8.2f}")
    ratio = results["large"][0] / results["small"][0]
    ok = results["large"][1] < 10
    print(f"p50 large/small: {ratio:.2f}; p99 at {args.large:,} rows under 10 ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
