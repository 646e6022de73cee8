"""What a command does to the rows, run in its message's own write transaction (exactly once).

A redelivered message is not stored again, so its command does not run again: `undo` sent once
removes one expense however often Meta redelivers it. Each effect goes by the time its message
was sent: `undo` takes back what was sent before it, an erasure removes what was sent up to it,
and a setting never overrides one sent later (Meta delivers out of order after failures).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from expensebot import occurrences, store, times
from expensebot.chat import recurring, rules
from expensebot.chat.meaning import Command, Reading
from expensebot.events import Message
from expensebot.settings import Settings

# Due dates a new rule makes in its own message's transaction ('since' a while ago); the scheduler,
# woken after the commit, makes the rest in its own transactions.
AT_ONCE = 31


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What storing a message did beyond its own rows (all empty for an expense or a hint)."""

    undone: tuple[dict, ...] = ()          # undo: the expenses removed, latest first
    erased: tuple[int, int] | None = None  # delete_confirm: (messages, expenses) erased
    late: bool = False                     # a setting or budget that a message sent later had changed already
    reread: int = 0                        # a setting that arrived late: expenses sent after it, read again
    removed: bool = False                  # budget_off: there was a budget to remove
    not_carried_out: bool = False          # an edit that reads as a command: commands run once, when sent
    rule: dict | None = None               # recurring_set: the rule made; recurring_stop: the rule stopped;
                                           # undo: the rule taken back (with 'expenses': how many it had made)
    too_many_rules: bool = False           # recurring_set: the person has MAX_RULES already


NOTHING = Outcome()


def run(conn: sqlite3.Connection, message: Message, command: Command | None, reading: Reading | None = None,
        own: Settings | None = None, now: dt.datetime | None = None, message_id: int = 0) -> Outcome:
    """Do a command's writes on conn (inside the caller's transaction); say what was done.

    `reading`, `own` (the person's settings now), `now` and the message's row id: what a recurring
    rule and its first due dates need.
    """
    if command is None:
        return NOTHING
    psid_hash, sent_at = message.psid_hash, times.iso_utc(message.sent_ms)
    received_at = times.iso_utc(message.received_ms)
    match command.name:
        case "delete_confirm":
            return Outcome(erased=store.erase_person(conn, psid_hash, sent_at))
        case "undo":
            rule = store.newest_undoable_rule(conn, psid_hash, sent_at)
            if rule is not None:  # right after making a rule: undo takes the rule back, with what it made
                return Outcome(rule=dict(rule) | {"expenses": store.delete_rule(conn, rule["id"])})
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
        case "recurring_set":
            return _make_rule(conn, message, message_id, command.rule, own or reading.settings,
                              now or times.utc_now())
        case "recurring_stop":
            rule = _rule_named(store.active_rules(conn, psid_hash), command.target)
            if rule is not None:
                store.stop_rule(conn, rule["id"], reading.today.isoformat(), sent_at)
            return Outcome(rule=dict(rule) if rule else None)
    return NOTHING  # the other commands only read, for their reply


def _make_rule(conn: sqlite3.Connection, message: Message, message_id: int, rule: recurring.Rule, own: Settings,
               now: dt.datetime) -> Outcome:
    """Store a rule and make its due dates up to today (at most AT_ONCE of them here)."""
    if len(store.active_rules(conn, message.psid_hash)) >= recurring.MAX_RULES:
        return Outcome(too_many_rules=True)
    category, source = (rule.category, "user") if rule.category else (rules.categorize(rule.description), "rule")
    first = recurring.due_date(rule.period, rule.start, rule.anchor_day, 0)
    rule_id = store.insert_rule(conn, message.psid_hash, message_id, message.mid, rule, category,
                                source if category else None, first.isoformat(), times.iso_utc(message.sent_ms))
    stored = store.rule_by_id(conn, rule_id)
    occurrences.create_due(conn, stored, own, now, AT_ONCE)
    return Outcome(rule=dict(stored))


def _rule_named(active: list, target: str) -> sqlite3.Row | None:
    """The rule `stop` names: by its number in the list, else by its name (the first that has it)."""
    if target.isascii() and target.isdigit():
        number = int(target)
        return active[number - 1] if 1 <= number <= len(active) else None
    return next((rule for rule in active if rule["description"].lower() == target), None)
