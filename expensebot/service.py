"""Assemble the running bot from a Config: database, spool, ingest, replies, background threads, app.

`Service.close` undoes `Service.open` through one ExitStack: whoever creates a resource
registers its closing right there, and they close in reverse order, so the outbound HTTP client
outlives the enricher and the outbox that use it, and the database outlives everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable

import bottle

from expensebot import outbound
from expensebot.ai import AiClient
from expensebot.background.enrich import Enricher
from expensebot.background.exchange import Exchange
from expensebot.background.receipts import ReceiptReader
from expensebot.background.schedule import Schedule
from expensebot.background.wal import WAL_LIMIT, WalKeeper
from expensebot.config import Config, ConfigError
from expensebot.db import Database
from expensebot.identity import Sealer
from expensebot.ingest.spool import Spool
from expensebot.ingest.write import Ingest
from expensebot.journal import Journal
from expensebot.limits import RateLimiter
from expensebot.logs import log_event
from expensebot.receipts import ocr
from expensebot.replies.compose import Replier
from expensebot.replies.graph import GraphClient
from expensebot.replies.outbox import BACKOFF, Outbox
from expensebot.times import utc_now
from expensebot.web.app import create_app
from expensebot.web.report import link_for

logger = logging.getLogger(__name__)
# People the AI rate limit remembers: more than can make an AI call within a minute (2 enrichment
# workers and the summaries' rephrasings do far fewer than this many calls a minute).
RATE_KEYS = 10_000


@dataclasses.dataclass
class Service:
    config: Config
    db: Database
    wal: WalKeeper
    ingest: Ingest
    outbox: Outbox
    enricher: Enricher
    exchange: Exchange
    app: bottle.Bottle
    exits: contextlib.ExitStack
    schedule: Schedule
    receipts: ReceiptReader | None  # None: receipts not set up (the extra not installed)

    @classmethod
    def open(cls, config: Config, *, replay_interval: float = 0.5, send_api: GraphClient | None = None,
             now: Callable[[], dt.datetime] = utc_now, enrich_interval: float = 1.0,
             reply_backoff: tuple[float, ...] = BACKOFF, wal_limit: int = WAL_LIMIT,
             schedule_interval: float = 60.0, receipts_interval: float = 5.0) -> Service:
        """Open the database and spool, start the background threads, build the app.

        A `send_api` given here is the caller's to close.
        """
        with contextlib.ExitStack() as exits:
            journal = Journal(config.db_path)
            lock = journal.lock()  # shared: `expensebot restore` waits for the bot to stop
            if lock is None:
                raise ConfigError(f"EXPENSEBOT_DB: a restore into {config.db_path} is running; start the bot after it")
            exits.callback(os.close, lock)
            db = Database(config.db_path).open()
            with db.transaction() as conn:  # a backup put in place by hand keeps every erasure too
                applied = journal.reconcile(conn)
            if applied:
                log_event(logger, "erasures_reapplied", erasures=applied, journal=str(journal.path))
            wal = WalKeeper(db, limit=wal_limit).start()
            exits.callback(wal.stop)
            spool = Spool(config.spool_dir).open()
            http = outbound.Client()  # one session for the Graph API and the model
            exits.callback(http.close)
            # With AI off there is no model client: then not one AI request is ever made.
            ai = (AiClient(config.ai_url, config.ai_api_key, config.ai_model, config.ai_timeout, http=http)
                  if config.ai_enabled else None)
            if send_api is None and config.fb_page_access_token:
                send_api = GraphClient(config.fb_graph_url, config.fb_page_access_token, config.fb_app_secret,
                                       http=http)
            rate = RateLimiter(config.ai_rate_per_minute, RATE_KEYS)
            enricher = Enricher(db, ai, rate, poll_interval=enrich_interval).start()
            exits.callback(enricher.stop)
            replier = Replier(now=now, ai=ai, rate=rate, converting=config.rates_url != "off",
                              report_link=lambda psid_hash: link_for(config, psid_hash, now()))
            sealer = Sealer(config.psid_hash_key) if config.psid_hash_key else None
            outbox = Outbox(replier, send_api, db, sealer=sealer, backoff=reply_backoff).start()
            exits.callback(outbox.close)

            exchange = Exchange(db, http, config.rates_url, config.defaults, now=now).start()
            exits.callback(exchange.stop)
            # Recurring expenses: due dates made at start (a catch-up), every minute, and after a new rule.
            schedule = Schedule(db, config.defaults, interval=schedule_interval, now=now,
                                on_created=exchange.wake).start()
            exits.callback(schedule.stop)

            # Receipt photos: read when the optional extra is installed ('expensebot[receipts]').
            receipts = None
            if ocr.available():
                receipts = ReceiptReader(db, http, config.receipt_hosts, config.defaults, outbox, ai=ai,
                                         interval=receipts_interval, now=now).start()
                exits.callback(receipts.stop)

            def after_commit(saved):
                outbox.submit(saved)
                if receipts is not None and any(record.outcome.receipt for record in saved):
                    receipts.wake()
                enricher.wake()
                exchange.wake()
                if any(record.outcome.rule for record in saved):
                    schedule.wake()  # the rest of a rule's catch-up ('since' long ago)
                if any(record.outcome.erased for record in saved):
                    wal.scrub()

            ingest = Ingest(db, spool, config.defaults, after_commit=after_commit,
                            ai_enabled=ai is not None, replay_interval=replay_interval, now=now,
                            receipt_hosts=config.receipt_hosts if receipts is not None else None)
            ingest.replayer.start()
            exits.callback(ingest.replayer.stop)
            app = create_app(config, db, ingest, now, addresses=outbox.addresses, wal=wal)
            return cls(config, db, wal, ingest, outbox, enricher, exchange, app, exits.pop_all(), schedule, receipts)

    def close(self) -> None:
        """Stop taking replies and background work, send what can go in a few seconds, close everything."""
        self.exits.close()
