"""The WSGI app: the HTTP routes (docs/REFERENCE.md), built by a factory from a Config and its collaborators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hmac
import json
import logging
import sqlite3
import traceback
from collections import Counter
from collections.abc import Callable

import bottle

from expensebot import __version__, store, summary, times
from expensebot.background.wal import WalKeeper
from expensebot.chat import meaning
from expensebot.config import Config
from expensebot.db import Database
from expensebot.errors import DatabaseUnavailable
from expensebot.identity import PsidHasher, is_psid_hash
from expensebot.ingest import webhook
from expensebot.ingest.spool import SpoolError
from expensebot.ingest.write import Ingest
from expensebot.logs import log_event
from expensebot.replies.outbox import Addresses
from expensebot.web import privacy, report
from expensebot.web.reads import database_required

logger = logging.getLogger(__name__)
# /healthz turns 503 when the spool has waited (or replay has failed) this long.
SPOOL_STALE_AFTER = 60.0


def create_app(config: Config, db: Database, ingest: Ingest,
               now: Callable[[], dt.datetime] = times.utc_now,
               spool_stale_after: float = SPOOL_STALE_AFTER,
               addresses: Addresses | None = None, wal: WalKeeper | None = None) -> bottle.Bottle:
    """Build the Bottle app for one configuration.

    `addresses` (the outbox's) learns each sender's PSID before the messages are written, so
    their replies can be addressed; without it nothing is remembered and ingest never sees one.
    """
    app = bottle.Bottle()
    app.install(_json_500)
    hash_psid = PsidHasher(config.psid_hash_key)

    @app.get("/webhook")
    def handshake():
        query = bottle.request.query
        token = query.getunicode("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and _same(token, config.fb_verify_token):
            bottle.response.content_type = "text/plain; charset=utf-8"
            return query.getunicode("hub.challenge", "")
        # The token itself is not logged: only that Meta's (or someone's) did not match ours.
        log_event(logger, "verify_token_rejected", level=logging.WARNING, mode=query.get("hub.mode", "")[:20])
        raise bottle.HTTPError(403, "verify token mismatch")

    @app.post("/webhook")
    def receive():
        with db.taking_messages():  # a recurring catch-up gives way to messages
            return _receive()

    def _receive():
        body = _read_body(bottle.request)
        if body is None:
            raise bottle.HTTPError(413, "body over 1 MiB")
        if not webhook.verify_signature(config.fb_app_secret, body, _header("X-Hub-Signature-256")):
            log_event(logger, "signature_rejected", level=logging.WARNING, bytes=len(body))
            raise bottle.HTTPError(403, "missing or wrong X-Hub-Signature-256")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise bottle.HTTPError(400, "body is not a JSON object")
        # The injected clock: event times are judged against it (more than a day ahead is garbage).
        delivery = webhook.read_delivery(payload, hash_psid, int(now().timestamp() * 1000))
        if delivery.skipped:
            # One line per delivery: a body of 10,000 read receipts is one line, not 10,000.
            log_event(logger, "event_skipped", count=len(delivery.skipped),
                      kinds=dict(Counter(skipped.kind for skipped in delivery.skipped)))
        if addresses is not None:
            addresses.remember(delivery.recipients)
        try:
            ingest.accept(list(delivery.messages))
        except SpoolError:  # logged by ingest, once per incident
            raise bottle.HTTPError(503, "not stored; please redeliver")
        bottle.response.content_type = "text/plain; charset=utf-8"
        return "EVENT_RECEIVED"

    @app.get("/healthz")
    def healthz():
        problem = ingest.health_problem(spool_stale_after) or db.file_problem() or _unanswered(db)
        status = {"status": "unavailable", "reason": problem} if problem else {"status": "ok"}
        return _json({**status, "spool_depth": _spool_depth(ingest), "version": __version__}, 503 if problem else 200)

    @app.get("/ops/last-write")
    @database_required
    def last_write():
        _require_ops_token(config)
        psid_hash = bottle.request.query.getunicode("psid_hash", "")
        if not is_psid_hash(psid_hash):
            raise bottle.HTTPError(400, "psid_hash must be 64 lowercase hex digits")
        with db.connection() as conn:
            row = store.last_write(conn, psid_hash)
        return _json({"psid_hash": psid_hash,
                      "last_write": row["received_at"] if row else None,
                      "mid": row["mid"] if row else None})

    @app.get("/summary")
    @database_required
    def summary_route():
        _require_ops_token(config)
        psid_hash = bottle.request.query.getunicode("psid_hash", "")
        period = bottle.request.query.getunicode("period", meaning.DEFAULT_PERIOD)
        if not is_psid_hash(psid_hash):
            raise bottle.HTTPError(400, "psid_hash must be 64 lowercase hex digits")
        if period not in summary.PERIODS:
            raise bottle.HTTPError(400, f"period must be one of {', '.join(summary.PERIODS)}")
        with db.connection() as conn:
            settings = store.settings_of(conn, psid_hash, config.defaults)
            computed = summary.summarize(conn, psid_hash, period, now(), settings)
        if config.rates_url == "off":
            computed = dataclasses.replace(computed, converted=None)
        return _json({"psid_hash": psid_hash, **computed.as_json()})

    @app.get("/ops/stats")
    @database_required
    def stats():
        _require_ops_token(config)
        with db.connection() as conn:
            counts = store.counts(conn)
        return _json({**counts, "spool_depth": _spool_depth(ingest), **(wal.stats() if wal is not None else {})})

    report.install_report(app, config, db, now)
    privacy.install_privacy(app, config)
    for status in (400, 401, 403, 404, 405, 413, 500, 503):
        app.error(status)(_error_page)
    return app


def _unanswered(db: Database) -> str | None:
    """Why the database does not answer a read; None when it does."""
    try:
        with db.connection() as conn:
            conn.execute("SELECT count(*) FROM messages_raw WHERE 0").fetchone()
    except (sqlite3.Error, DatabaseUnavailable) as exc:
        return f"database does not answer: {exc}"
    return None


def _spool_depth(ingest: Ingest) -> int | None:
    """How many deliveries wait in the spool; None when it cannot be read."""
    try:
        return ingest.spool.depth()
    except SpoolError:
        return None


def _json_500(route: Callable) -> Callable:
    """Answer a bug in a route with a JSON 500 and log it as one JSON line, traceback in a field."""
    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except Exception as exc:
            # The route's pattern, not the path: a report link's path holds its bearer token.
            log_event(logger, "request_failed", level=logging.ERROR, route=bottle.request.route.rule,
                      reason=type(exc).__name__, traceback="".join(traceback.format_exception(exc)))
            # Answered by the app's error page (JSON, or the plain page under /report/).
            raise bottle.HTTPError(500, "internal error") from None
    return wrapper


def _read_body(request: bottle.BaseRequest) -> bytes | None:
    """Return the raw body, or None when it is over the limit."""
    # Straight from wsgi.input: bottle's request.body would buffer big bodies in a temp file.
    length = request.content_length
    if length > webhook.MAX_BODY_BYTES:
        return None
    stream = request.environ["wsgi.input"]
    body = stream.read(length if length >= 0 else webhook.MAX_BODY_BYTES + 1)
    return None if len(body) > webhook.MAX_BODY_BYTES else body


def _require_ops_token(config: Config) -> None:
    if not config.ops_token:
        raise bottle.HTTPError(404, "not found")
    header = _header("Authorization")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _same(token.strip(), config.ops_token):
        raise bottle.HTTPError(401, "bearer token required")


def _header(name: str) -> str:
    """Read a header as sent (latin-1); bottle's get_header raises on bytes that are not UTF-8."""
    return bottle.request.environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _json(data: dict, status: int = 200) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(data)


def _error_page(error: bottle.HTTPError) -> str:
    if report.is_report_path(bottle.request.path):  # a report link's path holds its token: never echo it
        return report.error_page(error.status_code)
    bottle.response.content_type = "application/json"
    if error.status_code == 401:
        bottle.response.set_header("WWW-Authenticate", "Bearer")
    return json.dumps({"error": error.body if isinstance(error.body, str) else error.status_line})
