"""CSV export of a person's expenses: the same columns everywhere, and formula-safe cells."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TextIO

from expensebot.money import format_amount

COLUMNS = ("id", "occurred_at", "amount", "currency", "amount_minor", "description",
           "category", "category_source", "mid")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 1_000  # rows fetched and written at a time when streaming (about 100 KB of CSV)


def safe_cell(value) -> str:
    """The cell as text, with a leading ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_expenses(file: TextIO, rows: Iterable) -> None:
    """Write expense rows (store.expenses_of) as RFC 4180 CSV with a header line."""
    writer = csv.writer(file, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_cells(row) for row in rows)


def expense_chunks(cursor: sqlite3.Cursor, rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[str]:
    """The CSV of write_expenses in pieces: the header line, then rows_per_chunk rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    while True:
        yield buffer.getvalue()
        rows = cursor.fetchmany(rows_per_chunk)
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(_cells(row) for row in rows)


def _cells(row) -> list:
    amount = format_amount(row["amount_minor"], row["currency"]).split(" ")[0]
    return [row["id"], row["occurred_at"], amount, row["currency"], row["amount_minor"],
            safe_cell(row["description"]), safe_cell(row["category"]),
            row["category_source"] or "", safe_cell(row["mid"])]
