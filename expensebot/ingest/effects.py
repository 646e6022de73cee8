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
    if command is None:
        return NOTHING
    psid_hash, sent_at = message.psid_hash, times.iso_utc(message.sent_ms)
    received_at = times.iso_utc(message.received_ms)
    match command.name:
        case "delete_confirm":
            return Outcome(erased=store.erase_person(conn, psid_hash, sent_at))
        case "undo":
            rows = store.delete_latest_expenses(conn, psid_hash, command.count, sent_at)
            return Outcome(undone=tuple(dict(row) for row in rows))
        case "currency_set" | "timezone_set":
            setting = "currency" if command.name == "currency_set" else "timezone"
            value = command.currency if setting == "currency" else command.tz
            latest = store.set_setting(conn, psid_hash, setting, value, sent_at, received_at)
            if latest:  # conversions follow the person's currency, and the day of their zone
                store.convert_again(conn, psid_hash)
            return Outcome(late=not latest)
        case "budget_set":
            latest = store.set_budget(conn, psid_hash, command.category, command.amount_minor,
                                      command.currency, sent_at)
            return Outcome(late=not latest)
        case "digest_on" | "digest_off":
            latest = store.set_digest(conn, psid_hash, command.name == "digest_on", sent_at, received_at)
            return Outcome(late=not latest)
        case "budget_off":
            return Outcome(removed=store.turn_budget_off(conn, psid_hash, command.category, sent_at))
    return NOTHING  # the other commands only read, for their reply
