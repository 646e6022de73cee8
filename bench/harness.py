"""What the benchmarks share: signed webhook bodies, servers as child processes, wrk, nginx, a model that is down.

Timings on a small shared machine differ from run to run: compare runs of one invocation, not
figures of different days.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WRK_SCRIPT = BENCH_DIR / "webhook.lua"
PAGE_ID = "106245718838291"
EXPENSE_TEXTS = [
    "coffee 100", "coffee 3.20", "Coffee 4.50", "100 coffee", "lunch 12,50 #food",
    "lunch 250 PHP", "taxi 12,50", "taxi 18 #transport", "$4.50 latte", "\u20ac12 lunch",
    "groceries 56.80 #food", "rent 1,200", "laptop 1.5k", "bus 2.75 #transport",
    "dinner 42 #food", "beer 6.50 yesterday", "movie tickets 24 #fun", "gas 55.10 #car",
    "pharmacy 13.99 #health", "phone bill 35", "sandwich 7", "parking 4 #car",
    "gym 29.99 #health", "books 23.40", "water 1.20", "haircut 20 2024-05-03",
]
# Templates, not json.dumps of dicts: generating 10^5 bodies stays a matter of seconds.
BODY = '{"object":"page","entry":[{"id":"%s","time":%d,"messaging":[%s]}]}'
EVENT = ('{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,'
         '"message":{"mid":"%s","text":%s}}')
# How a model can be down: it takes the request and never answers, nothing listens, it answers 503 at once.
OUTAGES = ("hang", "refused", "503")
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


class HarnessError(Exception):
    """The benchmark could not run (a server did not start, wrk failed): no figure to judge."""


# ---- signed bodies ----------------------------------------------------------------------------

def make_senders(rng, n: int) -> list[str]:
    """n distinct PSIDs shaped like Messenger's (16 digits)."""
    psids = set()
    while len(psids) < n:
        psids.add(str(rng.randrange(10**15, 10**16)))
    return sorted(psids)


def write_bodies(path: Path, secret: str, rng, senders: list[str], n_bodies: int, per_body: int,
                 mid_prefix: str) -> int:
    """Write n_bodies signed bodies, one 'sha256=<hex>\\t<body>' a line, every mid new; return the events."""
    key = secret.encode()
    texts = [json.dumps(t) for t in EXPENSE_TEXTS]  # ASCII-escaped, as Meta sends them
    now_ms = int(time.time() * 1000) - n_bodies * per_body
    seq = 0
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for _ in range(n_bodies):
            events = []
            for _ in range(per_body):
                seq += 1
                events.append(EVENT % (rng.choice(senders), PAGE_ID, now_ms + seq, f"m_{mid_prefix}{seq:09d}",
                                       rng.choice(texts)))
            body = BODY % (PAGE_ID, now_ms + seq, ",".join(events))
            f.write(f"sha256={hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}\t{body}\n")
    return seq


# ---- servers as child processes ---------------------------------------------------------------

def free_port() -> int:
    """A port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot_env(app_secret: str, db: Path, port: int, extra: dict | None = None) -> dict:
    """The environment `run.py serve` starts with: a scratch database, fresh secrets, none of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EXPENSEBOT_", "FB_", "AI_", "PSID_HASH", "OPS_TOKEN"))}
    env.update({"EXPENSEBOT_DB": str(db), "EXPENSEBOT_HOST": "127.0.0.1", "EXPENSEBOT_PORT": str(port),
                "FB_APP_SECRET": app_secret, "FB_VERIFY_TOKEN": secrets.token_urlsafe(16),
                "PSID_HASH_KEY": secrets.token_hex(32), "OPS_TOKEN": secrets.token_urlsafe(24), **(extra or {})})
    return env


def start(cmd: list[str], cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    """Start a server with its output in log_path."""
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def wait_ready(proc: subprocess.Popen, port: int, timeout: float, log_path: Path) -> None:
    """Poll GET /healthz until 200; raise HarnessError with the log's tail if the server dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"server exited with {proc.returncode} before /healthz answered\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            pass
        time.sleep(0.05)
    raise HarnessError(f"/healthz did not answer 200 within {timeout} s\n{tail(log_path)}")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after timeout; return whether it had to be killed."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return f"--- last lines of {path} ---\n" + "\n".join(text)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process, by thread id (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            spent[task.name] = (int(fields[11]) + int(fields[12])) / ticks
    return spent


# ---- wrk and what it leaves ---------------------------------------------------------------------

def run_wrk(port: int, bodies: Path, n_bodies: int, duration: float, connections: int = 8,
            timeout: float = 5.0) -> dict:
    """POST each body once (wrk -t1 with webhook.lua); return wrk's figures, with errors and exhausted."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", f"{timeout:g}s", "--latency",
           "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}/webhook", "--", str(bodies)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise HarnessError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[len("WRK_RESULT "):])
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout", "non2xx"))
    result["requests_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
    result["connections"] = connections
    # The script stops when its bodies run out (it never sends a mid twice): the run was cut short.
    result["exhausted"] = result["requests"] >= n_bodies - connections - 1
    return result


def rows_check(result: dict, per_body: int) -> tuple[bool, str]:
    """Every acknowledged event must be a row; only requests unanswered when wrk stopped may add more."""
    acked = (result["requests"] - result["non2xx"]) * per_body
    unanswered = (result["connections"] + result["read"] + result["write"] + result["timeout"]) * per_body
    ok = acked <= result["rows"] <= acked + unanswered
    return ok, f"{result['rows']} rows for {acked} acknowledged events (+ at most {unanswered} unanswered)"


def count_rows(db: Path) -> int:
    """Messages committed to a benchmark's database."""
    if not Path(db).exists():
        raise HarnessError(f"database {db} does not exist after the run")
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM messages_raw").fetchone()[0]
    finally:
        conn.close()


# ---- stand-ins: the Send API, a model that is down ---------------------------------------------

@contextlib.contextmanager
def nginx(work: Path):
    """Yield the Graph URL of nginx answering every call with 200: a Send API that costs this machine next to nothing."""
    port, folder = free_port(), work / "nginx"
    folder.mkdir(exist_ok=True)
    batch = json.dumps([{"code": 200, "body": "{}"}] * 50)  # no backslashes: nginx would unescape them
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port, batch=batch.replace("'", "\\'")))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise HarnessError(f"nginx did not start: {tail(folder / 'error.log')}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v25.0"
    finally:
        stop(proc)


@contextlib.contextmanager
def local_server(answer):
    """A throwaway HTTP server on port 0 whose POST handler is answer(handler); yield its base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            answer(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _answer_503(handler) -> None:
    handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    handler.send_response(503)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@contextlib.contextmanager
def model_down(how: str):
    """Yield the AI_URL of a model that is down as named in OUTAGES."""
    if how not in OUTAGES:
        raise ValueError(f"no such outage: {how!r} (one of {', '.join(OUTAGES)})")
    if how == "refused":
        yield f"http://127.0.0.1:{free_port()}/v1"
        return
    release = threading.Event()
    answer = (lambda handler: release.wait(60)) if how == "hang" else _answer_503
    try:
        with local_server(answer) as url:
            yield f"{url}/v1"
    finally:
        release.set()
