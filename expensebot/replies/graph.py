"""Graph API calls: one lean client with pooled keep-alive connections, a whole-call deadline, one error.

Built on http.client: a Send API call costs about half the CPU of urllib3 and a fifth of requests
on the sending thread, and the reply path makes many of them. The page token travels only in the
`Authorization: Bearer` header, never in a URL, so no proxy log or library warning can show it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import json.encoder
import math
import queue
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence

from expensebot.jsontext import dumps_with

# Graph error codes: worth trying again later, or never (docs/REPLIES.md, "Graph facts").
RETRY_CODES = frozenset({1200, 613, 4, 2})
NEVER_RETRY_CODES = frozenset({551, 10, 100, 190})
CALL_TIMEOUT = 10.0  # connect, send, headers and body together
MAX_BATCH = 50  # Graph's limit on items in one batch request
MAX_ANSWER_BYTES = 1 << 20
RECV_SLICE = 0.5  # a blocked read looks at the deadline (which close() may bring forward) this often


class GraphError(Exception):
    """A Graph call failed: `code`/`subcode` from Graph's error object, `retryable` if trying later may help."""

    def __init__(self, message: str, code: int | None = None, subcode: int | None = None,
                 retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.retryable = retryable
        self.status = status


def appsecret_proof(token: str, app_secret: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def error_from(status: int, answer: object) -> GraphError:
    """The GraphError for a non-200 answer: Graph's {"error": {...}} if present, else the status alone."""
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = error.get("code"), error.get("error_subcode")
    code = code if isinstance(code, int) else None
    subcode = subcode if isinstance(subcode, int) else None
    retryable = code in RETRY_CODES or (status >= 500 and code not in NEVER_RETRY_CODES)
    message = error.get("message")
    detail = f", code {code}: {message[:200]}" if isinstance(message, str) and code is not None else ""
    return GraphError(f"HTTP {status}{detail}", code, subcode, retryable, status)


# Each UTF-8 byte (as a latin-1 character) to its form encoding: what urllib.parse.quote_plus does,
# in one str.translate instead of a Python-level lookup per byte (a batch of 50 is ~40 KB twice).
_FORM_TABLE = {byte: chr(byte) if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "_.-~")
               else "+" if byte == 0x20 else f"%{byte:02X}" for byte in range(256)}


def form_encode(fields: dict[str, str]) -> str:
    """application/x-www-form-urlencoded text of the fields, as urllib.parse.urlencode would write it."""
    return "&".join(f"{_quote(name)}={_quote(value)}" for name, value in fields.items())


def _quote(text: str) -> str:
    return text.encode().decode("latin-1").translate(_FORM_TABLE)


# The form encoding of a batch's JSON around each item's body: form_encode({"batch": json.dumps(items)})
# is this, with each body encoded again (a body is already form text: only % + = & change).
_ITEM_OPEN = _quote('{"method": "POST", "relative_url": "me/messages", "body": "')
_ITEM_CLOSE, _ITEM_SEP, _OPEN, _CLOSE = _quote('"}'), _quote(", "), _quote("["), _quote("]")


def _quoted_batch(bodies: list[str]) -> str:
    """form-encoded json.dumps([{"method": "POST", "relative_url": "me/messages", "body": body}, ...]).

    Built from the pieces instead: encoding the whole JSON text a second time was most of a
    batch's CPU. A form-encoded body needs no JSON escaping ([A-Za-z0-9_.~%+=&-] only).
    """
    items = (_ITEM_OPEN + body.replace("%", "%25").replace("+", "%2B").replace("=", "%3D").replace("&", "%26")
             + _ITEM_CLOSE for body in bodies)
    return _OPEN + _ITEM_SEP.join(items) + _CLOSE


_json_text = dumps_with(ensure_ascii=False)  # json.dumps(value, ensure_ascii=False), a kept encoder


def message_body(psid: str, message: dict) -> dict:
    """The Send API body for a RESPONSE message (Reply.as_message gives `message`)."""
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}


# form_encode of message_body(psid, message), its JSON values as _json_text writes them, around the two
# values that change: form encoding goes character by character, so the pieces can be encoded apart.
_BODY_OPEN = "recipient=" + _quote('{"id": ')
_BODY_MIDDLE = _quote("}") + "&messaging_type=RESPONSE&message="


def _item_body(psid: str, message: dict) -> str:
    """A batch item's body: form_encode({name: JSON text of value for message_body(psid, message)})."""
    return _BODY_OPEN + _quote(json.encoder.encode_basestring(psid)) + _BODY_MIDDLE + _quote(_json_text(message))


class GraphClient:
    """Calls to one Graph API version root, such as https://graph.facebook.com/v25.0.

        graph = GraphClient(config.fb_graph_url, config.fb_page_access_token, config.fb_app_secret)
        graph.post_json("me/messenger_profile", {"greeting": [...]})  # the answer's JSON
        graph.get("me", {"fields": "id,name"})                        # the answer's JSON
        graph.send_message(psid, {"text": "hi"})                      # one Send API call
        graph.send_batch([(psid, message), ...])                      # [None | GraphError, ...]
        graph.close()

    Every call sends the token as `Authorization: Bearer` and `appsecret_proof` as a parameter (in
    the body of a POST, the query of a GET), and ends within `timeout` seconds whatever the server
    does (or by `deadline`, a time.monotonic() value, if sooner); a failure raises GraphError.
    Thread-safe: up to `pool_size` idle connections are kept.
    """

    def __init__(self, graph_url: str, token: str, app_secret: str, *, timeout: float = CALL_TIMEOUT,
                 pool_size: int = 8, clock: Callable[[], float] = time.monotonic):
        url = urllib.parse.urlsplit(graph_url.rstrip("/"))
        self._tls = url.scheme == "https"
        self._host, self._port = url.hostname, url.port or (443 if self._tls else 80)
        self._root = url.path  # "/v25.0"
        self._headers = {"Authorization": f"Bearer {token}", "Host": url.netloc}
        self._proof = appsecret_proof(token, app_secret) if app_secret else None
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(pool_size)
        self._ssl = ssl.create_default_context() if self._tls else None
        self.timeout = timeout
        self.clock = clock
        self.cutoff = math.inf  # no call runs past this monotonic time (close() of a sender sets it)
        self._closed = False

    def close(self) -> None:
        """Close the idle connections; a call still running closes its own when it ends."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def get(self, path: str, params: dict | None = None, *, deadline: float = math.inf) -> object:
        """GET {graph}/{path}?params and return the answer's JSON."""
        query = dict(params or {})
        if self._proof:
            query["appsecret_proof"] = self._proof
        target = f"{self._root}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return self._json(self._call("GET", target, None, None, deadline))

    def post_json(self, path: str, body: dict, *, deadline: float = math.inf) -> object:
        """POST a JSON object to {graph}/{path} and return the answer's JSON."""
        if self._proof:
            body = {**body, "appsecret_proof": self._proof}
        data = _json_text(body).encode()
        return self._json(self._call("POST", f"{self._root}/{path}", data, "application/json", deadline))

    def send_message(self, psid: str, message: dict, *, deadline: float = math.inf) -> object:
        """POST me/messages: one RESPONSE message to one person."""
        return self.post_json("me/messages", message_body(psid, message), deadline=deadline)

    def send_batch(self, messages: Sequence[tuple[str, dict]], *,
                   deadline: float = math.inf) -> list[GraphError | None]:
        """Send up to MAX_BATCH messages in one batch request; per message, None (sent) or its GraphError.

        Graph runs independent items in parallel: give it at most one message per person. A failure
        of the whole request raises GraphError; an item with no answer (Graph timed it out) is retryable.
        """
        if not 0 < len(messages) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} items")
        bodies = [_item_body(psid, message) for psid, message in messages]
        form = {"include_headers": "false"}
        if self._proof:
            form["appsecret_proof"] = self._proof
        data = f"batch={_quoted_batch(bodies)}&{form_encode(form)}".encode()
        answer = self._json(self._call("POST", f"{self._root}/", data,
                                       "application/x-www-form-urlencoded", deadline))
        if not isinstance(answer, list):
            raise GraphError("batch answer is not a list", retryable=True)
        return [_item_outcome(answer[i] if i < len(answer) else None) for i in range(len(bodies))]

    def _json(self, answer: tuple[int, bytes]) -> object:
        status, data = answer
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        if status != 200:
            raise error_from(status, parsed)
        return parsed

    def _call(self, method: str, target: str, body: bytes | None, content_type: str | None,
              deadline: float) -> tuple[int, bytes]:
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        ends = min(self.clock() + self.timeout, deadline)
        conn, reused = self._checkout()
        try:
            try:
                status, data, keep = self._exchange(conn, method, target, body, headers, ends)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:  # a kept-alive connection the server had closed meanwhile: one fresh try
                    raise
                conn.close()
                conn = self._connection()
                status, data, keep = self._exchange(conn, method, target, body, headers, ends)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            late = isinstance(exc, TimeoutError) or self.clock() >= min(ends, self.cutoff)
            raise GraphError("no answer in time" if late else f"request failed: {type(exc).__name__}",
                             retryable=True) from None
        if keep:
            self._checkin(conn)
        else:
            conn.close()
        return status, data

    def _exchange(self, conn, method, target, body, headers, ends) -> tuple[int, bytes, bool]:
        conn.ends = lambda: min(ends, self.cutoff)
        if conn.sock is None:
            conn.timeout = max(conn.ends() - self.clock(), 0.001)
            conn.connect()
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        chunks, size = [], 0
        while chunk := response.read(65536):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ValueError("answer too large")
            chunks.append(chunk)
        return response.status, b"".join(chunks), not response.will_close

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        try:
            return self._idle.get_nowait(), True
        except queue.Empty:
            return self._connection(), False

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        if self._closed:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._tls:
            return _HTTPSConnection(self._host, self._port, context=self._ssl, clock=self.clock)
        return _HTTPConnection(self._host, self._port, clock=self.clock)


def _item_outcome(item: object) -> GraphError | None:
    if not isinstance(item, dict):
        return GraphError("no answer for this batch item", retryable=True)
    code = item.get("code")
    if code == 200:
        return None
    try:
        body = json.loads(item.get("body") or "null")
    except (TypeError, ValueError):
        body = None
    return error_from(code if isinstance(code, int) else 500, body)


class _DeadlineConnection:
    """A connection whose socket reads and writes give up at the call's end (`self.ends()`)."""

    def __init__(self, *args, clock: Callable[[], float], **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.ends: Callable[[], float] = lambda: math.inf

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineSocket:
    """Wrap a socket so that every read checks the call's deadline: a trickled answer cannot hold a call."""

    def __init__(self, sock: socket.socket, conn: _DeadlineConnection):
        self._sock = sock
        self._conn = conn
        # Like a real socket's makefile(): close() waits until the answer's reader is closed too
        # (http.client closes the connection before the body of a "Connection: close" answer is read).
        self._readers = 0
        self._closing = False

    def left(self) -> float:
        left = self._conn.ends() - self._conn.clock()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")
        return left

    def sendall(self, data) -> None:
        self._sock.settimeout(self.left())
        self._sock.sendall(data)

    def recv_into(self, buffer) -> int:
        while True:
            self._sock.settimeout(min(self.left(), RECV_SLICE))
            try:
                return self._sock.recv_into(buffer)
            except (socket.timeout, ssl.SSLWantReadError):
                continue

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing and not self._readers:
            self._sock.close()

    def close(self) -> None:
        self._closing = True
        if not self._readers:
            self._sock.close()

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _Reader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket):
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()
