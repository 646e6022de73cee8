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

from expensebot import occurrences, rates, store, times
from expensebot.chat import recurring, rules
from expensebot.chat.meaning import Command, Reading
from expensebot.events import Message
from expensebot.receipts import download
from expensebot.settings import Settings

# Due dates a new rule makes in its own message's transaction ('since' a while ago); the scheduler,
# woken after the commit, makes the rest in its own transactions.
AT_ONCE = 31
# Receipt photos waiting to be read, at most: a burst beyond it is answered plainly, not queued.
MAX_WAITING_PHOTOS = 20


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
    receipt: dict | None = None            # receipt_*: the draft as this message left it
    receipt_was: str = ""                  # receipt_save/fix/drop: the draft's status before it


NOTHING = Outcome()


def run(conn: sqlite3.Connection, message: Message, command: Command | None, reading: Reading | None = None,
        own: Settings | None = None, now: dt.datetime | None = None, message_id: int = 0,
        receipt_hosts: tuple[str, ...] | None = None) -> Outcome:
    """Do a command's writes on conn (inside the caller's transaction); say what was done.

    `reading`, `own` (the person's settings now), `now` and the message's row id: what a recurring
    rule and its first due dates need, and a receipt saved. `receipt_hosts`: where photos may be
    downloaded from; None when receipts are not set up.
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
        case "receipt_photo":
            return _photo(conn, message, message_id, receipt_hosts, received_at)
        case "receipt_save" | "receipt_fix" | "receipt_drop":
            return _decide(conn, message, command, own or reading.settings, now or times.utc_now())
    return NOTHING  # the other commands only read, for their reply


def _photo(conn: sqlite3.Connection, message: Message, message_id: int, hosts: tuple[str, ...] | None,
           received_at: str) -> Outcome:
    """Keep a photo's draft, to be read in the background; or, when it never can be, say why at once."""
    if hosts is None:
        return Outcome(receipt={"status": "off"})
    url = download.photo_url(message.event)
    status, reason = "pending", None
    if not download.allowed(url, hosts):
        status, reason = "unreadable", download.NOT_MESSENGER
    elif store.drafts_waiting(conn) >= MAX_WAITING_PHOTOS:
        status, reason = "unreadable", "too many photos are waiting to be read right now"
    draft_id = store.insert_draft(conn, message.psid_hash, message_id, message.mid, url if status == "pending" else None,
                                  status, reason, times.iso_utc(message.sent_ms), received_at)
    return Outcome(receipt=dict(store.draft(conn, draft_id, message.psid_hash)))


def _decide(conn: sqlite3.Connection, message: Message, command: Command, own: Settings, now: dt.datetime) -> Outcome:
    """Save, fix or drop a proposed draft, once: a second tap finds it decided and changes nothing."""
    draft = store.draft(conn, int(command.target), message.psid_hash)
    if draft is None or draft["status"] != "proposed":
        return Outcome(receipt=dict(draft) if draft else None, receipt_was=draft["status"] if draft else "")
    decided_at = times.iso_utc(message.sent_ms)
    if command.name == "receipt_save":
        store.decide_draft(conn, draft["id"], "saved", decided_at, _save_receipt(conn, draft, own, now))
    else:  # Fix: the person types the line instead, as an expense of its own
        store.decide_draft(conn, draft["id"], "dropped", decided_at)
    return Outcome(receipt=dict(store.draft(conn, draft["id"], message.psid_hash)), receipt_was="proposed")


def _save_receipt(conn: sqlite3.Connection, draft: sqlite3.Row, own: Settings, now: dt.datetime) -> int:
    """The draft as an expense of the photo's message (line 0: UNIQUE, so once), dated on the receipt's
    day (noon there, as a written date is) or, without one, when the photo was sent."""
    sent_ms = times.ms_from_iso(draft["sent_at"])
    day = dt.date.fromisoformat(draft["receipt_date"]) if draft["receipt_date"] else None
    if day is None or day == times.local_date(sent_ms, own.zone):
        occurred_at = draft["sent_at"]
    else:
        occurred_at = times.iso_from_datetime(dt.datetime.combine(day, dt.time(12), own.zone))
    description = draft["merchant"] or "receipt"
    category = rules.categorize(description)
    currency = draft["currency"] or own.currency
    conversion = rates.convert_for(conn, draft["amount_minor"], currency, occurred_at, own, now).columns
    row = (0, draft["amount_minor"], currency, description, category, "rule" if category else None, occurred_at,
           *conversion)
    return store.insert_expenses(conn, draft["message_id"], draft["psid_hash"], draft["mid"], [row],
                                 times.iso_from_datetime(now))[0]


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
