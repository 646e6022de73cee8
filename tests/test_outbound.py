"""The outbound HTTP client against real local servers that misbehave: every call ends by its deadline."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.server
import json
import socket
import ssl
import struct
import sys
import threading
import time

import pytest
from conftest import free_port, wait_for

from expensebot import outbound
from expensebot.outbound import Client, OutboundError

TIMEOUT = 1.0
HANG = 30.0  # a hanging stand-in answers after this long; a trickling one gives up after it
# A call cut off at its deadline ends well within this, however busy the machine (3 s to spare); a
# client that waited for the slow server instead would take HANG, and one whose deadline were a few
# times too long would miss it too. Speed itself is measured in bench/, not asserted here.
CUT_OFF = 4 * TIMEOUT


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # hanging up early is what these clients do
            super().handle_error(request, client_address)


class StandIn:
    """A real local HTTP server: records each request, answers with the scripted functions in order, then the last again."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.answers: list = []
        self.stopped = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so the client reuses its connection

            def do_GET(self):
                self.body = b""
                outer.answer(self)

            def do_POST(self):
                self.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.answer(self)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def will(self, *answers) -> None:
        self.answers = list(answers)

    def answer(self, handler) -> None:
        body = handler.body
        self.requests.append({"method": handler.command, "path": handler.path, "headers": dict(handler.headers),
                              "body": body, "json": json.loads(body) if body.startswith(b"{") else None,
                              "client_port": handler.client_address[1]})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        try:
            answer(handler, self.stopped)
        except OSError:  # the client gave up and closed its socket
            handler.close_connection = True


def serve(stand_in: StandIn, first_answer):
    stand_in.will(first_answer)
    stand_in.thread.start()
    yield stand_in
    stand_in.stopped.set()
    stand_in.server.shutdown()
    stand_in.server.server_close()


def send(handler, status: int, body: bytes, **headers) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def answers_raw(status: int, body: bytes, **headers):
    return lambda handler, stopped: send(handler, status, body, **headers)


def hangs(handler, stopped):
    stopped.wait(HANG)  # or released when the test ends
    send(handler, 200, b"{}")


def drips(stopped: threading.Event):
    """Yield every half second for HANG seconds, or until the test ends: each byte alone is on time."""
    for _ in range(int(HANG / 0.5)):
        if stopped.wait(0.5):
            return
        yield


def trickles_body(handler, stopped):
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in drips(stopped):
        handler.wfile.write(b" ")


def trickles_chunked_body(handler, stopped):
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for _ in drips(stopped):
        handler.wfile.write(b"1\r\n \r\n")


def trickles_headers(handler, stopped):
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
    for byte, _ in zip(head, drips(stopped)):
        handler.wfile.write(bytes([byte]))


def hangs_after_headers(handler, stopped):
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.flush()
    stopped.wait(HANG)


def raw(data: bytes):
    """Answer with these bytes as they are, then close the connection."""
    def answer(handler, stopped):
        handler.wfile.write(data)
        handler.close_connection = True
    return answer


def resets(handler, stopped):
    """Close the connection with a TCP reset instead of an answer."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def closes_when_idle(handler, stopped):
    """Answer as if keeping the connection alive, then close it, as a server ending an idle keep-alive does."""
    send(handler, 200, b'{"ok": true}')
    handler.close_connection = True


@pytest.fixture
def stand_in():
    yield from serve(StandIn(), answers_raw(200, b'{"ok": true}'))


@pytest.fixture
def client():
    client = Client()
    yield client
    client.close()


def call(client: Client, url: str, **options) -> bytes:
    return client.request("POST", f"{url}/call", timeout=options.pop("timeout", TIMEOUT), json={"n": 1}, **options)


def elapsed_until_error(client: Client, url: str, **options) -> tuple[float, OutboundError]:
    started = time.monotonic()
    with pytest.raises(OutboundError) as raised:
        call(client, url, **options)
    return time.monotonic() - started, raised.value


def test_a_call_sends_what_it_is_given_and_returns_the_body(stand_in, client):
    body = client.request("POST", f"{stand_in.url}/chat", timeout=TIMEOUT, json={"text": "\u00e9"},
                          params={"a": "b c"}, headers={"Authorization": "Bearer k"})
    assert body == b'{"ok": true}'
    [request] = stand_in.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/chat?a=b+c")
    assert request["headers"]["Authorization"] == "Bearer k"
    assert request["json"] == {"text": "\u00e9"}


@pytest.mark.parametrize("answer", [hangs, trickles_headers, trickles_body, trickles_chunked_body,
                                    hangs_after_headers])
def test_a_slow_server_is_cut_off_at_the_deadline(stand_in, client, answer):
    stand_in.will(answer)
    elapsed, error = elapsed_until_error(client, stand_in.url)
    assert TIMEOUT - 0.05 <= elapsed < CUT_OFF
    assert (str(error), error.status) == ("no answer in time", None)


def test_a_silent_server_holds_the_call_on_its_callers_thread_alone(client):
    # A listener that never accepts: the kernel completes the handshake and keeps the request unread.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        threads = threading.active_count()
        seen = []

        def watch():
            seen.append(threading.active_count())  # while the call below waits
        timer = threading.Timer(TIMEOUT / 2, watch)
        timer.start()
        elapsed, error = elapsed_until_error(client, f"http://127.0.0.1:{listener.getsockname()[1]}")
        timer.join()
    assert seen == [threads + 1]  # the watcher itself: no thread was started for the call
    assert elapsed < CUT_OFF and error.status is None


def test_the_deadline_covers_connecting(client):
    # A listener whose accept queue is full: the handshake of the next connection never completes.
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.connect(listener.getsockname())
        elapsed, error = elapsed_until_error(client, f"http://127.0.0.1:{listener.getsockname()[1]}")
    assert elapsed < CUT_OFF and str(error) == "no answer in time"


@pytest.mark.parametrize("answer, reason", [
    (raw(b"HTPT/9 sure\r\n\r\n"), "request failed"),                        # not a status line
    (raw(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n{}"), "request failed"),  # too many headers
    (raw(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"), "request failed"),  # a header line too long
    (raw(b""), "request failed"),                                               # closed without a word
    (resets, "request failed: ConnectionResetError"),
])
def test_a_broken_answer_is_an_outbound_error_without_a_status(stand_in, client, answer, reason):
    stand_in.will(answer)
    elapsed, error = elapsed_until_error(client, stand_in.url)
    assert str(error).startswith(reason) and error.status is None
    assert elapsed < CUT_OFF
    stand_in.will(answers_raw(200, b"{}"))
    assert call(client, stand_in.url) == b"{}"  # the client is fine afterwards


def test_a_malformed_header_block_is_an_answer_or_an_error_never_a_crash(stand_in, client):
    stand_in.will(raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nthis is not a header\r\n"
                      b" folded\r\nContent-Length: 2\r\n\r\n{}"))
    try:
        assert call(client, stand_in.url) == b"{}"
    except OutboundError as exc:
        assert exc.status is None
    stand_in.will(answers_raw(200, b'{"again": 1}'))
    assert call(client, stand_in.url) == b'{"again": 1}'


@pytest.mark.parametrize("answer", [
    answers_raw(200, b"x" * 2_000),                                 # says its length: refused unread
    lambda handler, stopped: (handler.send_response(200), handler.send_header("Transfer-Encoding", "chunked"),
                              handler.end_headers(), handler.wfile.write(b"7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n")),
])
def test_an_answer_over_the_cap_is_refused(stand_in, client, answer):
    stand_in.will(answer)
    _, error = elapsed_until_error(client, stand_in.url, max_bytes=1_000)
    assert (str(error), error.status) == ("answer over 1000 bytes", 200)


@pytest.mark.parametrize("header, seconds", [
    ({"Retry_After": "7"}, 7.0),
    ({"Retry_After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date already past
    ({"Retry_After": "soon"}, None),
    ({}, None),
])
def test_an_error_status_carries_its_body_and_retry_after(stand_in, client, header, seconds):
    stand_in.will(answers_raw(429, b'{"error": "slow down"}', **header))
    _, error = elapsed_until_error(client, stand_in.url)
    assert (str(error), error.status, error.retry_after) == ("HTTP 429", 429, seconds)
    assert error.body == b'{"error": "slow down"}'


def test_retry_after_as_a_date_is_the_seconds_until_then():
    assert outbound.retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=lambda: 1767225600.0) == 60.0


def test_a_redirect_is_not_followed(stand_in, client):
    stand_in.will(answers_raw(302, b"", Location=f"{stand_in.url}/elsewhere"))
    _, error = elapsed_until_error(client, stand_in.url)
    assert error.status == 302
    assert [r["path"] for r in stand_in.requests] == ["/v1/call"]


def test_connection_refused_fails_at_once(client):
    elapsed, error = elapsed_until_error(client, f"http://127.0.0.1:{free_port()}")
    assert (str(error), error.status) == ("request failed: ConnectionRefusedError", None)
    assert elapsed < TIMEOUT  # milliseconds, not the deadline


def test_connections_are_kept_alive_and_reused(stand_in, client):
    for _ in range(3):
        call(client, stand_in.url)
    assert len({r["client_port"] for r in stand_in.requests}) == 1


def test_a_kept_connection_the_server_closed_is_replaced(stand_in, client):
    stand_in.will(closes_when_idle, answers_raw(200, b"{}"))
    assert call(client, stand_in.url) == b'{"ok": true}'

    def answered() -> bool:
        try:
            return call(client, stand_in.url) == b"{}"
        except OutboundError:  # the server's close raced this call (a loaded machine): the next takes a new one
            return False

    assert wait_for(answered, 5)
    assert len({r["client_port"] for r in stand_in.requests}) == 2


def test_an_answer_that_closes_the_connection_is_read_whole(client):
    """HTTP/1.0, or "Connection: close": http.client closes the connection before the body is read."""
    class Handler(http.server.BaseHTTPRequestHandler):  # protocol_version HTTP/1.0: one answer a connection
        def do_GET(self):
            send(self, 200, json.dumps({"name": "x" * 100_000}).encode())

        def log_message(self, *args):
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        for _ in range(3):
            body = client.request("GET", f"http://127.0.0.1:{server.server_address[1]}/me", timeout=5)
            assert len(json.loads(body)["name"]) == 100_000
    finally:
        server.shutdown()
        server.server_close()


def test_a_hanging_call_ends_when_its_cutoff_is_brought_forward(stand_in, client):
    stand_in.will(hangs)
    cutoff = [float("inf")]
    errors = []

    def hanging_call():
        try:
            call(client, stand_in.url, timeout=60, cutoff=lambda: cutoff[0])
        except OutboundError as exc:
            errors.append(exc)

    caller = threading.Thread(target=hanging_call)
    caller.start()
    assert wait_for(lambda: len(stand_in.requests) == 1)
    cutoff[0] = time.monotonic() + 0.2
    caller.join(CUT_OFF)
    assert not caller.is_alive()
    assert [str(e) for e in errors] == ["no answer in time"]


def test_concurrent_calls_keep_their_own_deadlines(stand_in, client):
    def by_body(handler, stopped):
        slow = json.loads(handler.body)["slow"]
        (trickles_body if slow else answers_raw(200, b"{}"))(handler, stopped)

    stand_in.will(by_body)

    def outcome(slow: bool):
        try:
            return client.request("POST", stand_in.url, timeout=TIMEOUT, json={"slow": slow})
        except OutboundError as exc:
            return str(exc)

    order = [True, False, False, True, False]
    with concurrent.futures.ThreadPoolExecutor(len(order)) as pool:
        outcomes = list(pool.map(outcome, order))
    assert outcomes == ["no answer in time" if slow else b"{}" for slow in order]


# A self-signed certificate for 127.0.0.1, valid until 2126, for the HTTPS path (Graph and most models are HTTPS).
CERT = """-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUVW5rd0wgEBcjja3UwOShRp+/KikwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNTE1MDQ0OFoYDzIxMjYxMTAx
MTUwNDQ4WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASmvx0SfGPWYw4Ewg20Zw8v5/y5uCU1LKvNjIkgz76zv+t20X7nfqhu
2n9+JIEsFyat8g5dAVUkjJZI5yTxCuvFo2QwYjAdBgNVHQ4EFgQUY2LTI8+srUbZ
xVeUxNtpSSsk0vAwHwYDVR0jBBgwFoAUY2LTI8+srUbZxVeUxNtpSSsk0vAwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
ICgVNQUJRf6C2I67vN6bLcWgLadAXPSYtMmCVZmeLiwGAiBavok+33ZpzSpUk2Vk
I0OZ3Fr+kmQ3JzkUcY/QnEeIGQ==
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYA2D1iOodnb0NxAO
DpZI//cHbM8sj+ZLN13hTMXvoKGhRANCAASmvx0SfGPWYw4Ewg20Zw8v5/y5uCU1
LKvNjIkgz76zv+t20X7nfqhu2n9+JIEsFyat8g5dAVUkjJZI5yTxCuvF
-----END PRIVATE KEY-----
"""


@pytest.fixture
def cert_path(tmp_path):
    (tmp_path / "cert.pem").write_text(CERT)
    (tmp_path / "key.pem").write_text(KEY)
    return tmp_path / "cert.pem"


@pytest.fixture
def tls_stand_in(cert_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, cert_path.with_name("key.pem"))
    yield from serve(StandIn(tls=context), answers_raw(200, b'{"ok": true}'))


@pytest.fixture
def trusting_client(cert_path):
    client = Client(verify=str(cert_path))
    yield client
    client.close()


@pytest.mark.parametrize("answer, outcome", [
    (answers_raw(200, b'{"ok": true}'), b'{"ok": true}'),
    (trickles_headers, "no answer in time"),
    (trickles_body, "no answer in time"),
])
def test_https_answers_and_deadline(tls_stand_in, trusting_client, answer, outcome):
    tls_stand_in.will(answer)
    try:
        got = call(trusting_client, tls_stand_in.url)
    except OutboundError as exc:
        got = str(exc)
    assert got == outcome
    assert tls_stand_in.requests[0]["path"] == "/v1/call"


def test_an_untrusted_certificate_is_refused(tls_stand_in, client):
    _, error = elapsed_until_error(client, tls_stand_in.url)
    assert str(error).startswith("request failed") and error.status is None
    assert tls_stand_in.requests == []


def test_the_deadline_covers_a_tls_handshake_that_trickles(trusting_client):
    stopped = threading.Event()

    def trickle_handshake(listener):
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):  # OSError: the client gave up
            conn.sendall(b"\x16\x03\x03\x40\x00")  # a TLS handshake record header, then its body slowly
            for _ in drips(stopped):
                conn.sendall(b"\x02")

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        thread = threading.Thread(target=trickle_handshake, args=(listener,), daemon=True)
        thread.start()
        try:
            elapsed, error = elapsed_until_error(trusting_client, f"https://127.0.0.1:{listener.getsockname()[1]}")
        finally:
            stopped.set()
            thread.join(timeout=2)
    assert elapsed < CUT_OFF and str(error) == "no answer in time"
