"""The AI client against a real local server playing the model: answers, bad answers, and the deadline."""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest
from conftest import free_port
from test_outbound import (  # noqa: F401  (the scripted server and its answers, for the model here and elsewhere)
    CUT_OFF,
    TIMEOUT,
    StandIn,
    answers_raw,
    hangs,
    send,
    trickles_body,
    trickles_chunked_body,
    trickles_headers,
)
from test_outbound import serve as serve_scripted

from expensebot import ai
from expensebot.ai import AiClient, AiError
from expensebot.chat.rules import CATEGORIES
from expensebot.replies.faithful import rephrasing_is_faithful

ModelStandIn = StandIn  # the model: a real local server answering as scripted


def completion(content) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


def says(content, after: float = 0.0):
    def answer(handler, stopped):
        stopped.wait(after)
        send(handler, 200, completion(content))
    return answer


def serve(stand_in: ModelStandIn):
    yield from serve_scripted(stand_in, says('{"category": "food"}'))


@pytest.fixture
def model():
    yield from serve(ModelStandIn())


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
    with pytest.raises(AiError, match="no answer in time"):
        client.categorize("coffee")
    return time.monotonic() - started


@pytest.mark.parametrize("answer", [hangs, trickles_body, trickles_chunked_body, trickles_headers])
def test_a_slow_server_is_cut_off_at_the_deadline(model, client, answer):
    model.will(answer)
    elapsed = elapsed_until_ai_error(client)
    assert TIMEOUT - 0.05 <= elapsed < CUT_OFF


def test_a_slow_answer_within_the_deadline_is_used(model, client):
    model.will(says('{"category": "travel"}', after=TIMEOUT / 2))
    assert client.categorize("hotel") == "travel"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(model):
    """A client on a clock the test moves, and the clock."""
    clock = Clock()
    client = AiClient(model.url, "k", "m", timeout=TIMEOUT, clock=clock)
    yield client, clock
    client.close()


def test_the_client_works_again_after_a_timeout_once_the_model_rested(model, clocked):
    client, clock = clocked
    model.will(trickles_body, says('{"category": "housing"}'))
    elapsed_until_ai_error(client)
    with pytest.raises(AiError, match="resting"):
        client.categorize("rent")
    assert len(model.requests) == 1  # not asked while it rests
    clock.now += ai.FIRST_REST
    assert client.categorize("rent") == "housing"


@pytest.mark.parametrize("failure", [answers_raw(503, b""), answers_raw(401, b'{"error": "bad key"}'), hangs])
def test_a_model_that_fails_to_answer_rests_longer_each_time_until_it_answers(model, clocked, failure):
    client, clock = clocked
    model.will(failure)
    rests = []
    for _ in range(7):
        with pytest.raises(AiError):
            client.categorize("rent")
        rests.append(client.resting())
        clock.now += client.resting()
    assert rests == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert len(model.requests) == 7  # one call a rest, none in between
    model.will(says("housing"))
    assert client.categorize("rent") == "housing"
    model.will(failure)
    with pytest.raises(AiError):
        client.categorize("rent")
    assert client.resting() == ai.FIRST_REST  # it answered: the next rest is the first again


def test_a_model_rests_as_long_as_its_retry_after_asks(model, clocked):
    client, _ = clocked
    model.will(answers_raw(429, b"", Retry_After="30"))
    with pytest.raises(AiError, match="HTTP 429"):
        client.categorize("rent")
    assert client.resting() == 30.0


def test_a_wrong_answer_is_no_reason_to_rest(model, clocked):
    client, _ = clocked
    model.will(says("I think it is rent."), says("housing"))
    with pytest.raises(AiError):
        client.categorize("rent")
    assert client.resting() == 0.0
    assert client.categorize("rent") == "housing"


def test_calls_begun_before_a_rest_do_not_lengthen_it(model, clocked):
    client, _ = clocked

    def fails_slowly(handler, stopped):
        stopped.wait(0.3)  # both calls are in flight before either fails
        send(handler, 503, b"")

    model.will(fails_slowly)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: _outcome(client, "rent"), range(2)))
    assert outcomes == [AiError, AiError] and len(model.requests) == 2
    assert client.resting() == ai.FIRST_REST


def test_calls_on_one_kept_alive_connection_each_get_their_own_deadline(model):
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
        description = json.loads(handler.body)["messages"][1]["content"]
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
