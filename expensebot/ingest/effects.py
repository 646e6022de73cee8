"""What a command does to the rows, run in its message's own write transaction (exactly once).

A redelivered message is not stored again, so its command does not run again: `undo` sent once
removes one expense however often Meta redelivers it. Each effect goes by the time its message
was sent: `undo` takes back what was sent before it, an erasure removes what was sent up to it,
and a setting never overrides one sent later (Meta delivers out of order after failures).
"""

from __future__ import annotations

import dataclasses
import sqlite3

from expensebot import store, times
from expensebot.chat.meaning import Command
from expensebot.events import Message


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What storing a message did beyond its own rows (all empty for an expense or a hint)."""

    undone: tuple[dict, ...] = ()          # undo: the expenses removed, latest first
    erased: tuple[int, int] | None = None  # delete_confirm: (messages, expenses) erased
    late: bool = False                     # a setting or budget that a message sent later had changed already
    reread: int = 0                        # a setting that arrived late: expenses sent after it, read again
    removed: bool = False                  # budget_off: there was a budget to remove
    not_carried_out: bool = False          # an edit that reads as a command: commands run once, when sent


NOTHING = Outcome()


def run(conn: sqlite3.Connection, message: Message, command: Command | None) -> Outcome:
    """Do a command's writes on conn (inside the caller's transaction); say what was done."""
    effect = _EFFECTS.get(command.name) if command is not None else None
    if effect is None:
        return NOTHING
    return effect(conn, message, command, times.iso_utc(message.sent_ms))


def _erase(conn, message, command, sent_at):
    return Outcome(erased=store.erase_person(conn, message.psid_hash, sent_at))


def _undo(conn, message, command, sent_at):
    rows = store.delete_latest_expenses(conn, message.psid_hash, command.count, sent_at)
    return Outcome(undone=tuple(dict(row) for row in rows))


def _setting(conn, message, command, sent_at):
    setting, value = ("currency", command.currency) if command.name == "currency_set" else ("timezone", command.tz)
    latest = store.set_setting(conn, message.psid_hash, setting, value, sent_at, times.iso_utc(message.received_ms))
    return Outcome(late=not latest)


def _budget_set(conn, message, command, sent_at):
    set_ = store.set_budget(conn, message.psid_hash, command.category, command.amount_minor, command.currency, sent_at)
    return Outcome(late=not set_)


def _budget_off(conn, message, command, sent_at):
    return Outcome(removed=store.turn_budget_off(conn, message.psid_hash, command.category, sent_at))


_EFFECTS = {"delete_confirm": _erase, "undo": _undo, "currency_set": _setting, "timezone_set": _setting,
            "budget_set": _budget_set, "budget_off": _budget_off}
