"""One person's message event as the bot keeps it: read from Meta's body, spooled, stored."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Message:
    """One person's message event, identity already hashed."""

    psid_hash: str
    mid: str
    kind: str          # message | quick_reply | postback | edit
    text: str | None   # what the bot reads: the text, or the quick reply / postback payload
    sent_ms: int       # the event's own timestamp
    received_ms: int   # when the webhook reached us
    event: str         # the event as received, identity fields removed (JSON)
    num_edit: int = 0  # message_edit only
    invalid: str | None = None  # why this event can never be stored (kept in rejected_events instead)
