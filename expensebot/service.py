"""Assemble the running bot from a Config: database, spool, ingest, background threads, app.

`Service.close` undoes `Service.open` through one ExitStack: whoever creates a resource
registers its closing right there, and they close in reverse order, so the outbound HTTP client
outlives the enricher and the outbox that use it, and the database outlives everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable
from concurrent.futures import Executor

import bottle

from expensebot import outbound
from expensebot.ai import AiClient
from expensebot.background.enrich import Enricher
from expensebot.config import Config
from expensebot.db import WAL_LIMIT, Database
from expensebot.ingest.spool import Spool
from expensebot.ingest.write import Ingest
from expensebot.limits import RateLimiter
from expensebot.periodic import Periodic
from expensebot.replies.compose import Replier
from expensebot.replies.graph import GraphClient
from expensebot.replies.outbox import BACKOFF, Outbox
from expensebot.times import utc_now
from expensebot.web.app import create_app
from expensebot.web.report import Links

# How long a reply may wait for others to join its batch, and the least time between two batches
# unless 50 are ready (Outbox._linger). A sender taking each reply as it comes takes the GIL from
# the request thread each time, with a read connection of its own; a person does not notice a
# tenth of a second.
REPLY_GATHER = 0.1
# People the AI rate limit remembers: more than can make an AI call within a minute (2 enrichment
# workers and the summaries' rephrasings do far fewer than this many calls a minute).
RATE_KEYS = 10_000


@dataclasses.dataclass
class Service:
    config: Config
    db: Database
    ingest: Ingest
    replayer: Periodic  # drains the spool into the database once it is writable
    replier: Replier
    outbox: Outbox
    enricher: Enricher
    app: bottle.Bottle
    exits: contextlib.ExitStack

    @classmethod
    def open(cls, config: Config, *, replay_interval: float = 0.5, executor: Executor | None = None,
             send_api: GraphClient | None = None, now: Callable[[], dt.datetime] = utc_now,
             enrich_interval: float = 1.0, reply_backoff: tuple[float, ...] = BACKOFF,
             wal_limit: int = WAL_LIMIT) -> Service:
        """Open the database and spool, start the background threads, build the app.

        An `executor` given here sends replies as soon as they are queued (tests pass one that
        runs them inline); by default the outbox's own sender threads do, after REPLY_GATHER.
        A `send_api` given here is the caller's to close.
        """
        with contextlib.ExitStack() as exits:
            db = Database(config.db_path, wal_limit=wal_limit).open()
            exits.callback(db.close)
            spool = Spool(config.spool_dir).open()
            http = outbound.Client()  # one session for the Graph API and the model
            exits.callback(http.close)
            ai = _ai_client(config, http)
            if send_api is None and config.fb_page_access_token:
                send_api = GraphClient(config.fb_graph_url, config.fb_page_access_token, config.fb_app_secret,
                                       http=http)
            rate = RateLimiter(config.ai_rate_per_minute, RATE_KEYS)
            enricher = Enricher(db, ai, rate, poll_interval=enrich_interval).start()
            exits.callback(enricher.stop)
            replier = Replier(db, zone=config.zone, now=now, ai=ai, rate=rate, reports=Links(config, db, now))
            outbox = Outbox(replier, send_api, executor=executor, gather=0.0 if executor else REPLY_GATHER,
                            backoff=reply_backoff).start()
            exits.callback(outbox.close)

            def after_commit(saved, conn):
                outbox.submit(saved, conn)
                enricher.wake()

            ingest = Ingest(db, spool, zone=config.zone, currency=config.currency, after_commit=after_commit,
                            skip_jobs=ai is None)
            replayer = Periodic("spool-replayer", replay_interval, ingest.replay_spool).start()
            exits.callback(replayer.stop)
            app = create_app(config, db, ingest, now, addresses=outbox.addresses)
            return cls(config, db, ingest, replayer, replier, outbox, enricher, app, exits.pop_all())

    def close(self) -> None:
        """Stop taking replies and background work, send what can go in a few seconds, close everything."""
        self.exits.close()


def _ai_client(config: Config, http: outbound.Client) -> AiClient | None:
    """The model client, or None with AI off: then not one AI request is ever made."""
    if not config.ai_enabled:
        return None
    return AiClient(config.ai_url, config.ai_api_key, config.ai_model, config.ai_timeout, http=http)
