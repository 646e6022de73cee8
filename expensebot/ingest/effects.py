"""What a command does to the rows, run in its message's own write transaction (exactly once).

A redelivered message is not stored again, so its command does not run again: `undo` sent once
removes one expense however often Meta redelivers it.
"""

from __future__ import annotations

import sqlite3

from expensebot import store, times
from expensebot.chat.meaning import Command
from expensebot.ingest.webhook import Message


def run(conn: sqlite3.Connection, message: Message, command: Command | None) -> dict | None:
    """Do a command's writes on conn (inside the caller's transaction); say what was done."""
    if command is None:
        return None
    if command.name == "delete_confirm":
        # Erased as of the confirmation's own time: events are compared with it on Meta's clock.
        return {"erased": store.erase_person(conn, message.psid_hash, times.iso_utc(message.sent_ms))}
    effect = _EFFECTS.get(command.name)
    if effect is None:
        return None
    return effect(conn, message.psid_hash, command, times.iso_utc(message.received_ms))


def _undo(conn, psid_hash, command, now):
    return {"undone": [dict(row) for row in store.delete_latest_expenses(conn, psid_hash, command.count)]}


def _currency(conn, psid_hash, command, now):
    store.set_person(conn, psid_hash, now, currency=command.currency)
    return {"currency": command.currency}


def _timezone(conn, psid_hash, command, now):
    store.set_person(conn, psid_hash, now, timezone=command.tz)
    return {"timezone": command.tz}


def _budget_set(conn, psid_hash, command, now):
    store.set_budget(conn, psid_hash, command.category, command.amount_minor, command.currency, now)
    return {"budget": command.category}


def _budget_off(conn, psid_hash, command, now):
    return {"removed": store.delete_budget(conn, psid_hash, command.category)}


_EFFECTS = {"undo": _undo, "currency_set": _currency, "timezone_set": _timezone,
            "budget_set": _budget_set, "budget_off": _budget_off}
