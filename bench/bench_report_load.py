"""Signed webhooks while people reload a heavy report month: a target, not a test.

    .venv/bin/python bench/bench_report_load.py            # ~1 min: 100,000 expenses, 12 clients, 30 s
    .venv/bin/python bench/bench_report_load.py --page     # the HTML page instead of the CSV
    .venv/bin/python bench/bench_report_load.py --expenses 20000 --duration 10
    .venv/bin/python bench/bench_report_load.py --root DIR  # the code of another checkout

`python run.py serve` on a scratch database seeded with --expenses expenses in one person's last
month (EXPENSEBOT_TRUSTED_PROXIES=127.0.0.1, as behind nginx on the same machine). --clients
clients, each with its own X-Forwarded-For address, reload that month's CSV (or page) as fast as
the report rate limit lets them (one request a second at most), reading every answer whole.
Meanwhile one sender posts a signed single-message webhook every 0.1 s. Prints p50/p99/max of
the webhooks, and what the report clients got (status counts, p50/max of their answers).
Target: webhook p99 < --target seconds (1.0). Exit 0 when met, 1 otherwise, 2 when the harness
itself could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))
import harness  # noqa: E402

from expensebot import db  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.web import report  # noqa: E402

PAGE_ID = "106245718838291"
CATEGORIES = ("food", "transport", "fun", "health", "home", None)
RELOAD_EVERY = 1.05  # seconds between one client's requests: under 60 a minute


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expenses", type=int, default=100_000, help="expenses in the person's month (100000)")
    p.add_argument("--clients", type=int, default=12, help="report clients reloading at once (12)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of webhooks under load (30)")
    p.add_argument("--page", action="store_true", help="reload the HTML page instead of the CSV")
    p.add_argument("--target", type=float, default=1.0, help="webhook p99 target, seconds (1.0)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose run.py serve is measured (this one)")
    p.add_argument("--app-secret", default=secrets.token_hex(16), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def last_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def seed(path: Path, psid_hash: str, first: dt.date, count: int) -> None:
    """Create the schema and `count` expenses of one person spread over the month starting `first`."""
    db.init(path)
    start = dt.datetime.combine(first, dt.time(), dt.timezone.utc)
    span = (report.next_month(first) - first).total_seconds()
    rows = []
    for n in range(count):
        when = start + dt.timedelta(seconds=span * n / count)
        iso = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        rows.append((n + 1, psid_hash, f"m_seed_{n}", 0, 100 + n % 5000, "USD", f"item {n}",
                     CATEGORIES[n % len(CATEGORIES)], "user", iso, iso))
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
            " category, category_source, occurred_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()


def signed_body(secret: str, number: int) -> tuple[bytes, str]:
    now = int(time.time() * 1000)
    event = {"sender": {"id": f"9{number:015d}"}, "recipient": {"id": PAGE_ID}, "timestamp": now,
             "message": {"mid": f"m_bench_{number}", "text": "coffee 3"}}
    body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [event]}]}).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def reload_reports(url: str, address: str, stop: threading.Event, answers: list) -> None:
    """Fetch `url` whole, again and again, at most once every RELOAD_EVERY seconds."""
    with requests.Session() as session:
        while not stop.is_set():
            began = time.monotonic()
            try:
                response = session.get(url, headers={"X-Forwarded-For": address}, timeout=60)
                answers.append((response.status_code, time.monotonic() - began, len(response.content)))
            except requests.RequestException as exc:
                answers.append((type(exc).__name__, time.monotonic() - began, 0))
            stop.wait(max(0.0, began + RELOAD_EVERY - time.monotonic()))


def post_webhooks(base: str, secret: str, duration: float, latencies: list) -> None:
    """Post a signed webhook every 0.1 s for `duration` seconds; note each one's answer time."""
    end = time.monotonic() + duration
    number = 0
    with requests.Session() as session:
        while time.monotonic() < end:
            began = time.monotonic()
            body, signature = signed_body(secret, number)
            try:
                response = session.post(f"{base}/webhook", data=body, timeout=30,
                                        headers={"X-Hub-Signature-256": signature})
                latencies.append((response.status_code, time.monotonic() - began))
            except requests.RequestException as exc:
                latencies.append((type(exc).__name__, time.monotonic() - began))
            number += 1
            time.sleep(max(0.0, began + 0.1 - time.monotonic()))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args, work: Path) -> int:
    key = secrets.token_hex(32)
    person = PsidHasher(key)("bench-person")
    first = last_month(dt.datetime.now(dt.timezone.utc).date())
    path = work / "expensebot.db"
    began = time.monotonic()
    seed(path, person, first, args.expenses)
    print(f"seeded {args.expenses} expenses in {first:%Y-%m} in {time.monotonic() - began:.1f} s")
    port = harness.free_port()
    env = harness.bot_env(args.app_secret, path, port, {"PSID_HASH_KEY": key, "EXPENSEBOT_TZ": "UTC",
                                                  "EXPENSEBOT_PUBLIC_URL": "https://bot.example",
                                                  "EXPENSEBOT_TRUSTED_PROXIES": "127.0.0.1"})
    log = work / "server.log"
    process = harness.start([sys.executable, str(args.root / "run.py"), "serve"], args.root, env, log)
    try:
        harness.wait_ready(process, port, 60, log)
        base = f"http://127.0.0.1:{port}"
        token = report.make_token(report.link_key(key), person, dt.datetime.now(dt.timezone.utc))
        url = f"{base}/report/{token}/{'' if args.page else 'expenses.csv'}?month={first:%Y-%m}"
        stop, answers, latencies = threading.Event(), [], []
        clients = [threading.Thread(target=reload_reports, args=(url, f"198.51.100.{n + 1}", stop, answers))
                   for n in range(args.clients)]
        for client in clients:
            client.start()
        time.sleep(2.0)  # every client has a request in flight before the first webhook
        post_webhooks(base, args.app_secret, args.duration, latencies)
        stop.set()
        for client in clients:
            client.join()
    finally:
        harness.stop(process)
    return report_figures(args, latencies, answers)


def report_figures(args, latencies: list, answers: list) -> int:
    times = [seconds for status, seconds in latencies if status == 200]
    failed = len(latencies) - len(times)
    print(f"webhooks: {len(latencies)} posted, {failed} not 200; answered in "
          f"p50 {statistics.median(times) * 1000:.0f} ms, p99 {percentile(times, 0.99) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")
    statuses = Counter(status for status, _, _ in answers)
    whole = [seconds for status, seconds, _ in answers if status == 200]
    sizes = {size for status, _, size in answers if status == 200}
    print(f"report ({'page' if args.page else 'CSV'}, {args.clients} clients): "
          + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=str)))
    if whole:
        print(f"  200s whole in p50 {statistics.median(whole) * 1000:.0f} ms, max {max(whole) * 1000:.0f} ms,"
              f" {max(sizes) / 1e6:.1f} MB")
    met = not failed and percentile(times, 0.99) < args.target
    print(f"{'PASS' if met else 'FAIL'}: webhook p99 < {args.target:g} s, every webhook 200")
    return 0 if met else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as work:
        try:
            return run(args, Path(work))
        except harness.HarnessError as exc:
            print(f"harness: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
