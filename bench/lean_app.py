"""The contract: the least work the product asks of each webhook, done leanly with the bot's own parts.

    python bench/lean_app.py PORT DB_PATH      # FB_APP_SECRET and PSID_HASH_KEY from the environment

bench_throughput.py's reference (`contract`): the bot should take at least 0.8 of its requests a
second. Per request, on Bottle and waitress with the bot's request threads: the signature over
the raw body, the JSON read into messages (ingest.webhook, which hashes each PSID); then, in one
BEGIN IMMEDIATE transaction on a fresh connection (db.connect, the schema of db.init with its
indexes and triggers), writers taking turns on one lock: for each message its sender's settings
and erasure in one statement (store.person_state), the text read in their currency
(chat.meaning.read), the message, its expenses and its job inserted. After the commit, on the same
connection, each message's day total worded as the bot words a reply (replies.words), and its
lines (event_logged, ai_enriched "skipped", reply_logged) in one write to stdout.

Left out, though the bot does them: edits and commands' effects (the bodies hold expenses only),
settings as they stood when a late message was sent, a savepoint per message, rejected events,
the spool, budgets in the reply, the logging module, the outbox and sending the reply (logged
here; the bot sends it to the Send API stand-in), waking enrichment, WAL checkpoints (the WAL
grows for the length of a run).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bottle  # noqa: E402
import waitress  # noqa: E402

from expensebot import db, rates, store, summary, times  # noqa: E402
from expensebot.chat import meaning, rules  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.ingest import webhook  # noqa: E402
from expensebot.replies import words  # noqa: E402
from expensebot.settings import Settings, settings_from  # noqa: E402
from expensebot.web.server import SERVER_THREADS  # noqa: E402

DEFAULTS = Settings("USD", "UTC")


def create_app(db_path: Path, secret: str, hash_key: str) -> bottle.Bottle:
    app = bottle.Bottle()
    hash_psid = PsidHasher(hash_key)
    write_lock = threading.Lock()

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.post("/webhook")
    def receive():
        body = bottle.request.body.read()
        if not webhook.verify_signature(secret, body, bottle.request.get_header("X-Hub-Signature-256")):
            bottle.abort(403)
        messages = webhook.read_delivery(json.loads(body), hash_psid, times.now_ms()).messages
        conn = db.connect(db_path)
        try:
            with write_lock:
                conn.execute("BEGIN IMMEDIATE")
                stored = [saved for saved in (store_one(conn, message) for message in messages) if saved]
                conn.execute("COMMIT")
            log(conn, stored)
        finally:
            conn.close()
        return "EVENT_RECEIVED"

    return app


def store_one(conn, message):
    """Insert one message with its expenses and job; return what its reply needs, or None (known, erased)."""
    person = store.person_state(conn, message.psid_hash)
    received_at, sent_at = times.iso_utc(message.received_ms), times.iso_utc(message.sent_ms)
    if person["erased_at"] is not None and sent_at <= person["erased_at"]:
        return None
    message_id = store.insert_message(conn, message, received_at, sent_at)
    if message_id is None:
        return None
    own = settings_from(person["currency"], person["timezone"], DEFAULTS)
    reading = meaning.read(message.text, own, message.sent_ms)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for line, e in enumerate(reading.expenses):
        category = e.category or rules.categorize(e.description)
        occurred_at = sent_at if e.date == reading.today else times.iso_from_datetime(
            dt.datetime.combine(e.date, dt.time(12), reading.settings.zone))
        rows.append((line, e.amount_minor, e.currency, e.description, category,
                     ("user" if e.category else "rule") if category else None, occurred_at,
                     *rates.convert_for(conn, e.amount_minor, e.currency, occurred_at, own, now).columns))
    expense_ids = store.insert_expenses(conn, message_id, message.psid_hash, message.mid, rows, received_at)
    store.queue_job(conn, message_id, received_at, "skipped")
    return message, reading, expense_ids


def log(conn, stored) -> None:
    """Word each reply with its day total, and write every line of the request at once."""
    lines = []
    for message, reading, expense_ids in stored:
        rejected = list(reading.parsed.rejected) if reading.parsed else []
        if expense_ids:
            bounds = summary.day_bounds(reading.today, reading.settings.zone)
            totals = store.day_totals(conn, message.psid_hash, *bounds, upto=max(expense_ids))
            text = words.expenses_reply(list(reading.expenses), rejected, totals, reading.today, edited=False)
        else:
            text = words.hint_reply(rejected)
        ts, who = times.iso_utc(times.now_ms()), {"psid_hash": message.psid_hash, "mid": message.mid}
        lines += [json.dumps({"ts": ts, "level": "info", "event": "event_logged", **who,
                              "expense_id": expense_ids[0] if expense_ids else None, "expenses": len(expense_ids),
                              "kind": message.kind}),
                  json.dumps({"ts": ts, "level": "info", "event": "ai_enriched", **who, "status": "skipped"}),
                  json.dumps({"ts": ts, "level": "info", "event": "reply_logged", **who, "text": text})]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" on every busy request
    path = Path(sys.argv[2])
    db.init(path)
    # Held open, as the bot's WAL keeper holds one: when the last connection to a WAL database
    # closes, SQLite checkpoints and deletes the WAL, which every request would then pay.
    keeper = db.connect(path)
    waitress.serve(create_app(path, os.environ["FB_APP_SECRET"], os.environ["PSID_HASH_KEY"]),
                   host="127.0.0.1", port=int(sys.argv[1]), threads=SERVER_THREADS)
