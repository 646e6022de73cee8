"""Assemble the running bot from a Config: database, spool, ingest, background threads, app."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

import bottle

from expensebot.ai import AiClient
from expensebot.background import Periodic
from expensebot.app import create_app
from expensebot.config import Config
from expensebot.db import Database
from expensebot.enrich import Enricher, RateLimiter
from expensebot.ingest import Ingest
from expensebot.replies import Replier, SendApi
from expensebot.report import Links
from expensebot.spool import Spool
from expensebot.times import utc_now


# How long queued replies wait before the reply thread takes them, all at once. A reply thread
# woken for each message takes the GIL from the request thread each time (measured: ~20% of
# webhook throughput); a person does not notice a tenth of a second.
REPLY_GATHER = 0.1


@dataclasses.dataclass
class Service:
    config: Config
    db: Database
    ingest: Ingest
    replayer: Periodic  # drains the spool into the database once it is writable
    replier: Replier
    enricher: Enricher
    app: bottle.Bottle

    @classmethod
    def open(cls, config: Config, *, replay_interval: float = 0.5, executor: Executor | None = None,
             send_api: SendApi | None = None, now: Callable[[], dt.datetime] = utc_now,
             enrich_interval: float = 1.0) -> Service:
        """Open the database and spool, start the background threads, build the app.

        An `executor` given here runs replies as soon as they are queued (tests pass one that
        runs them inline); the default reply thread lets them gather for REPLY_GATHER first.
        """
        db = Database(config.db_path).open()
        spool = Spool(config.spool_dir).open()
        if send_api is None and config.fb_page_access_token:
            send_api = SendApi(config.fb_graph_url, config.fb_page_access_token)
        gather = 0.0
        if executor is None:
            # Replies go out one at a time, in commit order (Replier): one thread is all they use.
            executor, gather = ThreadPoolExecutor(1, thread_name_prefix="reply"), REPLY_GATHER
        rate = RateLimiter(config.ai_rate_per_minute)
        enricher = Enricher(db, _ai_client(config), rate, poll_interval=enrich_interval).start()
        replier = Replier(db, executor, zone=config.zone, send_api=send_api, now=now,
                          ai=enricher.ai, rate=rate, gather=gather, reports=Links(config, db, now))

        def after_commit(saved, recipients):
            replier.submit(saved, recipients)
            enricher.wake()

        ingest = Ingest(db, spool, zone=config.zone, currency=config.currency, after_commit=after_commit)
        replayer = Periodic("spool-replayer", replay_interval, ingest.replay_spool).start()
        return cls(config, db, ingest, replayer, replier, enricher, create_app(config, db, ingest, now))

    def close(self) -> None:
        """Stop background work (replies being sent finish), then let go of the database."""
        self.replayer.stop()
        self.enricher.stop()
        # Replies still queued (say, retrying against a failing Send API) are dropped, not waited for.
        self.replier.stop()
        if self.replier.send_api is not None:
            self.replier.send_api.close()
        self.db.close()


def _ai_client(config: Config) -> AiClient | None:
    """The model client, or None with AI off: then not one AI request is ever made."""
    if not config.ai_enabled:
        return None
    return AiClient(config.ai_url, config.ai_api_key, config.ai_model, config.ai_timeout)
