"""The AI model behind enrichment: an OpenAI-compatible chat client over the outbound client.

Each call ends within AI_TIMEOUT (connect, send, headers and body together) whatever the model
does: outbound.py's deadline. A model that fails to answer (no answer, refused, an HTTP error) is
left to rest, 1 s after the first failure and twice as long after each next one, up to a minute
(or as long as its Retry-After asks): meanwhile calls fail at once, without a request, and the
enricher takes no jobs. A model that is down thus costs the bot one call a rest, not one or three
calls a message. The model words things, it never counts (replies/faithful.py).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable

from expensebot import outbound
from expensebot.chat.rules import CATEGORIES

MAX_TIMEOUT = 3.0
MAX_ANSWER_BYTES = 256 * 1024
FIRST_REST = 1.0  # seconds the model rests after failing to answer; doubled at each failure after a rest
MAX_REST = 60.0

CATEGORIZE_PROMPT = (
    "You sort personal expenses into categories. Answer with a JSON object "
    '{"category": "<one of: ' + ", ".join(CATEGORIES) + '>"} and nothing else.'
)
REPHRASE_PROMPT = (
    "Rewrite this expense summary for a chat message, friendlier and short. Keep every number exactly "
    "as written; add no numbers, percentages or calculations of your own. Answer with the text only."
)
RECEIPT_PROMPT = (
    "You read the text of a shop receipt as OCR gave it, line by line. Answer with a JSON object "
    '{"merchant": "<the shop>", "total": "<the amount paid, exactly as printed>", "date": "<YYYY-MM-DD>", '
    '"currency": "<ISO 4217 code>"} and nothing else; null for what the text does not say.'
)


class AiError(Exception):
    """The model gave no usable answer in time: timeout, connection or HTTP error, bad answer."""


class AiClient:
    """POST {base_url}/chat/completions, each call within `timeout` s; `http`: the outbound client (else its own)."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float, *,
                 http: outbound.Client | None = None, clock: Callable[[], float] = time.monotonic):
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT} seconds")
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model = model
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or outbound.Client()
        self._owns_http = http is None
        self.clock = clock
        self._lock = threading.Lock()
        self._rest = 0.0  # the length of the latest rest; 0 once the model answered
        self._rest_until = -math.inf

    def close(self) -> None:
        """Close the outbound client if this one made it."""
        if self._owns_http:
            self._http.close()

    def resting(self) -> float:
        """Seconds until the model is asked again after failing to answer; 0.0 when it may be asked now."""
        return max(self._rest_until - self.clock(), 0.0)

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
        """Ask for one category from CATEGORIES: {"category": "<known>"} or a bare known word; raise AiError."""
        content = self.complete(CATEGORIZE_PROMPT, description, json_object=True)
        answer = content if content.strip().lower() in CATEGORIES else _parse_json(content)
        if isinstance(answer, dict):
            answer = answer.get("category")
        if not isinstance(answer, str):
            raise AiError('answer is not {"category": "<name>"}')
        category = answer.strip().lower()
        if category not in CATEGORIES:
            raise AiError("answer names an unknown category")
        return category

    def read_receipt(self, text: str) -> dict:
        """Ask for a receipt's fields from its OCR text; raise AiError. The caller checks each against the text."""
        answer = _parse_json(self.complete(RECEIPT_PROMPT, text, json_object=True))
        if not isinstance(answer, dict):
            raise AiError("answer is not a JSON object")
        return answer

    def rephrase(self, plain_summary: str) -> str:
        """Ask for a friendlier wording of a computed summary (rephrasing_is_faithful judges it)."""
        return self.complete(REPHRASE_PROMPT, plain_summary).strip()

    def _post(self, body: dict) -> bytes:
        if wait := self.resting():
            raise AiError(f"model resting for {wait:.1f} s after failing to answer")
        try:
            data = self._http.request("POST", self.url, timeout=self.timeout, json=body, headers=self._headers,
                                      max_bytes=MAX_ANSWER_BYTES)
        except outbound.OutboundError as exc:
            with self._lock:
                now = self.clock()
                if now >= self._rest_until:  # else a call begun before the rest: the rest stands as it is
                    self._rest = min(max(2 * self._rest, FIRST_REST), MAX_REST)
                    self._rest_until = now + max(self._rest, min(exc.retry_after or 0.0, MAX_REST))
            raise AiError(str(exc)) from None
        self._rest = 0.0
        return data


def _parse_json(data: str | bytes):
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
        raise AiError("answer is not JSON") from None
