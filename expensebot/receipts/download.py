"""A receipt photo's download: only from RECEIPT_HOSTS, no redirect, at most MAX_BYTES, within a deadline.

The URL comes in a signed body, so it is Meta's; it is still input. It is fetched in the background,
never in the webhook, through the outbound client (outbound.py: a whole-call deadline, no redirect
followed, the answer's size capped while it is read).
"""

from __future__ import annotations

import json
import urllib.parse

from expensebot import outbound

MAX_BYTES = 10 * 1024 * 1024
DEADLINE = 20.0  # seconds for the whole download
NOT_MESSENGER = "the photo is not on Messenger's servers"


class Refused(Exception):
    """The photo will never be downloaded: the message says why, plainly."""


def photo_url(event: str) -> str | None:
    """The URL of the first image attached to a stored event (its JSON), if it has one."""
    try:
        attachments = json.loads(event).get("message", {}).get("attachments")
    except (ValueError, AttributeError, RecursionError):
        return None
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict) and attachment.get("type") == "image":
            payload = attachment.get("payload")
            url = payload.get("url") if isinstance(payload, dict) else None
            if isinstance(url, str) and url:
                return url
    return None


def allowed(url: str | None, hosts: tuple[str, ...]) -> bool:
    """Whether url may be fetched: https on a listed host name or its subdomains, or exactly a listed origin."""
    if not url:
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not host:
        return False
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    for entry in hosts:
        if "://" in entry:
            if origin == entry:
                return True
        elif parts.scheme == "https" and port in (None, 443) and (host == entry or host.endswith(f".{entry}")):
            return True
    return False


def download(http: outbound.Client, url: str, hosts: tuple[str, ...]) -> bytes:
    """The photo's bytes. Raises Refused (never to be tried again) or outbound.OutboundError (try later)."""
    if not allowed(url, hosts):
        raise Refused(NOT_MESSENGER)
    try:
        return http.request("GET", url, timeout=DEADLINE, max_bytes=MAX_BYTES)
    except outbound.OutboundError as exc:
        if exc.status is not None and 300 <= exc.status < 400:
            raise Refused("the photo's address sent me elsewhere") from None
        if str(exc).startswith("answer over"):
            raise Refused(f"the photo is larger than {MAX_BYTES // (1024 * 1024)} MB") from None
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
            raise Refused(f"the photo could not be fetched (HTTP {exc.status})") from None
        raise
