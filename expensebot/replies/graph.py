"""Graph API calls over the outbound client: the token in a header, appsecret_proof on every call, one error.

The token is never in a URL, so no proxy log or library warning can show it (docs/REPLIES.md, "The Graph client").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import urllib.parse
from collections.abc import Sequence

from expensebot import outbound

# Graph error codes: worth trying again later, or never (docs/REPLIES.md, "Graph facts").
RETRY_CODES = frozenset({1200, 613, 4, 2})
NEVER_RETRY_CODES = frozenset({551, 10, 100, 190})
CALL_TIMEOUT = 10.0  # connect, send, headers and body together
MAX_BATCH = 50  # Graph's limit on items in one batch request


class GraphError(Exception):
    """A Graph call failed: `code`/`subcode` from Graph's error object, `retryable` if trying later may help,
    `status` the HTTP status (None: no answer), `retry_after` the seconds Graph asked to wait, if it did."""

    def __init__(self, message: str, code: int | None = None, subcode: int | None = None,
                 retryable: bool = False, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def appsecret_proof(token: str, app_secret: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def error_from(status: int, answer: object, retry_after: float | None = None) -> GraphError:
    """The GraphError for a non-2xx answer: Graph's {"error": {...}} if present, else the status alone."""
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = error.get("code"), error.get("error_subcode")
    code = code if isinstance(code, int) else None
    subcode = subcode if isinstance(subcode, int) else None
    retryable = code in RETRY_CODES or (code not in NEVER_RETRY_CODES and (status >= 500 or status == 429))
    message = error.get("message")
    # Graph's messages may quote the recipient's PSID; a log line must not (ids are 15-17 digits).
    redacted = re.sub(r"\d{10,}", "[number]", message) if isinstance(message, str) else None
    detail = f", code {code}: {redacted[:200]}" if redacted is not None and code is not None else ""
    return GraphError(f"HTTP {status}{detail}", code, subcode, retryable, status, retry_after)


def batch_item(psid: str, message: dict) -> dict:
    """One Send API call as a batch item: its body is form text whose values are JSON."""
    body = {"recipient": json.dumps({"id": psid}), "messaging_type": "RESPONSE", "message": json.dumps(message)}
    return {"method": "POST", "relative_url": "me/messages", "body": urllib.parse.urlencode(body)}


class GraphClient:
    """Calls to one Graph API version root, such as https://graph.facebook.com/v25.0; thread-safe.

    A call ends within `timeout` seconds whatever the server does, or by `cutoff` (a time.monotonic()
    value) if sooner; a failure raises GraphError. `http`: the outbound client to use (else its own).
    """

    def __init__(self, graph_url: str, token: str, app_secret: str, *, timeout: float = CALL_TIMEOUT,
                 http: outbound.Client | None = None):
        self._root = graph_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._proof = {"appsecret_proof": appsecret_proof(token, app_secret)} if app_secret else {}
        self._http = http or outbound.Client()
        self._owns_http = http is None
        self.timeout = timeout
        self.cutoff = math.inf  # no call runs past this monotonic time (close() of a sender sets it)

    def close(self) -> None:
        """Close the outbound client if this one made it."""
        if self._owns_http:
            self._http.close()

    def get(self, path: str, params: dict | None = None) -> object:
        """GET {graph}/{path}?params and return the answer's JSON."""
        return self._call("GET", path, params={**(params or {}), **self._proof})

    def post_json(self, path: str, body: dict) -> object:
        """POST a JSON object to {graph}/{path} and return the answer's JSON."""
        return self._call("POST", path, json={**body, **self._proof})

    def send_message(self, psid: str, message: dict) -> object:
        """POST me/messages: one RESPONSE message to one person (`message`: Reply.as_message())."""
        body = {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
        return self.post_json("me/messages", body)

    def send_batch(self, messages: Sequence[tuple[str, dict]]) -> list[GraphError | None]:
        """Send up to MAX_BATCH messages in one batch request; per message, None (sent) or its GraphError.

        Graph runs independent items in parallel: give it at most one message per person. A failure
        of the whole request raises GraphError; an item with no answer (Graph timed it out) is retryable.
        """
        if not 0 < len(messages) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} items")
        items = [batch_item(psid, message) for psid, message in messages]
        form = {"batch": json.dumps(items), "include_headers": "false", **self._proof}
        answer = self._call("POST", "", data=form)
        if not isinstance(answer, list):
            raise GraphError("batch answer is not a list", retryable=True)
        return [_item_outcome(answer[i] if i < len(answer) else None) for i in range(len(items))]

    def _call(self, method: str, path: str, **request) -> object:
        try:
            data = self._http.request(method, f"{self._root}/{path}", timeout=self.timeout, headers=self._headers,
                                      cutoff=lambda: self.cutoff, **request)
        except outbound.OutboundError as exc:
            raise _graph_error(exc) from None
        return _parsed(data)


def _graph_error(exc: outbound.OutboundError) -> GraphError:
    if exc.status is None:  # no answer: the network, a deadline, a broken answer
        return GraphError(str(exc), retryable=True)
    if exc.status < 300:  # an answer too large to take
        return GraphError(str(exc), status=exc.status)
    return error_from(exc.status, _parsed(exc.body), exc.retry_after)


def _parsed(data: object) -> object:
    try:
        return json.loads(data) if data else None
    except (TypeError, ValueError, RecursionError):
        return None


def _item_outcome(item: object) -> GraphError | None:
    if not isinstance(item, dict):
        return GraphError("no answer for this batch item", retryable=True)
    code = item.get("code")
    if code == 200:
        return None
    return error_from(code if isinstance(code, int) else 500, _parsed(item.get("body")))
