#!/usr/bin/env python3
"""One server under wrk, with its CPU per request split by thread: where a webhook's time goes.

    .venv/bin/python bench/profile_server.py off          # `run.py serve`, replies composed and logged
    .venv/bin/python bench/profile_server.py on           # replies sent to nginx `return 200`
    .venv/bin/python bench/profile_server.py batch        # bodies of 100 events, replies on
    .venv/bin/python bench/profile_server.py lean         # bench/lean_app.py (contract: its contract mode)
    .venv/bin/python bench/profile_server.py off --py-spy # also sample it (pip install py-spy): only
                                                          # threads holding the GIL, raw stacks

The same bodies, wrk settings (-t1 -c8) and nginx stand-in as bench_throughput.py, one run of
--seconds. Prints one JSON object: req/s, p99, errors, the server's CPU µs per request and each
thread's (from /proc, busiest first: the request thread, waitress' event loop, then the rest),
rows committed, and the py-spy file if asked. `--root DIR` runs another checkout's code;
`--cpus 0` pins every thread of the server to CPU 0 (taskset), to see what handing the GIL
between cores costs (every app gains, the hello most: a diagnostic, not a setting).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_ingest as ingest  # noqa: E402
import bench_throughput as throughput  # noqa: E402

MODES = ("on", "off", "batch", "lean", "contract", "hello")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each of the process' threads, by thread id."""
    return {task.name: ingest.stat_cpu_seconds(task / "stat") for task in Path(f"/proc/{pid}/task").iterdir()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=MODES)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--root", type=Path, default=BENCH_DIR.parent)
    p.add_argument("--cpus", help="pin the server's threads to these CPUs (taskset -a -p LIST), e.g. 0")
    p.add_argument("--py-spy", action="store_true", help="sample the server with py-spy (--gil, raw output)")
    options = p.parse_args(argv)
    args = throughput.parse_args([])
    args.root = options.root
    args.app_secret = secrets.token_hex(32)
    rng = random.Random(7)
    senders = ingest.make_senders(rng, args.senders)
    work = Path(tempfile.mkdtemp(prefix="profile-server-"))
    bodies = work / "bodies.txt"
    per_body = args.batch_size if options.mode == "batch" else 1
    ingest.write_bodies(bodies, args.app_secret, rng, senders, 60_000 // per_body, per_body, "p")
    with contextlib.ExitStack() as stack:
        if not options.py_spy:  # kept for its samples
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        extra = {}
        if options.mode in ("on", "batch"):
            url, _ = stack.enter_context(throughput.nginx(args, work))
            extra = {"FB_PAGE_ACCESS_TOKEN": secrets.token_hex(16), "FB_GRAPH_URL": url}
        port, db, log = ingest.free_port(), work / "profile.db", work / "server.log"
        env = ingest.bot_env(args, db, port, extra)
        if options.mode in ("lean", "contract"):
            cmd = [sys.executable, str(options.root / "bench" / "lean_app.py"), str(port), str(db)]
            cmd += ["contract"] if options.mode == "contract" else []
        elif options.mode == "hello":
            cmd = [sys.executable, str(options.root / "bench" / "hello_app.py"), str(port)]
        else:
            cmd = shlex.split(args.server_cmd)
        proc = ingest.start(cmd, options.root, env, log)
        stack.callback(ingest.stop, proc)
        ingest.wait_ready(proc, port, args.ready_timeout, log)
        if options.cpus:
            subprocess.run(["taskset", "-a", "-p", "-c", options.cpus, str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        spy = None
        if options.py_spy:
            spy = subprocess.Popen(["py-spy", "record", "-p", str(proc.pid), "-d", str(options.seconds), "-r", "500",
                                    "-f", "raw", "-o", str(work / "py-spy.txt"), "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before, cpu0 = thread_cpu(proc.pid), ingest.cpu_seconds(proc.pid)
        result = ingest.run_wrk(args, port, bodies, options.seconds)
        after, cpu = thread_cpu(proc.pid), ingest.cpu_seconds(proc.pid) - cpu0
        if spy is not None:
            spy.wait()
        per_thread = sorted(((after[t] - before.get(t, 0.0)) / result["requests"] * 1e6 for t in after), reverse=True)
        print(json.dumps({
            "mode": options.mode, "requests_per_s": result["requests_per_s"],
            "p99_ms": result["latency_p99_us"] / 1000, "errors": result["errors"],
            "cpu_us_per_request": round(cpu / result["requests"] * 1e6),
            "per_thread_us": [round(x) for x in per_thread if x >= 1],
            "rows": ingest.count_rows(db) if options.mode != "hello" else None,
            "py_spy": str(work / "py-spy.txt") if spy is not None else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
