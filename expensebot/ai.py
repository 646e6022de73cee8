"""The AI model behind enrichment: an OpenAI-compatible chat client with a whole-call deadline.

requests' timeouts bound each socket operation, not the call: a server that sends its headers, or
its body, a byte at a time keeps `requests.post(timeout=2)` waiting for minutes. So every call runs
under a `_Deadline`, a timer that shuts the call's socket down when the time is up, whatever the
call is doing then (TLS handshake, waiting for headers, reading them, reading the body); the
blocked read returns at once and the call raises AiError. The socket timeouts are set to the time
left as well, so a silent server fails the same way without the timer.

The model words things, it never counts: every total is summed from the expenses rows
(docs/ARCHITECTURE.md, invariant 5), and `rephrasing_is_faithful` rejects a rephrasing that states
a number the computed summary does not.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from expensebot.chat.rules import CATEGORIES

MAX_TIMEOUT = 3.0
MAX_ANSWER_BYTES = 256 * 1024
CHUNK_BYTES = 8192

CATEGORIZE_PROMPT = (
    "You sort personal expenses into categories. Answer with a JSON object "
    '{"category": "<one of: ' + ", ".join(CATEGORIES) + '>"} and nothing else.'
)
REPHRASE_PROMPT = (
    "Rewrite this expense summary for a chat message, friendlier and short. Keep every number exactly "
    "as written; add no numbers, percentages or calculations of your own. Answer with the text only."
)


class AiError(Exception):
    """The model gave no usable answer in time: timeout, connection or HTTP error, bad answer."""


class AiClient:
    """POST {base_url}/chat/completions through one requests.Session, each call within `timeout` seconds."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float,
                 session: requests.Session | None = None):
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT} seconds")
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model = model
        self.timeout = timeout
        self._api_key = api_key
        self._owns_session = session is None
        self._session = session or requests.Session()
        # Mounted for this URL only: an injected session keeps its own adapters for everything else.
        self._session.mount(self.url, _DeadlineAdapter())

    def close(self) -> None:
        """Close the session if this client made it."""
        if self._owns_session:
            self._session.close()

    def complete(self, system: str, user: str, *, json_object: bool = False) -> str:
        """Return choices[0].message.content for a system and a user message; raise AiError."""
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if json_object:
            body["response_format"] = {"type": "json_object"}
        answer = _parse_json(self._post(body))
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise AiError("answer has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise AiError("answer content is not text")
        return content

    def categorize(self, description: str) -> str:
        """Ask for one category from CATEGORIES; return it, or raise AiError for anything else."""
        return read_category(self.complete(CATEGORIZE_PROMPT, description, json_object=True))

    def rephrase(self, plain_summary: str) -> str:
        """Ask for a friendlier wording of a computed summary (rephrasing_is_faithful judges it)."""
        return self.complete(REPHRASE_PROMPT, plain_summary).strip()

    def _post(self, body: dict) -> bytes:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        with _Deadline(self.timeout) as deadline:
            try:
                data = self._read(body, headers, deadline)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if deadline.expired or isinstance(exc, (requests.Timeout, TimeoutError)):
                    raise AiError(f"no answer within {self.timeout} s") from None
                raise AiError(f"request failed: {type(exc).__name__}") from None
            if deadline.expired:  # a body cut short by the timer can end without an error
                raise AiError(f"no answer within {self.timeout} s")
        return data

    def _read(self, body: dict, headers: dict, deadline: _Deadline) -> bytes:
        left = deadline.remaining()
        with self._session.post(self.url, json=body, headers=headers, timeout=(left, left), stream=True,
                                allow_redirects=False) as response:
            if response.status_code != 200:
                raise AiError(f"HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise AiError(f"answer over {MAX_ANSWER_BYTES} bytes")
                if deadline.expired:
                    raise AiError(f"no answer within {self.timeout} s")
                chunks.append(chunk)
        return b"".join(chunks)


def read_category(content: str) -> str:
    """Accept {"category": "<known>"} or a bare known category word; raise AiError for anything else."""
    word = content.strip().lower()
    if word in CATEGORIES:
        return word
    answer = _parse_json(content)
    if isinstance(answer, dict):
        answer = answer.get("category")
    if not isinstance(answer, str):
        raise AiError('answer is not {"category": "<name>"}')
    category = answer.strip().lower()
    if category not in CATEGORIES:
        raise AiError("answer names an unknown category")
    return category


def _parse_json(data: str | bytes):
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
        raise AiError("answer is not JSON") from None


_current = threading.local()


class _Deadline:
    """Shut the current call's socket down when its time is up, whatever the call waits for."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._handle: socket.socket | None = None  # our own dup of the call's socket
        self._state = "running"  # running → expired | done
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        """Take the socket the call is about to wait on (a dup, so TLS wrapping cannot detach it)."""
        with self._lock:
            if self._handle is not None or self._state == "done":
                return
            self._handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
            if self._state == "expired":
                _shut(self._handle)

    def _expire(self) -> None:
        with self._lock:
            if self._state == "running":
                self._state = "expired"
                if self._handle is not None:
                    _shut(self._handle)

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        _current.deadline = None
        self._timer.cancel()
        # From here a late timer cannot touch the socket, which the pool may hand to the next call.
        with self._lock:
            self._state = "done"
            if self._handle is not None:
                self._handle.close()


def _shut(handle: socket.socket) -> None:
    try:
        handle.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv on the same socket in the call's thread
    except OSError:
        pass


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None and sock.fileno() != -1:
        deadline.watch(sock)


class _WatchedConnection:
    """Hand a new socket, or a reused one before the wait for an answer, to the call's deadline."""

    def _new_conn(self):
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def getresponse(self, *args, **kwargs):
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections that report their sockets to the call's deadline."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # SOCKS managers bring pools of their own
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager
