#!/usr/bin/env python3
"""expensebot's command line: `python run.py serve`, `python run.py hash-psid PSID`, ...

The only place that reads the environment, configures logging and starts waitress.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import waitress

from expensebot import logs, webhook
from expensebot.config import Config, ConfigError
from expensebot.identity import PsidHasher
from expensebot.logs import log_event
from expensebot.service import Service

logger = logging.getLogger("expensebot")
SERVER_THREADS = 4


def serve(config: Config) -> int:
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


def hash_psid(config: Config, psid: str) -> int:
    """Print the psid_hash of a PSID, to find a person's rows."""
    if not config.psid_hash_key:
        raise ConfigError("PSID_HASH_KEY: required to hash a PSID")
    print(PsidHasher(config.psid_hash_key)(psid))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the bot (configuration from the environment)")
    hash_cmd = commands.add_parser("hash-psid", help="print the psid_hash of a PSID")
    hash_cmd.add_argument("psid")
    args = parser.parse_args(argv)

    logs.configure()
    try:
        config = Config.from_env(os.environ)
        if args.command == "serve":
            return serve(config)
        return hash_psid(config, args.psid)
    except ConfigError as exc:
        print(f"expensebot: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
