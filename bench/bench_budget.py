#!/usr/bin/env python3
"""Where a single-event webhook's CPU goes: each step of the write path, timed on its own.

The ingest benchmark shows the server is CPU-bound (about 1.2 of the 2 cores, wrk has the
rest), so the throughput ratio to the hello-world is about the ratio of CPU per request.
This script takes the webhook's request apart and times each step with the thread's own CPU
clock (time.thread_time: waiting counts for nothing), one thread, on a real database file
with the WAL keeper running as in the server, through the project's own functions:

  signature + JSON + read_delivery, reading the text (command or expenses), opening and
  closing a fresh connection (its settings load the schema), the write transaction (compile,
  BEGIN IMMEDIATE, three INSERTs, COMMIT), one JSON log line, and Ingest.write end to end
  (the day total a reply shows is read by the reply side, not here); then the same
  transaction and read on one connection kept open,
  to show what the fresh connection per request (the design card) costs.

Every step runs over the same N messages (distinct mids, 300 senders); the whole set is
repeated --rounds times and the median round is printed, in microseconds per message.
With --ingest-result, the per-request CPU the last bench_ingest.py run measured for the
hello-world and the webhook is printed next to it, with what a 0.40 ratio leaves.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot import db, logs  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.ingest import webhook  # noqa: E402
from expensebot.ingest.spool import Spool  # noqa: E402
from expensebot.ingest.write import Ingest  # noqa: E402
from expensebot.logs import log_event  # noqa: E402

SECRET = "budget-secret"
TEXTS = ["coffee 100", "lunch 12,50 #food", "$4.50 latte", "taxi 18 #transport", "beer 6.50 yesterday",
         "groceries 56.80 #food", "rent 1,200", "laptop 1.5k", "\u20ac12 lunch", "hello"]


def bodies(n: int, t0_ms: int) -> list[bytes]:
    """Signed-able single-event bodies as Meta sends them, distinct mids, 300 senders."""
    return [json.dumps({"object": "page", "entry": [{"id": "1", "time": t0_ms + i, "messaging": [{
        "sender": {"id": str(10**15 + i % 300)}, "recipient": {"id": "1"}, "timestamp": t0_ms + i,
        "message": {"mid": f"m_budget_{i:09d}", "text": TEXTS[i % len(TEXTS)]}}]}]}).encode()
        for i in range(n)]


def cpu_us(step, items) -> float:
    """Thread CPU microseconds per item of running step(item) over items."""
    start = time.thread_time()
    for item in items:
        step(item)
    return (time.thread_time() - start) * 1e6 / len(items)


def one_round(workdir: Path, n: int, round_no: int) -> dict[str, float]:
    path = workdir / f"round{round_no}.db"
    database = db.Database(path).open()  # schema + WAL keeper, as `run.py serve` does
    ingest = Ingest(database, Spool(workdir / f"spool{round_no}").open(), zone=dt.timezone.utc,
                    currency="USD")
    hasher = PsidHasher("k" * 32)
    now_ms = int(time.time() * 1000)
    raw = bodies(n, now_ms)
    signed = [(body, webhook.sign(SECRET, body)) for body in raw]
    logger = logging.getLogger("expensebot.ingest.write")
    messages = [webhook.read_delivery(json.loads(body), hasher, now_ms).messages[0] for body in raw]
    half = n // 2
    fresh, reused = messages[:half], messages[half:]
    results = {}

    def read_delivery(item):
        body, signature = item
        assert webhook.verify_signature(SECRET, body, signature)
        webhook.read_delivery(json.loads(body), hasher, now_ms)

    results["signature, JSON, read_delivery"] = cpu_us(read_delivery, signed)
    results["read the text (command or expenses)"] = cpu_us(lambda m: ingest.read(m, m.sent_ms), messages)
    results["fresh connection: open (settings, schema) + close"] = cpu_us(
        lambda _: db.connect(path).close(), range(n))

    def fresh_write(message):
        with database.connection() as conn:
            ingest.save(conn, [message], time.monotonic() + 1)

    results["Ingest.write, end to end (replies aside)"] = cpu_us(lambda m: ingest.write([m]), fresh)
    results["  its read + transaction, fresh connection"] = cpu_us(
        fresh_write, [dataclasses.replace(m, mid=m.mid + "_again") for m in fresh])
    keep = db.connect(path)
    try:
        results["  its read + transaction, connection kept open"] = cpu_us(
            lambda m: ingest.save(keep, [m], time.monotonic() + 1), reused)
    finally:
        keep.close()
    results["one JSON log line (event_logged)"] = cpu_us(
        lambda m: log_event(logger, "event_logged", psid_hash=m.psid_hash, mid=m.mid, expense_id=1,
                            expenses=1, kind=m.kind), messages)
    database.close()
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=4000, help="messages per round (default 4000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; the median is printed (default 5)")
    p.add_argument("--ingest-result", type=Path, default=None,
                   help="a bench/results/ingest-*.json to set the figures against")
    args = p.parse_args(argv)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with tempfile.TemporaryDirectory(prefix="expensebot-budget-") as tmp:
            with open(Path(tmp) / "log.jsonl", "w") as log_file:
                logs.configure(log_file)  # the server's JSON lines, to a file as under systemd
                rounds = [one_round(Path(tmp), args.messages, r) for r in range(args.rounds)]
    finally:  # leave logging as it was (the tests call main())
        root.handlers[:] = handlers
        root.setLevel(level)
    print(f"thread CPU per message, median of {args.rounds} rounds of {args.messages} messages")
    print("-" * 72)
    for step in rounds[0]:
        print(f"{step:62s} {statistics.median(r[step] for r in rounds):8.1f} us")
    if args.ingest_result:
        report = json.loads(args.ingest_result.read_text())
        base, hook = report["baseline"], report["webhook"]
        base_us = 1e6 * base["server_cpu_s"] / base["requests"]
        hook_us = 1e6 * hook["server_cpu_s"] / hook["requests"]
        print("-" * 72)
        print(f"from {args.ingest_result.name} (server CPU per request, all threads):")
        print(f"{'hello-world baseline':62s} {base_us:8.0f} us")
        print(f"{'webhook':62s} {hook_us:8.0f} us")
        print(f"{'webhook at a 0.40 throughput ratio (baseline / 0.40)':62s} {base_us / 0.40:8.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
