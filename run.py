#!/usr/bin/env python3
"""expensebot's command line: `python run.py serve`, `python run.py demo`, operator commands.

The only place that reads the environment, configures logging and starts waitress.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

import waitress

from expensebot import demo, export as export_csv, logs, store, summary, times, webhook
from expensebot.config import Config, ConfigError
from expensebot.db import Database
from expensebot.identity import PsidHasher, is_psid_hash
from expensebot.logs import log_event
from expensebot.service import Service

logger = logging.getLogger("expensebot")
# One request thread. Writes take turns anyway (one write lock), and a thread holding it gives
# up the GIL on every sqlite3 call: with a second request thread running Python meanwhile, the
# locked stretch took 3-4x longer (README, Speed). Reads (summaries, ops) take milliseconds.
SERVER_THREADS = 1
DEMO_DB = Path("expensebot-demo.db")


def serve(config: Config, args) -> int:
    """Run the bot on waitress until SIGTERM or Ctrl-C."""
    config.require_serving()
    service = Service.open(config)
    server = waitress.create_server(
        service.app,
        host=config.host,
        port=config.port,
        threads=SERVER_THREADS,
        # waitress answers 413 itself before reading more than this.
        max_request_body_size=webhook.MAX_BODY_BYTES,
        ident="expensebot",
        # waitress drops X-Forwarded-For by default; the report rate limit reads it, believing it
        # only from a proxy on loopback (report.client_address). Without it every client behind
        # the proxy would share one limit.
        clear_untrusted_proxy_headers=False,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log_event(logger, "serving", host=config.host, port=int(server.effective_port),
              db=str(config.db_path), spool=str(config.spool_dir))
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
        service.close()
        log_event(logger, "stopped")
    return 0


def run_demo(config: Config, args) -> int:
    """The whole bot locally, with a stand-in for the Send API; logs go to a file beside the database."""
    logs.configure(open(f"{args.db}.log", "a", encoding="utf-8"))
    return demo.run(args.db, args.say or None, config.tz, config.currency)


def hash_psid(config: Config, args) -> int:
    """Print the psid_hash of a PSID, to find a person's rows."""
    if not config.psid_hash_key:
        raise ConfigError("PSID_HASH_KEY: required to hash a PSID")
    print(PsidHasher(config.psid_hash_key)(args.psid))
    return 0


def print_summary(config: Config, args) -> int:
    """Print a person's totals for a period, computed from the rows, as JSON."""
    with _database(config).reading() as conn:
        computed = summary.summarize(conn, args.psid_hash, args.period, times.utc_now(), config.zone)
    print(json.dumps({"psid_hash": args.psid_hash, **computed.as_json()}, indent=2))
    return 0


def export(config: Config, args) -> int:
    """Write a person's expenses as RFC 4180 CSV, one row per expense, formula-safe."""
    with _database(config).reading() as conn:
        export_csv.write_expenses(sys.stdout, store.expenses_of(conn, args.psid_hash))
    return 0


def backup(config: Config, args) -> int:
    """Copy the database to PATH with SQLite's online backup API: consistent while the bot runs."""
    target = Path(args.path)
    if target.exists():
        raise ConfigError(f"backup: {target} exists; choose a new file")
    with _database(config).reading() as source:
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
        finally:
            destination.close()
    print(f"backed up {config.db_path} to {target}")
    return 0


def replay_spool(config: Config, args) -> int:
    """Write spooled events into the database now (the server does this on its own while running)."""
    service = Service.open(config, replay_interval=3600)
    try:
        written = service.ingest.replay_spool()
        print(f"replayed {written} new messages; {service.ingest.spool.depth()} events still spooled")
    finally:
        service.close()
    return 0


def jobs(config: Config, args) -> int:
    """List enrichment jobs that ended in error; with --retry, make them pending again."""
    database = _database(config)
    if args.retry:
        with database.writing() as conn:
            count = store.requeue_failed_jobs(conn, times.iso_utc(times.now_ms()))
        print(f"re-queued {count} jobs; a running server picks them up within a second")
        return 0
    with database.reading() as conn:
        counts = store.counts(conn)["jobs"]
        failed = store.failed_jobs(conn)
    print("  ".join(f"{status}: {count}" for status, count in counts.items()))
    for job in failed:
        print(f"{job['updated_at']}  {job['psid_hash'][:12]}…  {job['mid']}  attempts={job['attempts']}  {job['last_error']}")
    return 0


def _database(config: Config) -> Database:
    if not config.db_path.exists():
        raise ConfigError(f"EXPENSEBOT_DB: {config.db_path} does not exist")
    return Database(config.db_path)


def _psid_hash(value: str) -> str:
    if not is_psid_hash(value):
        raise argparse.ArgumentTypeError("a psid_hash is 64 lowercase hex digits (see hash-psid)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the bot (configuration from the environment)").set_defaults(run=serve)
    demo_cmd = commands.add_parser("demo", help="the whole bot locally, chatting in this terminal")
    demo_cmd.add_argument("--say", action="append", metavar="TEXT",
                          help="send TEXT, print the reply; repeat for a scripted conversation, then exit")
    demo_cmd.add_argument("--db", type=Path, default=DEMO_DB, help=f"SQLite file (default {DEMO_DB})")
    demo_cmd.set_defaults(run=run_demo)
    hash_cmd = commands.add_parser("hash-psid", help="print the psid_hash of a PSID (needs PSID_HASH_KEY)")
    hash_cmd.add_argument("psid")
    hash_cmd.set_defaults(run=hash_psid)
    summary_cmd = commands.add_parser("summary", help="a person's totals, from the database, as JSON")
    summary_cmd.add_argument("--psid-hash", required=True, type=_psid_hash)
    summary_cmd.add_argument("--period", choices=summary.PERIODS, default="month")
    summary_cmd.set_defaults(run=print_summary)
    export_cmd = commands.add_parser("export", help="a person's expenses as CSV on stdout")
    export_cmd.add_argument("--psid-hash", required=True, type=_psid_hash)
    export_cmd.set_defaults(run=export)
    backup_cmd = commands.add_parser("backup", help="an online, consistent copy of the database")
    backup_cmd.add_argument("path")
    backup_cmd.set_defaults(run=backup)
    jobs_cmd = commands.add_parser("jobs", help="enrichment jobs that ended in error")
    jobs_cmd.add_argument("--retry", action="store_true", help="make every failed job pending again")
    jobs_cmd.set_defaults(run=jobs)
    commands.add_parser("replay-spool", help="write spooled events into the database now").set_defaults(
        run=replay_spool)
    args = parser.parse_args(argv)

    logs.configure()
    try:
        return args.run(Config.from_env(os.environ), args)
    except ConfigError as exc:
        print(f"expensebot: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
