#!/usr/bin/env python3
"""`python run.py COMMAND`: the same commands as the `expensebot` console script, from a checkout."""

import json
import sys

try:
    from expensebot.ops.cli import main
except ModuleNotFoundError as missing:  # a Python without the requirements: say which one to use
    if missing.name not in ("bottle", "waitress", "requests"):
        raise
    sys.stderr.write(json.dumps({"level": "error", "event": "config_error", "problem": (
        f"{missing.name} is not installed for {sys.executable}; run .venv/bin/python run.py ... "
        "after the README's Quick start installed it there")}) + "\n")
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
