"""Outbound HTTP: one requests.Session whose every call ends by a whole-call deadline, whatever the server does.

requests' own timeouts bound each socket operation, not the call: a server that trickles its answer
a byte at a time keeps a call with `timeout=2` waiting for minutes. So every socket is a
`_DeadlineSocket`, each send and receive given only the time left in the call (docs/ARCHITECTURE.md).
The deadline is kept per thread: a connection serves one call at a time, on the caller's thread.

The environment is not read (no proxies, CA bundle or .netrc from it), no cookie is kept, no
redirect is followed, and an answer's size is capped. Callers put tokens in headers, never in a URL.
"""

from __future__ import annotations

import email.utils
import http.client
import http.cookiejar
import io
import ssl
import threading
import time
from collections.abc import Callable

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_ANSWER_BYTES = 1 << 20
CHUNK_BYTES = 16384
POOL_SIZE = 16  # kept-alive connections per host: the reply senders and enrichment workers together
SLICE = 0.5  # a blocked send or receive looks at the deadline this often: a caller may bring it forward
FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError)


class OutboundError(Exception):
    """No usable answer: `status` is the HTTP status (None: no answer at all), `retry_after` the seconds
    the server asked to wait (Retry-After), if it did, `body` a non-2xx answer's body (within the size cap)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None,
                 body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.body = body


class Client:
    """Make HTTP calls through one requests.Session; thread-safe. `verify`: True, or a CA bundle's path."""

    def __init__(self, *, verify: bool | str = True):
        self._session = requests.Session()
        self._session.trust_env = False  # the environment is read in one place, the configuration
        self._session.verify = verify
        # No state carried from one call to the next: a cookie an answer sets is never sent back.
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _DeadlineAdapter(pool_maxsize=POOL_SIZE)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._session.close()

    def request(self, method: str, url: str, *, timeout: float, cutoff: Callable[[], float] | None = None,
                headers: dict | None = None, params: dict | None = None, json: object = None,
                data: dict | str | bytes | None = None, max_bytes: int = MAX_ANSWER_BYTES) -> bytes:
        """Make one call and return the body of its 2xx answer; raise OutboundError otherwise.

        It ends within `timeout` seconds, or by `cutoff()` (time.monotonic(), read again during the call) if sooner.
        """
        started = time.monotonic()
        ends = (lambda: min(started + timeout, cutoff())) if cutoff else (lambda: started + timeout)
        _current.ends = ends
        try:
            left = _time_left()  # requests' own per-operation timeouts: never longer than the call
            with self._session.request(method, url, headers=headers, params=params, json=json, data=data,
                                       timeout=(left, left), allow_redirects=False, stream=True) as response:
                status = response.status_code
                body = _read(response, max_bytes)
                if not 200 <= status < 300:
                    asked = retry_after(response.headers.get("Retry-After"))
                    raise OutboundError(f"HTTP {status}", status, asked, body)
            return body
        except OutboundError:
            raise
        except FAILURES as exc:
            if time.monotonic() >= ends():
                raise OutboundError("no answer in time") from None
            raise OutboundError(f"request failed: {type(_cause(exc)).__name__}") from None
        finally:
            _current.ends = None


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now(), 0.0) if when.tzinfo else None  # a date without a zone is unreadable


def _read(response: requests.Response, max_bytes: int) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise OutboundError(f"answer over {max_bytes} bytes", response.status_code)
    chunks, size = [], 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(f"answer over {max_bytes} bytes", response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _cause(exc: BaseException) -> BaseException:
    """The innermost error behind requests' and urllib3's wrappers (ConnectionRefusedError, LineTooLong, ...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        inner = inner if isinstance(inner, BaseException) else exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


_current = threading.local()  # .ends: the deadline of the call this thread is making, or None


def _time_left() -> float | None:
    """Seconds left in this thread's call (None outside one); TimeoutError when none is."""
    ends = getattr(_current, "ends", None)
    if ends is None:
        return None
    left = ends() - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket whose sends and receives give up when the current call's time is up."""

    def __init__(self, sock):
        self._sock = sock
        # Like a real socket's makefile(): close() waits until the answer's reader is closed too
        # (http.client closes a "Connection: close" connection before the answer's body is read).
        self._readers = 0
        self._closing = False

    def sendall(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self._retrying(self._sock.send, view):]

    def recv_into(self, buffer, nbytes: int = 0) -> int:
        return self._retrying(self._sock.recv_into, buffer, nbytes)

    def recv(self, size: int) -> bytes:
        return self._retrying(self._sock.recv, size)

    def _retrying(self, operation, *args):
        """Run a send or receive in slices of at most SLICE seconds, until it succeeds or the call's time is up."""
        while True:
            left = _time_left()
            if left is None:  # outside a call: the socket's own timeout, as urllib3 set it
                return operation(*args)
            self._sock.settimeout(min(left, SLICE))
            try:
                return operation(*args)
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self), CHUNK_BYTES)

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


class _DeadlineConnection:
    """Connect within the call's time left, then wrap the socket so every send and receive does too."""

    def _new_conn(self):
        self.timeout = _time_left() or self.timeout
        sock = super()._new_conn()
        left = _time_left()
        if left is not None:
            sock.settimeout(left)  # bounds the TLS handshake that follows, as a whole
        return sock

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _HTTPPool(HTTPConnectionPool):
    class ConnectionCls(_DeadlineConnection, HTTPConnection):
        pass


class _HTTPSPool(HTTPSConnectionPool):
    class ConnectionCls(_DeadlineConnection, HTTPSConnection):
        pass


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with pools of deadline connections."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

