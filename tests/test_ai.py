"""The AI client against a real local server playing the model: answers, bad answers, and the deadline."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.server
import json
import socket
import ssl
import sys
import threading
import time

import pytest
import requests
from conftest import free_port

from expensebot import ai
from expensebot.ai import AiClient, AiError
from expensebot.chat.rules import CATEGORIES
from expensebot.replies.faithful import rephrasing_is_faithful

TIMEOUT = 1.0
HANG = 30.0  # a hanging stand-in answers after this long; a trickling one gives up after it
# A call cut off at its deadline ends well within this, however busy the machine (3 s to spare); a
# client that waited for the slow server instead would take HANG, and one whose deadline were a few
# times too long would miss it too. Speed itself is measured in bench/, not asserted here.
CUT_OFF = 4 * TIMEOUT


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # hanging up early is what these clients do
            super().handle_error(request, client_address)


class ModelStandIn:
    """A real local HTTP server playing an OpenAI-compatible model: records requests, answers as scripted."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.answers: list = []  # one answer per request, in order; then the last one again
        self.stopped = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so the client reuses its connection

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.body = json.loads(self.rfile.read(length))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "json": self.body,
                                       "client_port": self.client_address[1]})
                answer = outer.answers.pop(0) if len(outer.answers) > 1 else outer.answers[0]
                try:
                    answer(self, outer.stopped)
                except OSError:  # the client gave up and closed its socket
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def will(self, *answers) -> None:
        self.answers = list(answers)


def send(handler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def completion(content) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


def says(content, after: float = 0.0):
    def answer(handler, stopped):
        stopped.wait(after)
        send(handler, 200, completion(content))
    return answer


def answers_raw(status: int, body: bytes):
    return lambda handler, stopped: send(handler, status, body)


def hangs(handler, stopped):
    stopped.wait(HANG)  # or released when the test ends
    send(handler, 200, completion("food"))


def drips(stopped: threading.Event):
    """Yield every half second for HANG seconds, or until the test ends: each byte alone is on time."""
    for _ in range(int(HANG / 0.5)):
        if stopped.wait(0.5):
            return
        yield


def trickles_body(handler, stopped):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in drips(stopped):
        handler.wfile.write(b" ")


def trickles_chunked_body(handler, stopped):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for _ in drips(stopped):
        handler.wfile.write(b"1\r\n \r\n")


def trickles_headers(handler, stopped):
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
    for byte, _ in zip(head, drips(stopped)):
        handler.wfile.write(bytes([byte]))


def serve(stand_in: ModelStandIn):
    stand_in.will(says('{"category": "food"}'))
    stand_in.thread.start()
    yield stand_in
    stand_in.stopped.set()
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def model():
    yield from serve(ModelStandIn())


# A self-signed certificate for 127.0.0.1, valid until 2126, for the HTTPS path (api.openai.com is HTTPS).
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
def tls_model(cert_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, cert_path.with_name("key.pem"))
    yield from serve(ModelStandIn(tls=context))


@pytest.fixture
def trusting_session(cert_path):
    with requests.Session() as session:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
        session.verify = str(cert_path)
        yield session


@pytest.fixture
def client(model):
    client = AiClient(model.url, "test-ai-key", "test-model", timeout=TIMEOUT)
    yield client
    client.close()


def test_categorize_sends_an_openai_request_and_returns_the_category(model, client):
    model.will(says('{"category": "transport"}'))
    assert client.categorize("taxi to work") == "transport"
    [request] = model.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer test-ai-key"
    body = request["json"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "taxi to work"
    assert all(category in body["messages"][0]["content"] for category in CATEGORIES)


def test_no_authorization_header_without_an_api_key(model):
    client = AiClient(model.url + "/", "", "llama3.2", timeout=TIMEOUT)
    try:
        assert client.categorize("coffee") == "food"
    finally:
        client.close()
    [request] = model.requests
    assert request["path"] == "/v1/chat/completions"
    assert "Authorization" not in request["headers"]
    assert request["json"]["model"] == "llama3.2"


@pytest.mark.parametrize("content, category", [
    ('{"category": "food"}', "food"),
    ('{"category": " Travel "}', "travel"),
    ('{"category": "health", "confidence": 0.9}', "health"),
    ("Food", "food"),
    ("  groceries \n", "groceries"),
    ('"utilities"', "utilities"),
    ("OTHER", "other"),
])
def test_categorize_accepts_a_known_category(model, client, content, category):
    model.will(says(content))
    assert client.categorize("anything") == category


@pytest.mark.parametrize("content", [
    "The category is food.",                        # prose
    "food, transport",
    '{"category": "gambling"}',                     # unknown category
    "gambling",
    '{"category": {"name": "food"}}',               # extra nesting
    '{"result": {"category": "food"}}',
    '["food"]',
    '{"category": null}',
    '{"category": 3}',
    '{"category": "food"',                          # not JSON
    '```json\n{"category": "food"}\n```',
    "",
    "[" * 100_000,                                  # nested past the JSON parser's stack
])
def test_categorize_rejects_anything_else(model, client, content):
    model.will(says(content))
    with pytest.raises(AiError):
        client.categorize("anything")


@pytest.mark.parametrize("status, body", [
    (500, b'{"error": {"message": "model crashed"}}'),
    (404, b'{"error": "model not found"}'),
    (429, b'{"error": "rate limited"}'),
    (302, b""),
    (200, b"<html>Bad gateway</html>"),             # garbage, not JSON
    (200, b'{"choices": []}'),                      # JSON of the wrong shape
    (200, b'{"error": "overloaded"}'),
    (200, b'{"choices": [{"message": {"content": null}}]}'),
    (200, b'{"choices": [{"text": "food"}]}'),
    (200, b"[]"),
    (200, completion("x" * ai.MAX_ANSWER_BYTES)),   # over the size cap
])
def test_bad_http_answers_raise_ai_error(model, client, status, body):
    model.will(answers_raw(status, body))
    with pytest.raises(AiError):
        client.complete("system", "user")


def test_connection_refused_raises_ai_error():
    client = AiClient(f"http://127.0.0.1:{free_port()}/v1", "k", "m", timeout=ai.MAX_TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises(AiError):
            client.categorize("coffee")
    finally:
        client.close()
    assert time.monotonic() - started < ai.MAX_TIMEOUT  # at once (milliseconds), not at its deadline


def elapsed_until_ai_error(client: AiClient) -> float:
    started = time.monotonic()
    with pytest.raises(AiError, match="no answer within"):
        client.categorize("coffee")
    return time.monotonic() - started


@pytest.mark.parametrize("answer", [hangs, trickles_body, trickles_chunked_body, trickles_headers])
def test_a_slow_server_is_cut_off_at_the_deadline(model, client, answer):
    model.will(answer)
    elapsed = elapsed_until_ai_error(client)
    assert TIMEOUT - 0.05 <= elapsed < CUT_OFF


def test_the_deadline_covers_connecting():
    # A listener whose accept queue is full: the handshake of the next connection never completes.
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.connect(listener.getsockname())
        client = AiClient(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "k", "m", timeout=TIMEOUT)
        try:
            elapsed = elapsed_until_ai_error(client)
        finally:
            client.close()
    assert elapsed < CUT_OFF


def test_a_slow_answer_within_the_deadline_is_used(model, client):
    model.will(says('{"category": "travel"}', after=TIMEOUT / 2))
    assert client.categorize("hotel") == "travel"


def test_the_client_works_again_after_a_timeout(model, client):
    model.will(trickles_body, says('{"category": "housing"}'))
    elapsed_until_ai_error(client)
    assert client.categorize("rent") == "housing"


def test_a_finished_call_leaves_no_timer_to_cut_the_next_one(model):
    # Three calls on one kept-alive connection; the third (1.2 s to 2.4 s) spans the first two calls'
    # deadlines (at 2 s), and each call ends 0.8 s before its own: room for a busy machine.
    model.will(says("food"), says("food", after=1.2), says("food", after=1.2))
    client = AiClient(model.url, "k", "m", timeout=2.0)
    try:
        assert [client.categorize("coffee") for _ in range(3)] == ["food"] * 3
    finally:
        client.close()
    assert len({request["client_port"] for request in model.requests}) == 1


def test_concurrent_calls_keep_their_own_deadlines(model):
    def by_description(handler, stopped):
        description = handler.body["messages"][1]["content"]
        (trickles_body if description == "slow" else says(description, after=0.2))(handler, stopped)

    model.will(by_description)
    client = AiClient(model.url, "k", "m", timeout=TIMEOUT)
    descriptions = ["slow", "food", "travel", "slow", "health", "rent"]
    with concurrent.futures.ThreadPoolExecutor(len(descriptions)) as pool:
        outcomes = list(pool.map(lambda d: _outcome(client, d), descriptions))
    client.close()
    assert outcomes == [AiError, "food", "travel", AiError, "health", AiError]  # "rent" is no category


def _outcome(client: AiClient, description: str):
    try:
        return client.categorize(description)
    except AiError:
        return AiError


def test_an_injected_session_gets_the_deadline_for_the_ai_url_only(model):
    model.will(trickles_body)
    with requests.Session() as session:
        client = AiClient(model.url, "k", "m", timeout=TIMEOUT, session=session)
        assert elapsed_until_ai_error(client) < CUT_OFF
        assert isinstance(session.get_adapter(model.url + "/chat/completions"), ai._DeadlineAdapter)
        assert not isinstance(session.get_adapter(model.url + "/models"), ai._DeadlineAdapter)
        client.close()
        assert session.adapters  # the caller's session stays open


@pytest.mark.parametrize("answer, result", [
    (says('{"category": "travel"}'), "travel"),
    (trickles_headers, AiError),
    (trickles_body, AiError),
])
def test_https_answers_and_deadline(tls_model, trusting_session, answer, result):
    tls_model.will(answer)
    client = AiClient(tls_model.url, "k", "m", timeout=TIMEOUT, session=trusting_session)
    if result is AiError:
        assert elapsed_until_ai_error(client) < CUT_OFF
    else:
        assert client.categorize("flight") == result
    assert tls_model.requests[0]["path"] == "/v1/chat/completions"


def test_the_deadline_covers_a_tls_handshake_that_trickles(trusting_session):
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
        client = AiClient(f"https://127.0.0.1:{listener.getsockname()[1]}/v1", "k", "m", timeout=TIMEOUT,
                          session=trusting_session)
        try:
            assert elapsed_until_ai_error(client) < CUT_OFF
        finally:
            stopped.set()
            thread.join(timeout=2)


def test_rephrase_returns_the_models_text(model, client):
    model.will(says("  Nice! You spent 1200.50 USD this month.\n"))
    plain = "This month: 1200.50 USD in 3 expenses"
    assert client.rephrase(plain) == "Nice! You spent 1200.50 USD this month."
    body = model.requests[0]["json"]
    assert body["messages"][1] == {"role": "user", "content": plain}
    assert "response_format" not in body


@pytest.mark.parametrize("timeout", [0, -1, 3.01, 30])
def test_a_timeout_outside_the_contract_is_refused(timeout):
    with pytest.raises(ValueError):
        AiClient("http://127.0.0.1:1/v1", "", "m", timeout=timeout)


PLAIN = "This month: 1200.50 USD in 3 expenses\nTop: food 800.00 USD, transport 400.50 USD"
TOP = "This month: 21.50 EUR in 3 expenses\nTop: food 18.50 EUR, uncategorized 3.00 EUR"
YEN = "This month: 1500 JPY in 2 expenses\nTop: food 1200 JPY, transport 300 JPY"
LAST = "Last month: 5.00 USD in 1 expense\nTop: food 5.00 USD"
NOVEMBER = "November 2025: 5.00 USD in 1 expense\nTop: food 5.00 USD"


@pytest.mark.parametrize("plain, rephrased, faithful", [
    (PLAIN, "You spent $1,200.50 this month over 3 expenses, mostly food (800.00 USD).", True),
    (PLAIN, "Across 3 expenses this month you spent 1200.50 USD; transport took 400.50 USD.", True),
    (PLAIN, "A calm month! Food led the way.", True),               # no numbers at all
    (PLAIN, "Food came to 800 USD.", True),                        # 800 == 800.00
    (PLAIN, "You spent 1200.5 USD.", True),
    (PLAIN, "Your top one is food.", True),                        # "one" is a pronoun here
    (PLAIN, "You spent about $1,200 this month.", False),          # rounded: not the computed number
    (PLAIN, "You spent 1200.50 USD, 40.02 USD a day.", False),     # an invented average
    (PLAIN, "You spent 1200.50 USD, 67% of it on food.", False),   # an invented percentage
    (PLAIN, "Food was 800.00 USD over 4 expenses.", False),
    (PLAIN, "You spent twelve hundred dollars.", False),           # spelled-out numbers count
    (PLAIN, "Food was about half of it.", False),
    (PLAIN, "You spent 1.200,50 USD.", False),                     # another notation: not proven equal
    (PLAIN, "In ٧ expenses you spent 1200.50 USD.", False),        # non-ASCII digits count too
    (PLAIN, "In ٣ expenses you spent 1200.50 USD.", True),
    ("coffee 100 PHP", "coffee 100.00 PHP", True),
    ("coffee 100.00 PHP", "coffee 100 PHP", True),
    ("Top: food 25.00 USD", "25% went to food.", False),           # a percentage is not an amount
    ("Budget used: 25%", "You used 25 percent of the budget.", True),
    ("Refund: -5.00 USD", "You got 5.00 USD back.", False),        # the sign counts
    ("Refund: -5.00 USD", "A refund: -5.00 USD.", True),
    ("Today: 4.50 USD", "Today: 4.50 USD, see you on 2026-11-21", False),
    ("Today: 4.50 USD in 2 expenses", "Two expenses today: 4.50 USD.", False),
    ("Today: 4.50 USD in two expenses", "Two expenses today: 4.50 USD.", True),
    (PLAIN, "", False),
    (PLAIN, "   \n", False),
    ("", "No numbers here.", False),
    (PLAIN, "x" * 2000, True),
    (PLAIN, "x" * 2001, False),
    # Currency, period and category must be the summary's too: only the words may change.
    ("This month: 112.00 USD in 3 expenses", "This month: 112.00 EUR over 3 expenses.", False),
    ("This month: 112.00 USD in 3 expenses", "This month you spent €112.00.", False),
    ("This month: 112.00 USD in 3 expenses", "This month you spent 112.00 euros.", False),
    ("This month: 112.00 USD in 3 expenses", "This month you spent 112.00 dollars.", True),
    ("This month: 112.00 USD in 3 expenses", "This month you spent $112.00.", True),
    ("This month: 112.00 PHP in 3 expenses", "This month you spent $112.00.", False),
    ("This month: 112.00 PHP in 3 expenses", "This month you spent ₱112.00.", True),
    ("This month: 112.00 USD in 3 expenses", "This month you spent 112.00 US$.", True),
    ("This month: 112.00 USD in 3 expenses", "This month you spent ₨112.00.", False),
    ("This month: 112.00 PKR in 3 expenses", "This month you spent ₨112.00.", True),
    ("This month: 112.00 TWD in 3 expenses", "This month you spent 112.00元.", True),
    ("This month: 112.00 USD in 3 expenses", "This month you spent 112.00元.", False),
    ("This month: 800 JPY in 3 expenses", "This month you spent 800円.", True),
    ("This month: 112.00 USD in 3 expenses", "This week: 112.00 USD in 3 expenses.", False),
    ("This month: 112.00 USD in 3 expenses", "This year: 112.00 USD in 3 expenses.", False),
    ("This month: 112.00 USD in 3 expenses", "Today: 112.00 USD in 3 expenses.", False),
    ("This month: 112.00 USD in 3 expenses", "Monthly spend: 112.00 USD in 3 expenses.", False),
    (PLAIN, "This month: 1200.50 USD; travel 800.00 USD, transport 400.50 USD.", False),
    (PLAIN, "This month: 1200.50 USD; food 800.00 USD, transport 400.50 USD.", True),
    # Each category named beside an amount carries its own amount, not another's or the total.
    (TOP, "You spent 3.00 EUR on food and 18.50 EUR on other things.", False),
    (TOP, "You spent 3.00 EUR on food and 18.50 EUR on uncategorized things.", False),
    (TOP, "This month: food 3.00 EUR, uncategorized 18.50 EUR.", False),
    (TOP, "Food came to 3.00 EUR; uncategorized, 18.50 EUR.", False),
    (TOP, "18.50 EUR went on uncategorized things and 3.00 EUR on food.", False),
    (TOP, "Food: €3.00. Uncategorized: €18.50.", False),
    (TOP, "This month you spent 21.50 EUR on food.", False),         # the total is not food's
    (PLAIN, "Transport came to 800.00 USD and food to 400.50 USD.", False),
    (YEN, "Food was ¥300 and transport ¥1,200 of your ¥1,500 this month.", False),
    (TOP, "You spent 18.50 EUR on food and 3.00 EUR on uncategorized things.", True),
    (TOP, "Uncategorized came to 3.00 EUR and food to 18.50 EUR; 21.50 EUR this month in 3 expenses.", True),
    (TOP, "This month you spent 21.50 EUR over 3 expenses. Food took 18.50 EUR, uncategorized 3.00 EUR.", True),
    (TOP, "Food led this month at 18.50 EUR, then uncategorized at 3.00 EUR: 21.50 EUR in 3 expenses.", True),
    (TOP, "Of the 21.50 EUR you spent this month, 18.50 EUR went on food.", True),
    (TOP, "This month you spent 21.50 EUR, mostly on food (18.50 EUR).", True),
    (TOP, "Food: €18.50. Uncategorized: €3.00. Total this month: €21.50 across 3 expenses.", True),
    (YEN, "Food was ¥1,200 and transport ¥300 of your ¥1,500 this month.", True),
    (NOVEMBER, "Food in November 2025: 5.00 USD, your 1 expense.", True),
    (NOVEMBER, "In November 2025 you spent 5.00 USD on food.", True),
    # The period keeps its name: no last, next, previous or past one the summary does not name.
    (TOP, "Last month you spent 21.50 EUR in 3 expenses.", False),
    (TOP, "Over the last week you spent 21.50 EUR.", False),
    (TOP, "Next month: 21.50 EUR in 3 expenses.", False),
    (TOP, "The previous month: 21.50 EUR in 3 expenses.", False),
    (TOP, "In the past month you spent 21.50 EUR.", False),
    (TOP, "A month ago you spent 21.50 EUR.", False),
    (TOP, "Over the past months you spent 21.50 EUR.", False),
    (LAST, "This month you spent 5.00 USD, all on food.", False),
    (LAST, "In the current month you spent 5.00 USD.", False),
    (NOVEMBER, "In December 2025 you spent 5.00 USD.", False),
    (LAST, "Last month you spent 5.00 USD, all on food.", True),
    (TOP, "You may want to watch food: 18.50 EUR this month.", True),   # "may" is no month here
    ("Last 7 days: 5.00 USD in 1 expense\nTop: food 5.00 USD", "Over the last 7 days you spent 5.00 USD.", True),
])
def test_rephrasing_is_faithful(plain, rephrased, faithful):
    assert rephrasing_is_faithful(plain, rephrased) is faithful
