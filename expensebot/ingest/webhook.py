"""Read Meta's webhook deliveries: signature over the raw bytes, then events into small records.

Every event is handled on its own: a malformed or unknown event becomes a Skipped record,
never an exception that would fail the whole delivery. The raw PSID stops here: records carry
psid_hash; the PSID itself only goes into Delivery.recipients, in memory, for replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

from expensebot.events import Message

MAX_BODY_BYTES = 1024 * 1024
MAX_ID_LENGTH = 512
# SQLite stores integers up to 2^63 - 1; a counter above that can never be stored.
MAX_COUNTER = 2**63 - 1
# Messenger started in 2011; nothing before 2004 (Facebook's start) is a real event time.
EARLIEST_MS = 1_072_915_200_000  # 2004-01-01T00:00:00Z
# Clocks drift, but an event dated more than a day after it reached us is garbage.
MAX_AHEAD_MS = 24 * 3600 * 1000
IDENTITY_FIELDS = ("sender", "recipient")
# Events without a message of their own: acknowledged, never stored as expenses.
NOTICE_KINDS = (
    "delivery", "read", "reaction", "optin", "referral", "account_linking",
    "policy_enforcement", "policy-enforcement", "app_roles", "pass_thread_control",
    "take_thread_control", "request_thread_control", "game_play", "payment",
    "checkout_update", "pre_checkout", "messaging_feedback",
)


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An event acknowledged but not stored: its kind and why."""

    kind: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Delivery:
    messages: tuple[Message, ...]
    skipped: tuple[Skipped, ...]
    recipients: Mapping[str, str]  # psid_hash -> PSID, kept in memory for replies only


def sign(secret: str, body: bytes) -> str:
    """Return the X-Hub-Signature-256 header value Meta would send for body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check X-Hub-Signature-256 ("sha256=<hex>") against the raw body, in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=").strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(sign(secret, body).removeprefix("sha256=").encode("ascii"), given)


def read_delivery(payload: dict, hash_psid: Callable[[str], str], received_ms: int) -> Delivery:
    """Turn a parsed webhook body into message records and skipped events."""
    messages, skipped, recipients = [], [], {}
    if payload.get("object") != "page":
        return Delivery((), (Skipped("object", f"not a page object: {_kind_of(payload.get('object'))}"),), {})
    for entry in _list(payload.get("entry")):
        if not isinstance(entry, dict):
            skipped.append(Skipped("entry", "not an object"))
            continue
        entry_ms = entry.get("time") if is_sane_ms(entry.get("time"), received_ms) else received_ms
        for channel in ("messaging", "standby", "changes"):
            for raw in _list(entry.get(channel)):
                record = _read_event(raw, channel, hash_psid, entry_ms, received_ms)
                if isinstance(record, tuple):
                    message, psid = record
                    messages.append(message)
                    recipients[message.psid_hash] = psid
                else:
                    skipped.append(record)
    return Delivery(tuple(messages), tuple(skipped), recipients)


def _read_event(raw, channel, hash_psid, entry_ms, received_ms) -> tuple[Message, str] | Skipped:
    if not isinstance(raw, dict):
        return Skipped(channel, "event is not an object")
    if channel != "messaging":
        # Standby events belong to another app's thread; changes are not Messenger events.
        return Skipped(channel, "not for this app")
    kind, body = _event_kind(raw)
    if body is None:
        return Skipped(kind, "no message")
    if kind == "message" and body.get("is_echo"):
        return Skipped("echo", "the Page's own message")
    psid = _id(_get(raw, "sender", "id"))
    if psid is None:
        return Skipped(kind, "no usable sender id")
    # Out of the sane window: the receive time stands in (the original stays in `event`).
    sent_ms = raw.get("timestamp") if is_sane_ms(raw.get("timestamp"), received_ms) else entry_ms
    event = _without_identity(raw)
    read = _MESSAGE_READERS[kind](body, event)
    if isinstance(read, Skipped):
        return read
    mid, kind, text, num_edit = read
    invalid = None
    if num_edit > MAX_COUNTER:
        num_edit, invalid = 0, f"num_edit out of range (over {MAX_COUNTER})"
    message = Message(psid_hash=hash_psid(psid), mid=_clean(mid), kind=kind, text=_clean(text), sent_ms=sent_ms,
                      received_ms=received_ms, event=event, num_edit=num_edit, invalid=invalid)
    return message, psid


def is_sane_ms(value, received_ms: int) -> bool:
    """Tell whether value is an integer millisecond time between 2004 and a day after received_ms."""
    return type(value) is int and EARLIEST_MS <= value <= received_ms + MAX_AHEAD_MS


def _event_kind(raw: dict) -> tuple[str, dict | None]:
    for kind in ("message", "message_edit", "postback"):
        if kind in raw:
            body = raw[kind]
            return kind, body if isinstance(body, dict) else None
    for kind in NOTICE_KINDS:
        if kind in raw:
            return kind, None
    return "unknown", None


def _read_message(body: dict, event: str):
    mid = _id(body.get("mid"))
    if mid is None:
        return Skipped("message", "no usable mid")
    payload = _get(body, "quick_reply", "payload")
    if isinstance(payload, str) and payload:
        return mid, "quick_reply", payload, 0
    text = body.get("text")
    return mid, "message", text if isinstance(text, str) else None, 0


def _read_edit(body: dict, event: str):
    mid, text, num_edit = _id(body.get("mid")), body.get("text"), body.get("num_edit")
    if mid is None or not isinstance(text, str):
        return Skipped("message_edit", "no usable mid or text")
    if type(num_edit) is not int or num_edit < 1:
        num_edit = 1
    return mid, "edit", text, num_edit


def _read_postback(body: dict, event: str):
    payload = body.get("payload")
    if not isinstance(payload, str) or not payload:
        return Skipped("postback", "no payload")
    # Older postbacks have no mid: the event itself (its timestamp, if any, and payload) is its
    # key, the same however often Meta redelivers it, and whatever time the redelivery arrives.
    mid = _id(body.get("mid")) or f"postback.{hashlib.sha256(event.encode('utf-8', 'replace')).hexdigest()[:32]}"
    return mid, "postback", payload, 0


_MESSAGE_READERS = {"message": _read_message, "message_edit": _read_edit, "postback": _read_postback}


def _id(value) -> str | None:
    """Return an id as a string: Meta sends strings, some fixtures send numbers."""
    if type(value) is int and 0 <= value <= MAX_COUNTER:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def _clean(text: str | None) -> str | None:
    """Replace what SQLite cannot store (lone surrogates) so garbage can't break a write."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8")


def _without_identity(raw: dict) -> str:
    event = {key: value for key, value in raw.items() if key not in IDENTITY_FIELDS}
    try:
        return json.dumps(event, separators=(",", ":"))
    except (ValueError, RecursionError):
        return json.dumps({"unserializable": sorted(map(str, event))})


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _kind_of(value) -> str:
    return value if isinstance(value, str) and len(value) < 40 else type(value).__name__
