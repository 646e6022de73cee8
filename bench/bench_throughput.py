"""Webhook throughput with replies on and off, against two references, in one invocation.

    .venv/bin/python bench/bench_throughput.py          # ~1 min; needs wrk and nginx (Debian packages)

Same pre-generated signed bodies (bench_ingest's), same wrk settings (-t1 -c8, 10 s) for each run:
  hello      bench/hello_app.py: Bottle on waitress, "Task queue depth" warnings silenced;
  lean       bench/lean_app.py: the same work (verify, parse, the same inserts on a fresh
             connection, ack) with nothing else;
  contract   bench/lean_app.py in its `contract` mode: the lean work plus the least the product
             and the design card ask of each message (Bottle, the sender's settings and erasure,
             its two log lines, a logged reply with the day's total), for reference: how much of
             the distance to the bot that work explains (no target);
  replies-on `python run.py serve` with a page token, FB_GRAPH_URL pointing at nginx answering
             every call with a fixed 200 (`return 200`), started here with its own config;
  replies-off the same server without a page token (replies composed and logged, not sent);
  batch      replies on, bodies of 100 message events: committed events per second.
Targets: replies-on >= 0.20 of hello with p99 <= 15 ms and no errors; replies-off >= 0.8 of lean;
batch >= 6,000 events/s. Also the server CPU per reply: (CPU per request with replies on - off).
Exit 0 when every target is met, 1 when one is missed, 2 when the harness could not run.
"""
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
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_ingest as ingest  # noqa: E402

NGINX_CONF = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    client_body_buffer_size 1m;
    default_type application/json;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /v25.0/ {{ return 200 '{batch}'; }}
        location / {{ return 200 '{{"recipient_id":"1","message_id":"m_1"}}'; }}
    }}
}}
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    p.add_argument("--batch-duration", type=int, default=5, help="seconds of the batch run (5)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--nginx", default="nginx")
    p.add_argument("--single-bodies", type=int, default=120_000)
    p.add_argument("--batch-bodies", type=int, default=1_500)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--senders", type=int, default=300)
    p.add_argument("--root", type=Path, default=ingest.ROOT)
    p.add_argument("--server-cmd", default=f"{shlex.quote(sys.executable)} run.py serve")
    p.add_argument("--ready-timeout", type=float, default=30.0)
    p.add_argument("--min-hello-ratio", type=float, default=0.20)
    p.add_argument("--max-p99-ms", type=float, default=15.0)
    p.add_argument("--min-lean-ratio", type=float, default=0.8)
    p.add_argument("--min-batch-eps", type=float, default=6_000.0)
    return p.parse_args(argv)


@contextlib.contextmanager
def nginx(args, work: Path):
    """nginx answering every Graph call with 200: a Send API that costs this machine next to nothing."""
    port = ingest.free_port()
    (work / "nginx").mkdir()
    batch = json.dumps([{"code": 200, "body": "{}"}] * 50)  # no backslashes: nginx would unescape them
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work / "nginx", port=port, batch=batch.replace("'", "\\'")))
    proc = subprocess.Popen([args.nginx, "-c", str(conf), "-p", str(work / "nginx"), "-e", str(work / "nginx" / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with contextlib.closing(__import__("socket").create_connection(("127.0.0.1", port), 0.2)):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ingest.HarnessError(f"nginx did not start: {(work / 'nginx' / 'error.log').read_text()}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v25.0", proc
    finally:
        ingest.stop(proc)


def run_app(args, work: Path, name: str, cmd: list[str], env: dict, bodies: Path, duration: int, db: Path | None,
            extra_args: list[str] = ()):
    port = ingest.free_port()
    log = work / f"{name}.log"
    proc = ingest.start([*cmd, str(port)] if db is None else [*cmd, str(port), str(db), *extra_args], args.root,
                        ingest.server_env(env), log)
    try:
        ingest.wait_ready(proc, port, args.ready_timeout, log)
        cpu0 = ingest.cpu_seconds(proc.pid)
        result = ingest.run_wrk(args, port, bodies, duration)
        result["server_cpu_s"] = ingest.delta(ingest.cpu_seconds(proc.pid), cpu0)
    finally:
        result_stop = ingest.stop(proc)
    result["stop"] = result_stop
    if db is not None:
        result["rows"] = ingest.count_rows(db)
    return result


def run_bot(args, work: Path, name: str, bodies: Path, duration: int, senders, graph_url: str | None):
    extra = {"FB_PAGE_ACCESS_TOKEN": secrets.token_hex(16), "FB_GRAPH_URL": graph_url} if graph_url else {}
    result = ingest.run_server(args, work, name, bodies, duration, senders, extra)
    log = work / f"{name}.log"
    counts: dict[str, int] = {}
    with open(log, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            for event in ("reply_sent", "reply_failed", "reply_dropped", "reply_logged"):
                if f'"event": "{event}"' in line or f'"event":"{event}"' in line:
                    counts[event] = counts.get(event, 0) + 1
    result["replies"] = counts
    return result


def per_request_cpu(result) -> float | None:
    if not result.get("server_cpu_s") or not result.get("requests"):
        return None
    return result["server_cpu_s"] / result["requests"]


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in (args.wrk, args.nginx):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found (apt-get install -y wrk nginx)", file=sys.stderr)
            return 2
    args.app_secret = secrets.token_hex(32)
    hash_key = secrets.token_hex(32)
    rng = random.Random(7)
    senders = ingest.make_senders(rng, args.senders)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        single, batch = work / "single.txt", work / "batch.txt"
        ingest.write_bodies(single, args.app_secret, rng, senders, args.single_bodies, 1, "s")
        ingest.write_bodies(batch, args.app_secret, rng, senders, args.batch_bodies, args.batch_size, "b")
        try:
            results = {}
            results["hello"] = run_app(args, work, "hello", [sys.executable, str(ingest.HELLO_APP)], {}, single,
                                       args.duration, None)
            lean_env = {"FB_APP_SECRET": args.app_secret, "PSID_HASH_KEY": hash_key}
            results["lean"] = run_app(args, work, "lean", [sys.executable, str(BENCH_DIR / "lean_app.py")],
                                      lean_env, single, args.duration, work / "lean.db")
            results["contract"] = run_app(args, work, "contract", [sys.executable, str(BENCH_DIR / "lean_app.py")],
                                          lean_env, single, args.duration, work / "contract.db", ["contract"])
            with nginx(args, work) as (graph_url, nginx_proc):
                cpu0 = ingest.cpu_seconds(nginx_proc.pid)
                results["replies_on"] = run_bot(args, work, "replies_on", single, args.duration, senders, graph_url)
                results["replies_off"] = run_bot(args, work, "replies_off", single, args.duration, senders, None)
                results["batch"] = run_bot(args, work, "batch", batch, args.batch_duration, senders, graph_url)
                results["nginx_cpu_s"] = ingest.delta(ingest.cpu_seconds(nginx_proc.pid), cpu0)
        except ingest.HarnessError as exc:
            print(f"harness error: {exc}", file=sys.stderr)
            return 2
    return report(args, results)


def report(args, r) -> int:
    print(f"{'run':12} {'requests':>9} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} "
          f"{'cpu s':>6} replies")
    for name in ("hello", "lean", "contract", "replies_on", "replies_off", "batch"):
        x = r[name]
        print(f"{name:12} {int(x['requests']):9d} {x['requests_per_s']:9.0f} {x['latency_p50_us'] / 1000:7.2f} {x['latency_p99_us'] / 1000:7.2f} "
              f"{x['latency_max_us'] / 1000:7.1f} {x['errors']:6d} {x['server_cpu_s'] or 0:6.1f} {x.get('replies', '')}")
    on, off, hello, lean, batch = r["replies_on"], r["replies_off"], r["hello"], r["lean"], r["batch"]
    hello_ratio = on["requests_per_s"] / hello["requests_per_s"]
    lean_ratio = off["requests_per_s"] / lean["requests_per_s"]
    eps = batch["rows"] / batch["wrk_wall_s"]
    cpu_on, cpu_off = per_request_cpu(on), per_request_cpu(off)
    per_reply = (cpu_on - cpu_off) * 1e6 if cpu_on and cpu_off else None
    batch_replies = batch["replies"].get("reply_sent", 0)
    contract = r["contract"]
    print(f"\nreplies on / hello = {hello_ratio:.3f}; replies off / lean = {lean_ratio:.3f}; "
          f"batch = {eps:.0f} events/s ({batch_replies} replies sent)")
    print(f"for reference: contract / lean = {contract['requests_per_s'] / lean['requests_per_s']:.3f}; "
          f"replies off / contract = {off['requests_per_s'] / contract['requests_per_s']:.3f}; server CPU per "
          f"request: lean {per_request_cpu(lean) * 1e6:.0f} µs, contract {per_request_cpu(contract) * 1e6:.0f} µs")
    print(f"server CPU per request: replies on {cpu_on * 1e6:.0f} µs, off {cpu_off * 1e6:.0f} µs "
          f"-> about {per_reply:.0f} µs per reply sent (the difference of two runs, so only within tens of µs; "
          f"bench_replies.py measures it alone)" if per_reply else "")
    checks = [
        ("replies on >= hello x", hello_ratio >= args.min_hello_ratio, f"{hello_ratio:.3f} (target {args.min_hello_ratio})"),
        ("replies on p99 <=", on["latency_p99_us"] / 1000 <= args.max_p99_ms, f"{on['latency_p99_us'] / 1000:.2f} ms (target {args.max_p99_ms})"),
        ("replies on errors", on["errors"] == 0, str(on["errors"])),
        ("replies off >= lean x", lean_ratio >= args.min_lean_ratio, f"{lean_ratio:.3f} (target {args.min_lean_ratio})"),
        ("batch events/s >=", eps >= args.min_batch_eps, f"{eps:.0f} (target {args.min_batch_eps:.0f})"),
    ]
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name} {detail}")
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    out = results_dir / f"throughput-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "wrk_text"} if isinstance(v, dict) else v)
                               for k, v in r.items()}, indent=2))
    print(f"results: {out}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
