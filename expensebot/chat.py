"""The chat language around expenses: commands, and the words of every reply (SPEC §5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from expensebot.money import format_amount
from expensebot.summary import PERIODS, Summary

MAX_REPLY_CHARS = 1990  # the Send API refuses 2000 and more
DELETE_CONFIRM = "DELETE_MY_DATA_CONFIRM"
DELETE_CANCEL = "DELETE_MY_DATA_CANCEL"
DEFAULT_PERIOD = "month"
_COMMAND_RE = re.compile(r"[\s!.?]+")
PERIOD_NAMES = {"today": "Today", "week": "This week", "month": "This month", "year": "This year", "all": "All time"}
HELP = (
    "Text me what you spent, one expense per line:\n"
    "  coffee 4.50\n"
    "  lunch 250 PHP #food\n"
    "  taxi 12,50 yesterday\n"
    "  €12 groceries 2026-11-20\n"
    "Commands: summary [today|week|month|year|all], undo, help, delete my data."
)
KEPT = "Kept. Nothing was deleted."
HINT = "I couldn't find an amount in that. Try \"coffee 4.50\" — or \"help\"."
REPORT_NOT_SET_UP = "Report pages are not set up here: the bot's operator has not given it a public address yet."


@dataclasses.dataclass(frozen=True)
class Command:
    name: str             # summary | undo | help | delete_request | delete_confirm | delete_cancel
    period: str = DEFAULT_PERIOD


@dataclasses.dataclass(frozen=True)
class QuickReply:
    title: str
    payload: str


def read_command(text: str | None) -> Command | None:
    """Recognise a command; None when the text is not one (it may be an expense)."""
    if not text or len(text) > 40:
        return None
    if text in (DELETE_CONFIRM, DELETE_CANCEL):
        return Command("delete_confirm" if text == DELETE_CONFIRM else "delete_cancel")
    words = _COMMAND_RE.sub(" ", text.lower()).split()
    if words == ["help"] or words == ["?"] or text.strip() == "?":
        return Command("help")
    if words == ["report"]:
        return Command("report")
    if words == ["undo"]:
        return Command("undo")
    if words == ["delete", "my", "data"]:
        return Command("delete_request")
    if words[:1] == ["summary"] and len(words) <= 2:
        period = words[1] if len(words) == 2 else DEFAULT_PERIOD
        return Command("summary", period) if period in PERIODS else None
    return None


def expenses_reply(expenses: list, rejected: list, today_totals: list, today: dt.date, edited: bool) -> str:
    """Say how each line was read and the day's running total."""
    lines = [("Updated: " if edited else "") + _expense_line(e, today) for e in expenses]
    lines += [f"Line {r.line + 1} not read: {r.reason}." for r in rejected]
    if today_totals:
        lines.append("Today: " + ", ".join(format_amount(total, currency) for currency, total in today_totals))
    return fit(lines)


def hint_reply(rejected: list) -> str:
    """Answer text that holds no expense: why, when a line came close, and an example."""
    reasons = [r.reason for r in rejected if r.reason != "no amount"]
    if not reasons:
        return HINT
    return fit([f"Not saved: {reasons[0]}.", "Try \"coffee 4.50\" — or \"help\"."])


def summary_reply(summary: Summary) -> str:
    """Render computed totals; every number comes from the Summary."""
    name = PERIOD_NAMES[summary.period]
    if not summary.currencies:
        return f"{name}: no expenses yet."
    lines = []
    for total in summary.currencies:
        noun = "expense" if total.count == 1 else "expenses"
        lines.append(f"{name}: {format_amount(total.total_minor, total.currency)} in {total.count} {noun}")
        top = [f"{c.category or 'uncategorized'} {format_amount(c.total_minor, total.currency)}"
               for c in total.categories[:3]]
        lines.append("Top: " + ", ".join(top))
    return fit(lines)


def undo_reply(undone) -> str:
    if undone is None:
        return "Nothing to undo."
    what = undone["description"] or "expense"
    return fit([f"Removed: {what} — {format_amount(undone['amount_minor'], undone['currency'])}."])


def delete_request_reply() -> tuple[str, list[QuickReply]]:
    return ("This erases every expense and message of yours that I keep. Are you sure?",
            [QuickReply("Yes, delete", DELETE_CONFIRM), QuickReply("No, keep", DELETE_CANCEL)])


def deleted_reply(erased: dict) -> str:
    return (f"Done: I erased your {erased['messages']} messages and {erased['expenses']} expenses. "
            "Nothing of yours is left here.")


def fit(lines: list[str]) -> str:
    """Join lines, cutting whole lines so the reply stays under the Send API's limit."""
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) > MAX_REPLY_CHARS:
            return (text + "\n…") if text else line[:MAX_REPLY_CHARS - 1] + "…"
        text = candidate
    return text


def _expense_line(expense, today: dt.date) -> str:
    when = "today" if expense.date == today else (
        "yesterday" if expense.date == today - dt.timedelta(days=1) else expense.date.isoformat())
    tag = f" #{expense.category}" if expense.category else ""
    what = expense.description or "expense"
    return f"{what} — {format_amount(expense.amount_minor, expense.currency)}, {when}{tag}"
