#!/usr/bin/env python3
"""CPU per message of the whole bot in one process, every thread counted: steadier than req/s.

    .venv/bin/python bench/cpu_per_message.py                  # replies composed and logged (no page token)
    .venv/bin/python bench/cpu_per_message.py --replies-on     # replies sent to nginx `return 200` (needs nginx)
    .venv/bin/python bench/cpu_per_message.py --root DIR       # the code of another checkout
    .venv/bin/python bench/cpu_per_message.py --profile 30     # and cProfile's 30 costliest functions
    .venv/bin/python bench/cpu_per_message.py --per-body 100   # bodies of 100 events (the batch run's shape)
    .venv/bin/python bench/cpu_per_message.py --phases         # and the thread CPU of each main step

The real service (`Service.open`: its reply senders with REPLY_GATHER, enrichment poller, spool
replayer, WAL keeper) with AI off; the app called in-process, one webhook after another, single
events from 300 senders (the budget's texts), signed. Printed, per message: the request
thread's CPU (time.thread_time), the whole process' CPU (time.process_time, every thread, from
the first post until every reply is logged), and the difference (the background threads). On a
shared machine the other processes do not count in either clock, which is why this is steadier
than a throughput ratio; it cannot show waiting (p99).

--phases wraps the main steps (PHASES) in a timer of the thread's own CPU and prints µs per message
for each, on the request thread and on the reply senders. Steps nest (Ingest.save holds
Ingest._store), so they do not add up; each wrapper costs about a microsecond. Unlike cProfile,
which times every call and inflates small Python functions several times over, this shows what a
step costs in the running service, cold caches included (the parser takes ~40 µs a single-event
message here, ~20 in bodies of 100, ~11 in a loop of its own).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import hashlib
import hmac
import importlib
import io
import json
import logging
import pstats
import secrets
import sys
import tempfile
import threading
import time
import types
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
    p.add_argument("--phases", action="store_true", help="also time the main steps (thread CPU, µs per message)")
    args = p.parse_args(argv)
    if args.per_body < 1 or args.warmup % args.per_body or args.messages % args.per_body:
        p.error("--warmup and --messages must be multiples of --per-body")
    sys.path.insert(0, str(args.root))
    sys.path.insert(1, str(BENCH_DIR))
    import bench_throughput  # noqa: PLC0415

    from expensebot import logs  # noqa: PLC0415 (from --root)
    from expensebot.config import Config  # noqa: PLC0415
    from expensebot.service import Service  # noqa: PLC0415

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    phases = Phases() if args.phases else None
    try:
        if phases:
            phases.wrap_all()
        return _run(args, logs, Config, Service, bench_throughput, phases)
    finally:  # leave logging as it was (the tests call main()), and the code unwrapped
        root.handlers[:] = handlers
        root.setLevel(level)
        if phases:
            phases.unwrap_all()


# (module, class or None, attribute): the steps --phases times. log_event is timed where it is called.
PHASES = [
    ("expensebot.ingest.webhook", None, "read_delivery"),
    ("expensebot.ingest.write", "Ingest", "accept"),
    ("expensebot.ingest.write", "Ingest", "save"),
    ("expensebot.ingest.write", "Ingest", "_store"),
    ("expensebot.ingest.write", "Ingest", "_read_event"),
    ("expensebot.ingest.write", None, "person_of"),
    ("expensebot.chat.parser", None, "parse_message"),
    ("expensebot.db", "Database", "connect"),
    ("expensebot.replies.outbox", "Outbox", "submit"),
    ("expensebot.replies.compose", "Replier", "shown"),
    ("expensebot.ingest.write", None, "log_event"),
    ("expensebot.replies.outbox", "Outbox", "_deliver"),
    ("expensebot.replies.outbox", "Outbox", "_compose"),
    ("expensebot.replies.outbox", "Outbox", "_settle"),
    ("expensebot.replies.outbox", "Outbox", "_claim"),
    ("expensebot.replies.outbox", None, "log_event"),
    ("expensebot.replies.graph", "GraphClient", "send_batch"),
    ("expensebot.replies.graph", "GraphClient", "_call"),
]


class Phases:
    """Thread CPU spent in each of PHASES, split into the request thread and the reply senders."""

    def __init__(self):
        self.spent: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._undo: list[tuple[object, str, object]] = []

    def wrap_all(self) -> None:
        for module_name, class_name, name in PHASES:
            module = importlib.import_module(module_name)
            owner = getattr(module, class_name) if class_name else module
            if not hasattr(owner, name):  # an older checkout (--root) without this step
                continue
            label = f"{class_name or module_name.rsplit('.', 1)[1]}.{name}"
            function = getattr(owner, name)
            self._undo.append((owner, name, function))
            setattr(owner, name, self._timed(function, label))

    def unwrap_all(self) -> None:
        for owner, name, function in reversed(self._undo):
            setattr(owner, name, function)

    def reset(self) -> None:
        with self._lock:
            self.spent.clear()

    def _timed(self, function, label: str):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                thread = threading.current_thread()
                where = ("request" if thread is threading.main_thread()
                         else "senders" if thread.name.startswith("reply-sender") else "other")
                with self._lock:
                    self.spent[where, label] = self.spent.get((where, label), 0.0) + spent
        return timed

    def per_message(self, messages: int) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for (where, label), spent in sorted(self.spent.items(), key=lambda item: -item[1]):
            out.setdefault(where, {})[label] = round(spent / messages * 1e6, 1)
        return out


def _run(args, logs, Config, Service, bench_throughput, phases) -> int:
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="expensebot-cpu-") as tmp:
        work = Path(tmp)
        log = work / "log.jsonl"
        with open(log, "w") as log_file, _send_api(args, work, bench_throughput) as graph_url:
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
                if phases:
                    phases.reset()
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
    if phases:
        result["phases_us"] = phases.per_message(args.messages)
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
def _send_api(args, work: Path, bench_throughput):
    """nginx answering every Graph call with 200 (the throughput benchmark's), or None: replies logged."""
    if not args.replies_on:
        yield None
        return
    with bench_throughput.nginx(types.SimpleNamespace(nginx="nginx"), work) as (url, _):
        yield url


if __name__ == "__main__":
    sys.exit(main())
