#!/usr/bin/env python3
"""Webhook throughput of the bot against a reference doing the same work, in one invocation.

    .venv/bin/python bench/bench_throughput.py                  # 3 rounds, ~4 min; needs wrk and nginx
    .venv/bin/python bench/bench_throughput.py --outages hang,refused,503 --rounds 5

Every run gets the same pre-generated signed bodies (every mid new) from `wrk -t1 -c8` for
--duration seconds, on a fresh database; replies go to nginx answering every Graph call with 200
(a Send API that costs no CPU here). The runs, one after another in each round:
  hello         bench/hello_app.py, Bottle's hello world on waitress: context only;
  contract      bench/lean_app.py: the work the product asks of a webhook, done leanly;
  bot           `python run.py serve`, replies sent;
  bot, AI down  the same with AI_ENABLED=true against a model that takes each request and never
                answers (--outages adds `refused`: nothing listens; `503`: answered 503 at once);
  batch         the bot with bodies of 100 events: events committed a second.
Runs on a shared machine differ by up to 40 %, so runs are compared within their round and the
targets judged on the median of the rounds: bot >= 0.8 x contract req/s; bot p99 <= 15 ms, no
errors; bot with each AI outage >= 0.9 x bot. Prints one table and writes
bench/results/throughput-<time>.json. Exit 0 when every target is met, 1 when one is missed, 2
when the harness could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

OUTAGE_RUNS = {"hang": "bot, AI down", "refused": "bot, AI refused", "503": "bot, AI 503"}
AI_ON = {"AI_ENABLED": "true", "AI_MODEL": "down", "AI_TIMEOUT": "2.5"}
BATCH_SIZE = 100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds of every run, alternated (3)")
    p.add_argument("--duration", type=float, default=10, help="seconds of each wrk run (10)")
    p.add_argument("--batch-duration", type=float, default=5, help="seconds of the batch run (5)")
    p.add_argument("--connections", type=int, default=8, help="wrk -c (8)")
    p.add_argument("--outages", default="hang", help="AI outages to run, of hang,refused,503 (hang)")
    p.add_argument("--single-bodies", type=int, default=120_000, help="more than the fastest run sends")
    p.add_argument("--batch-bodies", type=int, default=1_500)
    p.add_argument("--min-contract-ratio", type=float, default=0.8)
    p.add_argument("--max-p99-ms", type=float, default=15.0)
    p.add_argument("--min-outage-ratio", type=float, default=0.9)
    args = p.parse_args(argv)
    args.outages = args.outages.split(",")
    if not set(args.outages) <= set(OUTAGE_RUNS):
        p.error(f"--outages: each of {', '.join(OUTAGE_RUNS)}")
    return args


def plan(args) -> list[tuple[str, str | None]]:
    """The runs of one round, in order: (name, the AI outage it runs with)."""
    return [("hello", None), ("contract", None), ("bot", None),
            *[(OUTAGE_RUNS[how], how) for how in args.outages], ("batch", None)]


def command(args, name: str, port: int, db: Path, extra: dict) -> tuple[list[str], dict]:
    """The command and environment of one run; every run gets the bot's (only the bot reads most of it)."""
    if name == "hello":
        cmd = [sys.executable, str(harness.BENCH_DIR / "hello_app.py"), str(port)]
    elif name == "contract":
        cmd = [sys.executable, str(harness.BENCH_DIR / "lean_app.py"), str(port), str(db)]
    else:
        cmd = [sys.executable, "run.py", "serve"]
    send = {"FB_PAGE_ACCESS_TOKEN": secrets.token_hex(16), "FB_GRAPH_URL": args.graph_url}
    return cmd, harness.bot_env(args.app_secret, db, port, {**send, **extra})


def measure(args, work: Path, name: str, number: int, outage: str | None) -> dict:
    """Start one run's server on a fresh database, drive it with wrk, stop it; return its figures."""
    slug = f"{name.replace(', ', '-').replace(' ', '-')}-{number}"
    port, db, log = harness.free_port(), work / f"{slug}.db", work / f"{slug}.log"
    bodies, n_bodies = args.bodies["batch" if name == "batch" else "single"]
    with contextlib.ExitStack() as stack:
        extra = {**AI_ON, "AI_URL": stack.enter_context(harness.model_down(outage))} if outage else {}
        cmd, env = command(args, name, port, db, extra)
        proc = harness.start(cmd, harness.ROOT, env, log)
        try:
            harness.wait_ready(proc, port, 30, log)
            before = harness.thread_cpu(proc.pid)
            result = harness.run_wrk(port, bodies, n_bodies, args.batch_duration if name == "batch" else args.duration,
                                     args.connections)
            after = harness.thread_cpu(proc.pid)
        finally:
            killed = harness.stop(proc)
    spent = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    per_request = 1e6 / max(result["requests"], 1)
    result.update(killed=killed, cpu_us=round(sum(spent) * per_request),
                  threads_us=[round(s * per_request) for s in spent if s * per_request >= 1])
    if name != "hello":
        result["rows"] = harness.count_rows(db)
        result["rows_ok"], result["rows_detail"] = harness.rows_check(result, BATCH_SIZE if name == "batch" else 1)
    if name == "batch":
        result["events_per_s"] = result["rows"] / (result["duration_us"] / 1e6)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found (apt-get install -y wrk nginx)", file=sys.stderr)
            return 2
    args.app_secret = secrets.token_hex(32)
    rng = random.Random(7)
    senders = harness.make_senders(rng, 300)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        single, batch = work / "single.txt", work / "batch.txt"
        harness.write_bodies(single, args.app_secret, rng, senders, args.single_bodies, 1, "s")
        harness.write_bodies(batch, args.app_secret, rng, senders, args.batch_bodies, BATCH_SIZE, "b")
        args.bodies = {"single": (single, args.single_bodies), "batch": (batch, args.batch_bodies)}
        rounds: list[dict[str, dict]] = []
        try:
            with harness.nginx(work) as graph_url:
                args.graph_url = graph_url
                for number in range(1, args.rounds + 1):
                    rounds.append({})
                    for name, outage in plan(args):
                        print(f"round {number}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
                        rounds[-1][name] = measure(args, work, name, number, outage)
        except harness.HarnessError as exc:
            print(f"harness error: {exc}", file=sys.stderr)
            return 2
    return report(args, rounds, load_before)


def medians(args, rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Each run's figures over the rounds: medians of the speeds, the worst of the rest."""
    out = {}
    for name, _ in plan(args):
        runs = [r[name] for r in rounds]
        out[name] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
            "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
            "max_ms": max(r["max_us"] for r in runs) / 1000,
            "errors": sum(r["errors"] for r in runs),
            "cpu_us": statistics.median(r["cpu_us"] for r in runs),
            "rows_ok": all(r.get("rows_ok", True) for r in runs),
            "exhausted": any(r["exhausted"] for r in runs),
        }
        if name == "batch":
            out[name]["events_per_s"] = statistics.median(r["events_per_s"] for r in runs)
    return out


def ratios(rounds: list[dict[str, dict]], name: str, reference: str) -> list[float]:
    """name's req/s over reference's, round by round (runs seconds apart meet the same machine)."""
    return [r[name]["requests_per_s"] / r[reference]["requests_per_s"] for r in rounds]


def checks(args, rounds: list[dict[str, dict]], m: dict[str, dict]) -> list[tuple[str, bool, str]]:
    def judged(values: list[float], ok) -> tuple[bool, str]:
        median = statistics.median(values)
        return ok(median), f"{median:.3f} (rounds: {', '.join(f'{v:.3f}' for v in values)})"

    bot, each_p99 = m["bot"], [r["bot"]["p99_us"] / 1000 for r in rounds]
    out = [(f"bot >= {args.min_contract_ratio} x contract req/s",
            *judged(ratios(rounds, "bot", "contract"), lambda x: x >= args.min_contract_ratio)),
           (f"bot p99 <= {args.max_p99_ms:g} ms", bot["p99_ms"] <= args.max_p99_ms,
            f"{bot['p99_ms']:.1f} ms (rounds: {', '.join(f'{p99:.1f}' for p99 in each_p99)})"),
           ("bot: no errors, every acknowledged event stored", bot["errors"] == 0 and bot["rows_ok"],
            f"{bot['errors']} errors; " + "; ".join(r["bot"]["rows_detail"] for r in rounds))]
    for how in args.outages:
        name = OUTAGE_RUNS[how]
        ok, detail = judged(ratios(rounds, name, "bot"), lambda x: x >= args.min_outage_ratio)
        out.append((f"{name} >= {args.min_outage_ratio} x bot req/s, no errors", ok and m[name]["errors"] == 0,
                    f"{detail}; {m[name]['errors']} errors"))
    return out


def report(args, rounds: list[dict[str, dict]], load_before) -> int:
    m = medians(args, rounds)
    print(f"\nmedians of {len(rounds)} rounds; wrk -t1 -c{args.connections}, {args.duration:g} s a run "
          f"(batch {args.batch_duration:g} s); load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"{'run':16}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'errors':>7}{'CPU µs/req':>11}  note")
    for name, x in m.items():
        note = f"{x['events_per_s']:,.0f} events/s" if name == "batch" else ""
        note += "" if x["rows_ok"] else " ROWS DO NOT MATCH THE ACKS"
        note += " bodies ran out: a lower bound" if x["exhausted"] else ""
        print(f"{name:16}{x['requests_per_s']:9,.0f}{x['p50_ms']:8.2f}{x['p99_ms']:8.1f}{x['max_ms']:8.0f}"
              f"{x['errors']:7d}{x['cpu_us']:11,.0f}  {note.strip()}")
    threads = sorted(rounds, key=lambda r: r["bot"]["requests_per_s"])[len(rounds) // 2]["bot"]["threads_us"]
    print(f"bot CPU µs a request by thread, busiest first (median round): {', '.join(map(str, threads))}\n")
    verdicts = checks(args, rounds, m)
    for name, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    out = harness.BENCH_DIR / "results" / f"throughput-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "commit": commit(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_before": load_before, "load_after": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k in ("rounds", "duration", "batch_duration",
                                                                  "connections", "outages")},
        "medians": m, "rounds": rounds, "checks": [{"name": n, "pass": ok, "detail": d} for n, ok, d in verdicts],
    }, indent=2) + "\n")
    print(f"results: {out}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


def commit() -> str:
    """The commit measured, marked when the code differs from it."""
    def git(*words):
        return subprocess.run(["git", *words], cwd=harness.ROOT, capture_output=True, text=True).stdout.strip()
    changed = git("status", "--porcelain", "--", "expensebot", "run.py", "schema.sql", "bench")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if changed else "")


if __name__ == "__main__":
    sys.exit(main())
