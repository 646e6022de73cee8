"""The leanest app doing the webhook's work, the throughput benchmark's second reference.

Usage: python bench/lean_app.py PORT DB_PATH [contract]   (FB_APP_SECRET and PSID_HASH_KEY from the environment)

Plain WSGI on waitress with one thread (as `run.py serve`): verify the signature over the raw
body, parse the JSON and each text with the project's parser, then on a fresh connection the same
inserts as the bot (messages_raw, expenses, jobs) in one BEGIN IMMEDIATE transaction, and ack.
No logging, no day totals, no replies, no spool; one connection held open so the WAL stays.

With `contract`, also the least the product contract and the design card ask of every message
beyond that, done as leanly: served through Bottle (the card's framework); in the transaction, each
sender's settings and erasure read in the bot's one statement (their currency reads the text, and
an event from before an erasure is never stored); its two log lines (`event_logged`, and
`ai_enriched` "skipped" as the job is written with AI off) and a reply with the day's total, read
on the same connection after the commit and logged (`reply_logged`, as the bot does without a
page token): one write to stdout per request. No commands, edits, time zones, rejected events,
spool or reply queue. A floor for the bot with replies off, not a second design.
"""
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bottle  # noqa: E402
import waitress  # noqa: E402

from expensebot import db, store, times  # noqa: E402
from expensebot.chat import parser  # noqa: E402
from expensebot.ingest import webhook  # noqa: E402

DAY_TOTAL = ("SELECT sum(amount_minor) FROM expenses"
             " WHERE psid_hash = ? AND occurred_at >= ? AND occurred_at < ? AND currency = ?")


def create_app(db_path: Path, secret: str, hash_key: bytes, contract: bool = False):
    job_status = "skipped" if contract else "pending"
    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if not webhook.verify_signature(secret, body, environ.get("HTTP_X_HUB_SIGNATURE_256")):
            start_response("403 Forbidden", [("Content-Length", "0")])
            return [b""]
        rows = []
        now_ms = int(time.time() * 1000)
        received = dt.datetime.fromtimestamp(now_ms / 1000, dt.timezone.utc).isoformat()
        for entry in json.loads(body).get("entry", ()):
            for event in entry.get("messaging", ()):
                message = event.get("message") or {}
                if "text" not in message or message.get("is_echo"):
                    continue
                psid_hash = hmac.new(hash_key, event["sender"]["id"].encode(), hashlib.sha256).hexdigest()
                sent = dt.datetime.fromtimestamp(event["timestamp"] / 1000, dt.timezone.utc)
                # With `contract` the text is read in the transaction, with its sender's currency.
                parsed = None if contract else parser.parse_message(
                    message["text"], default_currency="USD", today=sent.date()).expenses
                rows.append((psid_hash, message["mid"], sent, message["text"], json.dumps(event), parsed))
        conn = db.connect(db_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            stored = []
            people = {}
            for psid_hash, mid, sent, text, event, expenses in rows:
                sent_at = sent.isoformat()
                if contract:
                    if psid_hash not in people:
                        people[psid_hash] = conn.execute(store.PERSON_STATE, {"psid_hash": psid_hash}).fetchone()
                    currency, _, erased_at = people[psid_hash]
                    if erased_at is not None and times.iso_utc(int(sent.timestamp() * 1000)) <= erased_at:
                        continue
                    expenses = parser.parse_message(text, default_currency=currency or "USD", today=sent.date()).expenses
                cursor = conn.execute(store.INSERT_MESSAGE, (psid_hash, mid, received, sent_at, "message", text, 0, event))
                if cursor.rowcount != 1:
                    continue
                message_id = cursor.lastrowid
                expense_id = None
                for e in expenses:
                    expense_id = conn.execute(store.INSERT_EXPENSE, (
                        message_id, psid_hash, mid, e.line, e.amount_minor, e.currency, e.description, None, None,
                        sent_at, received)).lastrowid
                conn.execute(store.INSERT_JOB, (message_id, job_status, received, received))
                stored.append((psid_hash, mid, sent_at, expense_id, expenses))
            conn.execute("COMMIT")
            if contract:
                log(conn, stored)
        finally:
            conn.close()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
        return [b"EVENT_RECEIVED"]

    def log(conn, stored):
        lines = []
        for psid_hash, mid, sent_at, expense_id, expenses in stored:
            now = dt.datetime.now(dt.timezone.utc).isoformat()
            lines.append(json.dumps({"ts": now, "level": "info", "event": "event_logged", "psid_hash": psid_hash,
                                     "mid": mid, "expense_id": expense_id, "expenses": len(expenses)}))
            lines.append(json.dumps({"ts": now, "level": "info", "event": "ai_enriched", "psid_hash": psid_hash,
                                     "mid": mid, "status": "skipped"}))
            if expenses:
                day = sent_at[:10]
                end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
                total = conn.execute(DAY_TOTAL, (psid_hash, day, end, expenses[0].currency)).fetchone()[0]
                text = f"{expenses[0].description} {expenses[0].amount_minor / 100:.2f}\nToday: {total / 100:.2f}"
            else:
                text = "Try: coffee 3.50"
            lines.append(json.dumps({"ts": now, "level": "info", "event": "reply_logged", "psid_hash": psid_hash,
                                     "mid": mid, "text": text}))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def healthz(environ, start_response):
        if environ["PATH_INFO"] == "/healthz":
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        return app(environ, start_response)

    if not contract:
        return healthz
    framed = bottle.Bottle()
    framed.get("/healthz")(lambda: "ok")
    framed.post("/webhook")(lambda: b"".join(app(bottle.request.environ, _status_to(bottle.response))))
    return framed


def _status_to(response):
    """A start_response that sets Bottle's response status and headers."""
    def start_response(status, headers):
        response.status = status
        for name, value in headers:
            response.set_header(name, value)
    return start_response


if __name__ == "__main__":
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    path = Path(sys.argv[2])
    db.init(path)
    # Held open for the life of the process, as the bot's WAL keeper does: when the last connection
    # to a WAL database closes, SQLite checkpoints and deletes the WAL, which each request would pay.
    keeper = db.connect(path)
    contract = sys.argv[3:] == ["contract"]
    waitress.serve(create_app(path, os.environ["FB_APP_SECRET"], os.environ["PSID_HASH_KEY"].encode(), contract),
                   host="127.0.0.1", port=int(sys.argv[1]), threads=1)
