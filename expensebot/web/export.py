"""CSV export of a person's expenses: the same columns everywhere, and formula-safe cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from expensebot.money import format_amount

COLUMNS = ("id", "occurred_at", "amount", "currency", "amount_minor", "description",
           "category", "category_source", "mid",
           "converted_amount", "converted_currency", "converted_minor", "rate", "rate_day", "rate_source",
           "recurring")  # recurring: the period of the rule an expense was made by ('' for one written)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 1_000  # rows written at a time when streaming (about 100 KB of CSV)


def safe_cell(value) -> str:
    """The cell as text, with a leading ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def expense_chunks(rows: Iterable) -> Iterator[str]:
    """Expense rows (store.expenses_of) as RFC 4180 CSV with a header line, in pieces of ROWS_PER_CHUNK rows:
    never the whole of a long month at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for number, row in enumerate(rows, start=1):
        writer.writerow(_cells(row))
        if number % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cells(row) -> list:
    amount = format_amount(row["amount_minor"], row["currency"]).split(" ")[0]
    converted = row["converted_minor"]
    converted_amount = "" if converted is None else format_amount(converted, row["converted_currency"]).split(" ")[0]
    return [row["id"], row["occurred_at"], amount, row["currency"], row["amount_minor"],
            safe_cell(row["description"]), safe_cell(row["category"]),
            row["category_source"] or "", safe_cell(row["mid"]),
            converted_amount, row["converted_currency"] or "", "" if converted is None else converted,
            row["rate"] or "", row["rate_day"] or "", row["rate_source"] or "pending", row["recurring"]]
