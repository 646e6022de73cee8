#!/usr/bin/env python3
"""CPU per message of the whole bot in one process, every thread counted: steadier than req/s.

    .venv/bin/python bench/cpu_per_message.py                  # replies composed and logged (no page token)
    .venv/bin/python bench/cpu_per_message.py --replies-on     # replies sent to nginx `return 200` (needs nginx)
    .venv/bin/python bench/cpu_per_message.py --root DIR       # the code of another checkout
    .venv/bin/python bench/cpu_per_message.py --profile 30     # and cProfile's 30 costliest functions
    .venv/bin/python bench/cpu_per_message.py --per-body 100   # bodies of 100 events (the batch run's shape)

The real service (`Service.open`: its outbox, enrichment poller, spool replayer, WAL keeper) with
AI off, its app called in-process by one thread, one signed webhook after another, single events
from 300 senders. Printed, per message: the request thread's CPU (time.thread_time), the whole
process' CPU (time.process_time, every thread, from the first post until every reply is out), and
the difference (the background threads). Other processes count in neither clock, so on a shared
machine this is steadier than a throughput ratio; it shows no waiting (p99), and no cost of many
request threads taking turns on the GIL (bench_throughput.py has both). cProfile (--profile) times
every call and inflates small Python functions several times over: read its shares, not its µs.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import hmac
import io
import json
import logging
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TEXTS = ["coffee 100", "lunch 12,50 #food", "$4.50 latte", "taxi 18 #transport", "beer 6.50 yesterday",
         "groceries 56.80 #food", "rent 1,200", "laptop 1.5k", "\u20ac12 lunch", "hello"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--per-body", type=int, default=1, metavar="N", help="events per webhook body (1)")
    p.add_argument("--replies-on", action="store_true", help="send replies to nginx answering 200")
    p.add_argument("--root", type=Path, default=BENCH_DIR.parent, help="the checkout whose code runs")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also run the measured posts under cProfile (thread CPU) and print its N costliest functions")
    p.add_argument("--profile-file", type=Path, help="and save cProfile's stats there (pstats format)")
    args = p.parse_args(argv)
    if args.per_body < 1 or args.warmup % args.per_body or args.messages % args.per_body:
        p.error("--warmup and --messages must be multiples of --per-body")
    sys.path.insert(0, str(args.root))
    sys.path.insert(1, str(BENCH_DIR))
    import harness  # noqa: PLC0415

    from expensebot import logs  # noqa: PLC0415 (from --root)
    from expensebot.config import Config  # noqa: PLC0415
    from expensebot.service import Service  # noqa: PLC0415

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return _run(args, logs, Config, Service, harness)
    finally:  # leave logging as it was (the tests call main())
        root.handlers[:] = handlers
        root.setLevel(level)


def _run(args, logs, Config, Service, harness) -> int:
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="expensebot-cpu-") as tmp:
        work = Path(tmp)
        log = work / "log.jsonl"
        with open(log, "w") as log_file, _send_api(args, work, harness) as graph_url:
            logs.configure(log_file)
            token = {"fb_page_access_token": "page-token-0123456789", "fb_graph_url": graph_url} if graph_url else {}
            config = Config(db_path=work / "cpu.db", spool_dir=work / "spool", fb_app_secret=secret,
                            fb_verify_token="verify-0123456789", psid_hash_key="cpu-key-0123456789abcdef", **token)
            service = Service.open(config)
            try:
                app = service.app
                now = int(time.time() * 1000)
                n = args.per_body
                bodies = [_body(range(i, i + n), now + i) for i in range(0, args.warmup + args.messages, n)]
                warmup = args.warmup // n
                for body in bodies[:warmup]:
                    _post(app, body, secret)
                replied = '"reply_sent"' if graph_url else '"reply_logged"'
                _wait(lambda: log.read_text().count(replied) >= args.warmup)
                profiler = cProfile.Profile(time.thread_time) if args.profile else contextlib.nullcontext()
                process, thread = time.process_time(), time.thread_time()
                with profiler:
                    for body in bodies[warmup:]:
                        _post(app, body, secret)
                thread = time.thread_time() - thread
                done = _wait(lambda: log.read_text().count(replied) >= args.warmup + args.messages)
                process = time.process_time() - process
            finally:
                service.close()
    if args.profile:  # cProfile slows each call: read its shares, not the CPU figures above
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(args.profile)
        if args.profile_file:
            stats.dump_stats(args.profile_file)
    per = 1e6 / args.messages
    result = {"replies": "sent to nginx" if args.replies_on else "logged", "messages": args.messages,
              "all_replied": done, "request_thread_us": round(thread * per),
              "whole_process_us": round(process * per), "other_threads_us": round((process - thread) * per)}
    print(json.dumps(result))
    return 0 if done else 1


def _body(events: range, ms: int) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": "1", "time": ms, "messaging": [{
        "sender": {"id": str(10**15 + i % 300)}, "recipient": {"id": "1"}, "timestamp": ms,
        "message": {"mid": f"m_cpu_{i:09d}", "text": TEXTS[i % len(TEXTS)]}} for i in events]}]}).encode()


def _post(app, body: bytes, secret: str) -> None:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhook", "QUERY_STRING": "", "SERVER_NAME": "bench",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
               "HTTP_X_HUB_SIGNATURE_256": signature, "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr}
    status = []
    chunks = app(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(chunks)
    if not status[0].startswith("200"):
        raise SystemExit(f"webhook answered {status[0]}")


def _wait(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextlib.contextmanager
def _send_api(args, work: Path, harness):
    """nginx answering every Graph call with 200 (the throughput benchmark's), or None: replies logged."""
    if not args.replies_on:
        yield None
        return
    with harness.nginx(work) as url:
        yield url


if __name__ == "__main__":
    sys.exit(main())
