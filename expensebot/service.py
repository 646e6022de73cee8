"""Assemble the running bot from a Config: database, spool, ingest, background threads, app."""

from __future__ import annotations

import dataclasses

import bottle

from expensebot.app import create_app
from expensebot.config import Config
from expensebot.db import Database
from expensebot.ingest import Ingest, SpoolReplayer
from expensebot.spool import Spool


@dataclasses.dataclass
class Service:
    config: Config
    db: Database
    ingest: Ingest
    replayer: SpoolReplayer
    app: bottle.Bottle

    @classmethod
    def open(cls, config: Config, *, replay_interval: float = 0.5) -> Service:
        """Open the database and spool, start the spool replayer, build the app."""
        db = Database(config.db_path).open()
        spool = Spool(config.spool_dir).open()
        ingest = Ingest(db, spool, zone=config.zone, currency=config.currency)
        replayer = SpoolReplayer(ingest, interval=replay_interval).start()
        return cls(config, db, ingest, replayer, create_app(config, db, ingest))

    def close(self) -> None:
        """Stop background work, then let go of the database."""
        self.replayer.stop()
        self.db.close()
