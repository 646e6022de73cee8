"""expensebot's command line: `expensebot serve`, `expensebot demo`, `expensebot check` and the operator commands.

The only place that reads the environment, configures logging and starts the server. Its log lines are JSON,
each problem one line naming its variable or path; exit status 2 for configuration, 1 for other failures.
"""

from __future__ import annotations

import dataclasses
import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path

from expensebot import __version__, logs, store, summary, times
from expensebot.config import VARIABLES, Config, ConfigError, unknown_names
from expensebot.db import SCHEMA_VERSION, Database
from expensebot.errors import DatabaseUnavailable, is_unavailable
from expensebot.identity import PsidHasher, is_psid_hash
from expensebot.ingest.spool import Spool
from expensebot.ingest.write import Ingest
from expensebot.logs import log_event
from expensebot.ops import checks, demo, envfile, profile, restore
from expensebot.service import Service
from expensebot.web import export as export_csv
from expensebot.web.server import make_server

logger = logging.getLogger("expensebot")
DEMO_DB = Path("expensebot-demo.db")
BACKUP_PREFIX = "expensebot-"
CONFIG_EXIT, FAILURE_EXIT = 2, 1


class Failure(Exception):
    """A command could not finish for a reason that is not configuration (full disk, Graph down)."""


# ---- serve, check, demo -------------------------------------------------------------------------

def serve(config: Config, args) -> int:
    """Run the bot on waitress until SIGTERM or Ctrl-C."""
    _require(_serving_problems(config, args))
    service = Service.open(config)
    try:
        server = make_server(service.app, config)
    except OSError as exc:
        service.close()
        raise ConfigError(checks.listen_problem(config.host, config.port, exc)) from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log_event(logger, "serving", version=__version__, host=config.host, port=int(server.effective_port),
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


def check(config: Config, args) -> int:
    """Check everything `serve` needs; report every problem, one line each (exit 2), or check_ok.

    While the bot runs, its port is taken by it: that is said, not counted as a problem.
    """
    running = checks.running_version(config.host, config.port)
    _require(_serving_problems(config, args, port=running is None))
    if not config.db_path.exists():
        log_event(logger, "check_warning", level=logging.WARNING,
                  problem=f"EXPENSEBOT_DB: {config.db_path} does not exist; serve will create it there "
                          f"(is that the path you meant?)")
    if args.online:  # Graph refusing the Page token is configuration (exit 2), unreachable a failure (exit 1)
        try:
            me = profile.call_graph(config, "GET", "me", {"fields": "id,name"})
        except profile.GraphError as exc:
            if exc.code in (190, 100):
                raise ConfigError(f"FB_PAGE_ACCESS_TOKEN/FB_APP_SECRET: Graph refused them: {exc}") from None
            raise Failure(str(exc)) from None
        log_event(logger, "graph_ok", page_id=str(me.get("id", "")))
    log_event(logger, "check_ok", db=str(config.db_path), spool=str(config.spool_dir),
              listen=f"{config.host}:{config.port}", online=args.online, running=running)
    return 0


def _serving_problems(config: Config, args, port: bool = True) -> list[str]:
    """Every problem `serve` would meet: the values' and the machine's, all at once."""
    return (args.config_problems + config.serving_problems()
            + checks.database_problems(config.db_path, must_exist=False, write=True)
            + checks.owner_problems(config.db_path) + checks.spool_problems(config.spool_dir)
            + (checks.port_problems(config.host, config.port) if port else []))


def run_demo(config: Config, args) -> int:
    """The whole bot locally, with a stand-in for the Send API; logs go to a file beside the database.

    A scripted run (--say, --example) starts from an empty database each time unless --db names one,
    so that running it twice prints the same; typing keeps expensebot-demo.db from one run to the next.
    """
    script = args.say or (demo.EXAMPLE if args.example else None)
    if args.photo is not None:  # the photo first, then what is said about it ("--say 1" presses Save)
        script = [f"{demo.PHOTO_COMMAND} {args.photo}", *(script or [])]
    logs.configure(open(f"{args.db or DEMO_DB}.log", "a", encoding="utf-8"))
    if args.db is None and script is not None:
        with tempfile.TemporaryDirectory(prefix="expensebot-demo-") as scratch:
            return demo.run(Path(scratch) / "demo.db", script, config.tz, config.currency, at=args.at)
    db_path = args.db or DEMO_DB
    _require(checks.database_problems(db_path, must_exist=False, write=True))
    return demo.run(db_path, script, config.tz, config.currency, at=args.at)


def _moment(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a UTC time like 2026-11-29T08:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def hash_psid(config: Config, args) -> int:
    """Print the psid_hash of a PSID, to find a person's rows."""
    config.require_hash_key()
    print(PsidHasher(config.psid_hash_key)(args.psid))
    return 0


# ---- operator commands: they never create a database ---------------------------------------------

def print_summary(config: Config, args) -> int:
    """Print a person's totals for a period, computed from the rows, as JSON."""
    with _database(config).connection() as conn:
        settings = store.settings_of(conn, args.psid_hash, config.defaults)
        computed = summary.summarize(conn, args.psid_hash, args.period, times.utc_now(), settings)
    if config.rates_url == "off":
        computed = dataclasses.replace(computed, converted=None)
    print(json.dumps({"psid_hash": args.psid_hash, **computed.as_json()}, indent=2))
    return 0


def export(config: Config, args) -> int:
    """Write a person's expenses as RFC 4180 CSV, one row per expense, formula-safe."""
    with _database(config).connection() as conn:
        rows = store.expenses_of(conn, args.psid_hash)
    if args.output is None:
        try:
            sys.stdout.writelines(export_csv.expense_chunks(rows))
            sys.stdout.flush()
        except OSError as exc:
            # stdout to /dev/null, so Python's flush at exit cannot fail a second time
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Failure(f"export: writing stdout failed: {exc.strerror or exc}") from None
        return 0
    if args.output.exists():
        raise ConfigError(f"--output: {args.output} exists; choose a new file")
    try:
        # A person's expenses: readable by this user only, whatever the umask lets others read.
        with open(args.output, "x", encoding="utf-8", newline="",
                  opener=lambda path, flags: os.open(path, flags, 0o600)) as file:
            file.writelines(export_csv.expense_chunks(rows))
    except OSError as exc:
        with contextlib.suppress(OSError):
            args.output.unlink()
        raise Failure(f"export: writing {args.output} failed: {exc.strerror or exc}") from None
    log_event(logger, "exported", path=str(args.output), expenses=len(rows))
    return 0


def backup(config: Config, args) -> int:
    """Copy the database with SQLite's online backup API: consistent while the bot runs."""
    database = _database(config, current=False)  # any version: a backup is taken before an upgrade
    target = _backup_target(args.path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with database.connection() as source:
            destination = sqlite3.connect(partial)
            try:
                source.backup(destination)
            finally:
                destination.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise Failure(f"backup: writing {target} failed: {exc}") from None
    log_event(logger, "backed_up", db=str(config.db_path), path=str(target), bytes=target.stat().st_size)
    if args.keep:
        stamped = sorted(p for p in target.parent.glob(f"{BACKUP_PREFIX}*.db") if p.is_file())
        for old in stamped[:-args.keep]:  # the names sort by time
            old.unlink()
            log_event(logger, "backup_removed", path=str(old))
    return 0


def _backup_target(name: str) -> Path:
    """A new file: PATH itself, or, when PATH is a folder (or ends with /), a time-stamped file in it."""
    path = Path(name)
    if path.is_dir() or name.endswith("/"):
        now = dt.datetime.now(dt.timezone.utc)
        path = path / f"{BACKUP_PREFIX}{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z.db"
    if path.exists():
        raise ConfigError(f"backup: {path} exists; choose a new file")
    return path


def restore_backup(config: Config, args) -> int:
    """Put a backup in the database's place (the bot stopped), keeping every erasure made since."""
    _require(checks.owner_problems(config.db_path))
    log_event(logger, "restored", **restore.restore(config.db_path, args.backup))
    return 0


def replay_spool(config: Config, args) -> int:
    """Write spooled events into the database now: the database, the spool and ingest, nothing else."""
    _require(checks.database_problems(config.db_path, must_exist=True, write=True)
             + checks.owner_problems(config.db_path) + checks.spool_problems(config.spool_dir))
    written = still_spooled = 0
    if config.spool_dir.is_dir():  # else nothing is spooled, and opening the spool would create it
        ingest = Ingest(Database(config.db_path).open(), Spool(config.spool_dir).open(), config.defaults,
                        ai_enabled=config.ai_enabled)
        written, still_spooled = ingest.replay(), ingest.spool.depth()
    log_event(logger, "spool_replayed_by_hand", messages=written, still_spooled=still_spooled,
              spool=str(config.spool_dir))
    return 0


def jobs(config: Config, args) -> int:
    """List enrichment jobs that ended in error, as JSON lines; with --retry, make them pending again."""
    database = _database(config, write=args.retry)
    if args.retry:
        with database.transaction() as conn:
            count = store.requeue_failed_jobs(conn, times.iso_utc(times.now_ms()))
        log_event(logger, "jobs_requeued", jobs=count)
        return 0
    with database.connection() as conn:
        counts = store.counts(conn)["jobs"]
        failed = store.failed_jobs(conn)
    log_event(logger, "jobs", **counts)
    for job in failed:
        log_event(logger, "job_failed", updated_at=job["updated_at"], psid_hash=job["psid_hash"], mid=job["mid"],
                  attempts=job["attempts"], last_error=job["last_error"])
    return 0


def setup_page(config: Config, args) -> int:
    """Set the Page's Get Started button, greeting, menu and ice breakers; --dry-run prints them."""
    if args.dry_run:
        print(json.dumps(profile.messenger_profile(config), indent=2, ensure_ascii=False))
        return 0
    try:
        changed = profile.set_up_page(config)
    except profile.GraphError as exc:
        if exc.code == 190:
            raise ConfigError(f"FB_PAGE_ACCESS_TOKEN: Graph refused it: {exc}") from None
        raise Failure(f"setup-page: {exc}") from None
    log_event(logger, "page_profile_set" if changed else "page_profile_unchanged")
    return 0


def rejected(config: Config, args) -> int:
    """List events that can never be stored (rejected_events), newest first, with the reason, as JSON lines."""
    with _database(config).connection() as conn:
        total = store.counts(conn)["rejected_events"]
        events = store.rejected_events(conn, args.limit)
    log_event(logger, "rejected_events", count=total)
    for row in events:
        fields = {key: row[key] for key in row.keys() if key != "event"}
        if args.events:
            fields["received"] = row["event"]  # the event as received, sender and recipient removed
        log_event(logger, "rejected_event", **fields)
    return 0


def print_rates(config: Config, args) -> int:
    """Print the state of the exchange rates as one JSON object: what is held, the last fetch, what waits."""
    with _database(config).connection() as conn:
        conn.execute("BEGIN")  # one snapshot: the counts agree with the fetch they follow
        held = store.rates_held(conn)
        last = store.last_rate_refresh(conn)
        state = {"newest_day": held["newest_day"], "rates": held["rates"], "currencies": held["currencies"],
                 "last_refresh": dict(last) if last is not None else None,
                 "last_success_at": store.last_rate_success_at(conn), **store.conversion_counts(conn),
                 "rates_url": config.rates_url or "off"}
        conn.execute("COMMIT")
    print(json.dumps(state, indent=2))
    return 0


def _database(config: Config, write: bool = False, current: bool = True) -> Database:
    """The existing database, for reading (and small writes when asked); never created here.

    `current`: the command reads this release's tables, so a file the bot has not upgraded yet
    (a new release installed, not yet started) is refused with one line saying what to do.
    """
    _require(checks.database_problems(config.db_path, must_exist=True, write=False)
             + checks.owner_problems(config.db_path))
    database = Database(config.db_path, read_only=not write)
    if current:
        with database.connection() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if 0 < version < SCHEMA_VERSION:  # 0: not ours at all, said when a table is missing
            raise ConfigError(f"EXPENSEBOT_DB: {config.db_path} has schema version {version}, older than this "
                              f"release's {SCHEMA_VERSION}; start the bot once (it upgrades the file), then run "
                              "this again")
    return database


def _require(problems: list[str]) -> None:
    if problems:
        raise ConfigError(*problems)


# ---- the parser ---------------------------------------------------------------------------------

def _psid_hash(value: str) -> str:
    if not is_psid_hash(value):
        raise argparse.ArgumentTypeError("a psid_hash is 64 lowercase hex digits (see hash-psid)")
    return value


def _psid(value: str) -> str:
    if not value.isascii() or not value.isdigit():
        raise argparse.ArgumentTypeError("a PSID is the digits Messenger gives a person, like 1234567890123456")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, at least 1")
    return int(value)


DB = ("EXPENSEBOT_DB",)
PSID_HASH = (("--psid-hash",), dict(required=True, type=_psid_hash, help="64 hex digits (see hash-psid)"))
# name: (function, help, variables read, arguments as (flags, add_argument keywords))
COMMANDS = {
    "serve": (serve, "run the bot", VARIABLES, []),
    "check": (check, "check everything serve needs; every problem one line, exit 2", VARIABLES, [
        (("--online",), dict(action="store_true",
                             help="also ask Graph (GET FB_GRAPH_URL/me) whether the Page token works"))]),
    "demo": (run_demo, "the whole bot locally, chatting in this terminal", ("EXPENSEBOT_TZ", "EXPENSEBOT_CURRENCY"), [
        (("--say",), dict(action="append", metavar="TEXT",
                          help="send TEXT, print the reply; repeat for a scripted conversation, then exit")),
        (("--db",), dict(type=Path, help=f"SQLite file, created if missing (default: {DEMO_DB} when typing, "
                                         "an empty one each time for --say and --example)")),
        (("--at",), dict(type=_moment, metavar="TIME", help="the demo's clock starts at TIME (2026-11-29T08:00:00Z), "
                                                           "to replay a documented conversation on another day")),
        (("--example",), dict(action="store_true", help="play the example conversation (currency, expenses, "
                                                         "a budget, a question), then exit")),
        (("--photo",), dict(type=Path, metavar="FILE", help="send FILE as a photo of a receipt first (needs "
                                                             "the receipts extra), then --say lines, then exit"))]),
    "hash-psid": (hash_psid, "print the psid_hash of a PSID", ("PSID_HASH_KEY",), [
        (("psid",), dict(type=_psid, help="the person's PSID (digits)"))]),
    "summary": (print_summary, "a person's totals, from the database, as JSON", DB + ("EXPENSEBOT_TZ",), [
        PSID_HASH,
        (("--period",), dict(choices=summary.PERIODS, default="month", help="default month"))]),
    "export": (export, "a person's expenses as CSV", DB, [
        PSID_HASH,
        (("--output",), dict(type=Path, metavar="PATH", help="write to this new file instead of stdout"))]),
    "backup": (backup, "an online, consistent copy of the database", DB, [
        (("path",), dict(help="a new file, or a folder (created if missing; a name ending in / "
                                         "is a folder) to get expensebot-<UTC time>.db")),
        (("--keep",), dict(type=_positive, metavar="N",
                           help="then delete all but the newest N expensebot-*.db files in that folder"))]),
    "restore": (restore_backup, "put a backup in place of the database (the bot stopped), keeping every erasure", DB, [
        (("backup",), dict(type=Path, help="a backup file, or a folder: its newest expensebot-*.db"))]),
    "jobs": (jobs, "enrichment jobs that ended in error, as JSON lines", DB, [
        (("--retry",), dict(action="store_true", help="make every failed job pending again"))]),
    "rejected": (rejected, "events that can never be stored, with the reason, as JSON lines", DB, [
        (("--limit",), dict(type=_positive, default=100, metavar="N", help="the newest N (default 100)")),
        (("--events",), dict(action="store_true", help="include each event as received"))]),
    "rates": (print_rates, "the exchange rates held, the last fetch and the expenses waiting, as JSON",
              DB + ("RATES_URL",), []),
    "replay-spool": (replay_spool, "write spooled events into the database now",
                     DB + ("EXPENSEBOT_SPOOL", "EXPENSEBOT_TZ", "EXPENSEBOT_CURRENCY", "AI_ENABLED"), []),
    "setup-page": (setup_page, "set the Page's Get Started button, greeting, menu and ice breakers",
                   ("FB_PAGE_ACCESS_TOKEN", "FB_APP_SECRET", "FB_GRAPH_URL", "EXPENSEBOT_PUBLIC_URL"), [
        (("--dry-run",), dict(action="store_true", help="print the profile JSON; send nothing"))]),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one JSON line on stderr (exit 2), like every other problem."""

    def error(self, message: str):
        sys.stderr.write(json.dumps({"ts": times.iso_utc(times.now_ms()), "level": "error",
                                     "event": "usage_error", "command": self.prog, "problem": message}) + "\n")
        sys.exit(CONFIG_EXIT)


def build_parser(prog: str = "expensebot") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"expensebot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, (run, help_text, variables, arguments) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=f"{help_text}.",
                                  epilog="reads: " + ", ".join(variables) + " (from the environment, "
                                  "or from --env-file)", formatter_class=argparse.RawDescriptionHelpFormatter)
        for flags, keywords in arguments:
            sub.add_argument(*flags, **keywords)
        sub.add_argument("--env-file", type=Path, metavar="PATH",
                         help="read variables from PATH with systemd's EnvironmentFile rules, over the environment")
        sub.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None, prog: str = "expensebot") -> int:
    args = build_parser(prog).parse_args(argv)
    # export's stdout is the CSV: its log lines go to stderr.
    logs.configure(sys.stderr if args.command == "export" and args.output is None else None)
    logging.captureWarnings(True)  # a library's warning is a JSON line too
    threading.excepthook = _thread_crashed
    try:
        return _run(args)
    except KeyboardInterrupt:
        log_event(logger, "interrupted", level=logging.WARNING, command=args.command)
        return 130
    except ConfigError as exc:
        for problem in exc.problems:
            log_event(logger, "config_error", level=logging.ERROR, command=args.command, problem=problem)
        return CONFIG_EXIT
    except Failure as exc:
        log_event(logger, "command_failed", level=logging.ERROR, command=args.command, problem=str(exc))
        return FAILURE_EXIT
    except Exception:
        logger.exception("command_crashed", extra={"fields": {"command": args.command}})
        return FAILURE_EXIT


def _run(args) -> int:
    env = dict(os.environ)
    if args.env_file is not None:
        try:
            env.update(envfile.read(args.env_file))
        except envfile.EnvFileError as exc:
            raise ConfigError(f"--env-file: {exc}") from None
    if args.command in ("check", "serve"):
        # These two report every problem at once, the values' and the machine's.
        config, args.config_problems = Config.read(env)
        args.config_problems += unknown_names(env)
    else:
        config = Config.from_env(env)
    try:
        return args.run(config, args)
    except (sqlite3.Error, DatabaseUnavailable) as exc:
        if not is_unavailable(exc):
            raise  # a constraint broken and the like are bugs: their traceback is logged
        raise Failure(f"EXPENSEBOT_DB: {config.db_path}: {exc}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise Failure(f"{exc.filename}: {reason}" if exc.filename is not None else reason) from None


def _thread_crashed(args: threading.ExceptHookArgs) -> None:
    """A bug in a background thread logs its traceback as one JSON line, not lines of plain text."""
    if args.exc_type is SystemExit:
        return
    logger.error("thread_crashed", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                 extra={"fields": {"thread": args.thread.name if args.thread else None}})


if __name__ == "__main__":
    sys.exit(main())
