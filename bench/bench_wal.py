"""WAL under sustained load: how big the -wal file gets and how long a TRUNCATE checkpoint pauses writers.

Runs the real app on waitress (one request thread, as `run.py serve`) in this process, a load
generator in a child process posting signed single-message webhooks over keep-alive connections,
and samples the size of the -wal file every 20 ms. Prints one JSON object:

    python bench/bench_wal.py --seconds 60 --wal-limit-mb 64

The load generator is plain Python (no wrk needed), so the rate is what one core of it can send.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import waitress  # noqa: E402

from expensebot.config import Config  # noqa: E402
from expensebot.ingest import webhook  # noqa: E402
from expensebot.service import Service  # noqa: E402

SECRET = "bench-wal-secret"
# The child: `connections` threads, each a keep-alive HTTP connection posting until the deadline.
LOAD = r"""
import hashlib, hmac, http.client, json, sys, threading, time
port, seconds, connections, secret = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + seconds
counts = []
def run(worker):
    conn, n = http.client.HTTPConnection("127.0.0.1", port, timeout=30), 0
    while time.monotonic() < deadline:
        ts = 1764075600000 + n
        event = {"sender": {"id": str(1000 + n % 50)}, "recipient": {"id": "1"}, "timestamp": ts,
                 "message": {"mid": f"m_{worker}_{n}", "text": f"coffee {1 + n % 90}.50 #food"}}
        body = json.dumps({"object": "page", "entry": [{"id": "1", "time": ts, "messaging": [event]}]}).encode()
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        conn.request("POST", "/webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}")
        n += 1
    counts.append(n)
threads = [threading.Thread(target=run, args=(w,)) for w in range(connections)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(counts))
"""


def run(seconds: float, wal_limit: int, directory: Path, connections: int = 2) -> dict:
    """Load the bot for `seconds`; return the WAL samples' maximum, the keeper's stats and the rate."""
    config = Config(db_path=directory / "bench.db", fb_app_secret=SECRET, fb_verify_token="v",
                    psid_hash_key="k", ops_token="o")
    service = Service.open(config, wal_limit=wal_limit)
    server = waitress.create_server(service.app, host="127.0.0.1", port=0, threads=1,
                                    max_request_body_size=webhook.MAX_BODY_BYTES)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wal = Path(f"{config.db_path}-wal")
    samples: list[int] = []
    try:
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(server.effective_port), str(seconds),
                                 str(connections), SECRET], stdout=subprocess.PIPE, text=True)
        while load.poll() is None:
            samples.append(wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.02)
        with load.stdout:
            sent = int(load.stdout.read().strip() or 0)
        if load.returncode != 0:
            raise RuntimeError(f"load generator failed: {load.returncode}")
    finally:
        server.close()
        thread.join(timeout=10)
        stats = service.wal.stats()
        service.close()
    # Growth: every byte the WAL gained between samples (a checkpoint that empties it is a drop).
    appended = sum(max(0, after - before) for before, after in zip(samples, samples[1:]))
    return {"seconds": seconds, "messages": sent, "messages_per_second": round(sent / seconds),
            "wal_limit_bytes": wal_limit, "wal_max_sampled_bytes": max(samples, default=0),
            "wal_growth_bytes_per_second": round(appended / seconds), "samples": len(samples), **stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--wal-limit-mb", type=float, default=64)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" on every request
    with tempfile.TemporaryDirectory() as directory:
        result = run(args.seconds, int(args.wal_limit_mb * 1024 * 1024), Path(directory), args.connections)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
