#!/usr/bin/env python3
"""Webhook throughput with the AI off vs the AI on against a model that is down, in one invocation.

    .venv/bin/python bench/ai_outage.py                  # 3 rounds, ~4 min; needs wrk
    .venv/bin/python bench/ai_outage.py --outages hang   # only the model that never answers
    .venv/bin/python bench/ai_outage.py --py-spy         # also sample the AI-on servers of the last round
                                                         # (pip install py-spy; raw stacks, kept on disk)

The same signed single-event bodies and wrk settings as bench_throughput.py (-t1 -c8, 10 s), no
page token (replies composed and logged). Each round starts `run.py serve` on a fresh database
with the AI off, then once per outage with AI_ENABLED=true and AI_TIMEOUT=2.5 against a local
model that is down in one of three ways:
  hang     accepts every request and never answers;
  refused  nothing listens on its port;
  503      answers every request 503 at once.
Prints req/s, p99 and errors of each run, the server's CPU µs per request split by thread (from
/proc, busiest first), the jobs left by status, and per outage the AI-on / AI-off req/s ratio of
each round and their median. Target: >= 0.9 for every outage. Exit 0 when met, 1 when missed,
2 when the harness could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_ingest as ingest  # noqa: E402
import bench_throughput as throughput  # noqa: E402
from profile_server import thread_cpu  # noqa: E402

AI_ON = {"AI_ENABLED": "true", "AI_MODEL": "down", "AI_TIMEOUT": "2.5"}
TARGET = 0.9


def answer_503(handler) -> None:
    handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    handler.send_response(503)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@contextlib.contextmanager
def model_down(how: str):
    """Yield the AI_URL of a model that is down in the way named."""
    if how == "hang":
        with ingest.hanging_model() as url:
            yield url
    elif how == "refused":
        yield f"http://127.0.0.1:{ingest.free_port()}/v1"
    else:
        with ingest.local_server(answer_503) as url:
            yield f"{url}/v1"


def run(args, work: Path, name: str, bodies: Path, extra: dict, spy: bool) -> dict:
    """Start the bot with `extra` in its environment, drive it with wrk, return the figures."""
    port, db, log = ingest.free_port(), work / f"{name}.db", work / f"{name}.log"
    proc = ingest.start(shlex.split(args.server_cmd), args.root, ingest.bot_env(args, db, port, extra), log)
    try:
        ingest.wait_ready(proc, port, args.ready_timeout, log)
        sampler = None
        if spy:
            sampler = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(proc.pid), "-d",
                 str(args.duration), "-r", "200", "--threads", "-f", "raw", "-o", str(work / f"{name}.py-spy.txt"),
                 "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before, cpu0 = thread_cpu(proc.pid), ingest.cpu_seconds(proc.pid)
        result = ingest.run_wrk(args, port, bodies, args.duration)
        after, cpu = thread_cpu(proc.pid), ingest.cpu_seconds(proc.pid) - cpu0
        if sampler is not None:
            sampler.wait()
    finally:
        ingest.stop(proc)
    per_thread = sorted(((after[t] - before.get(t, 0.0)) / result["requests"] * 1e6 for t in after), reverse=True)
    return {"requests_per_s": result["requests_per_s"], "p99_ms": result["latency_p99_us"] / 1000,
            "errors": result["errors"], "cpu_us_per_request": round(cpu / result["requests"] * 1e6),
            "per_thread_us": [round(x) for x in per_thread if x >= 1], "jobs": ingest.count_jobs(db)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--outages", default="hang,refused,503", help="which outages to run (hang,refused,503)")
    p.add_argument("--py-spy", action="store_true", help="sample the AI-on servers of the last round")
    p.add_argument("--keep-tmp", action="store_true", help="keep the logs, databases and samples")
    options, rest = p.parse_known_args(argv)
    args = throughput.parse_args(rest)
    outages = options.outages.split(",")
    if shutil.which(args.wrk) is None:
        print(f"error: {args.wrk} not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    args.app_secret = secrets.token_hex(32)
    rng = random.Random(7)
    senders = ingest.make_senders(rng, args.senders)
    work = Path(tempfile.mkdtemp(prefix="ai-outage-"))
    bodies = work / "single.txt"
    ingest.write_bodies(bodies, args.app_secret, rng, senders, args.single_bodies, 1, "o")
    ratios: dict[str, list[float]] = {how: [] for how in outages}
    try:
        for number in range(1, options.rounds + 1):
            off = run(args, work, f"off-{number}", bodies, {}, False)
            print(f"round {number} off     {json.dumps(off)}", flush=True)
            for how in outages:
                with model_down(how) as url:
                    spy = options.py_spy and number == options.rounds
                    on = run(args, work, f"{how}-{number}", bodies, {**AI_ON, "AI_URL": url}, spy)
                ratios[how].append(on["requests_per_s"] / off["requests_per_s"])
                print(f"round {number} {how:7} {json.dumps(on)}", flush=True)
    except ingest.HarnessError as exc:
        print(f"harness error: {exc}", file=sys.stderr)
        return 2
    finally:
        if options.keep_tmp or options.py_spy:
            print(f"scratch directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    met = True
    for how, values in ratios.items():
        median = statistics.median(values)
        met = met and median >= TARGET
        print(f"{'PASS' if median >= TARGET else 'FAIL'}  model {how}: AI on / AI off req/s per round "
              f"{', '.join(f'{x:.3f}' for x in values)}; median {median:.3f} (target >= {TARGET})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
