#!/usr/bin/env python3
"""`python run.py COMMAND`: the same commands as the `expensebot` console script, from a checkout."""

import sys

from expensebot.ops.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
