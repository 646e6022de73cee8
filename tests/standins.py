"""The tests' Send API, ECB and photo CDN: the demo's stand-ins, answering as each test scripts them."""

from __future__ import annotations

import json
import random

from expensebot.ops.demo import SendApiStandIn
from expensebot.ops.ecb import EcbStandIn
from expensebot.ops import standin
from expensebot.ops.photos import PhotoStandIn


class ScriptedSendApi(SendApiStandIn):
    """A real local HTTP server playing the Send API, that misbehaves on request.

    `delay` (+ up to `jitter`) seconds per call; `error(code)` answers the next request with a Graph
    error, `throttle(retry_after)` with a plain 429; `fail_item(psid, code)` fails the next message
    to that person, inside a batch or alone; `behave("malformed" | "trickle" | "hang" | "drop")`
    answers the next request brokenly.
    """

    def __init__(self, delay: float = 0.0, jitter: float = 0.0):
        super().__init__(delay)
        self.jitter = jitter  # up to this much more, at random: calls overtake one another
        self.script: list[tuple[int, bytes, dict]] = []  # (status, body, headers) answers to give first
        self.item_errors: dict[str, list[tuple[int, int | None, str | None]]] = {}  # psid -> errors to give
        self.behaviour: list[str] = []  # broken answers to give first, in order
        # Bodies that were no RESPONSE: outside the 24-hour window Messenger takes no automated message,
        # so every reply, the monthly digest's too, answers the person's own message (the fixture checks).
        self.not_responses: list[dict] = []

    def error(self, code: int, subcode: int | None = None, status: int = 400) -> None:
        """Answer the next request with a Graph error of this code."""
        self.script.append((status, graph_error(code, subcode), {}))

    def throttle(self, retry_after: int | None = None) -> None:
        """Answer the next request with a plain HTTP 429, no Graph error object (Retry-After if given)."""
        self.script.append((429, b"", {} if retry_after is None else {"Retry-After": str(retry_after)}))

    def fail_item(self, psid: str, code: int, subcode: int | None = None, message: str | None = None) -> None:
        """Answer the next message to `psid` (a batch item or a plain call) with this Graph error."""
        with self.lock:
            self.item_errors.setdefault(psid, []).append((code, subcode, message))

    def behave(self, how: str) -> None:
        """Answer the next request brokenly: "malformed" headers, a "trickle"d body, "hang" until closed, or "drop"."""
        self.behaviour.append(how)

    def answer(self, handler, raw: bytes) -> None:
        record = self.record(handler, raw)
        with self.lock:
            how = self.behaviour.pop(0) if self.behaviour else None
            scripted = self.script.pop(0) if self.script else None
        self.closing.wait(self.delay + random.uniform(0, self.jitter))
        if how:
            return self._broken(handler, how)
        if scripted:
            return self.reply(handler, *scripted)
        self.deliver_all(handler, record)

    def deliver(self, body: dict) -> tuple[int, bytes]:
        if body.get("messaging_type") != "RESPONSE":
            with self.lock:
                self.not_responses.append(body)
            return 400, graph_error(100, None, "messaging_type must be RESPONSE")
        with self.lock:
            errors = self.item_errors.get(body["recipient"]["id"])
            failing = errors.pop(0) if errors else None
        if failing:
            code, subcode, message = failing
            return (500 if code in (1200, 2) else 400), graph_error(code, subcode, message)
        return super().deliver(body)

    def _broken(self, handler, how: str) -> None:
        if how == "malformed":  # a header line with no colon, then a continuation with nothing to continue
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nthis is not a header\r\n"
                                b" folded\r\nContent-Length: 2\r\n\r\n{}")
        elif how == "trickle":  # promises 1000 bytes, sends one every 0.2 s until the client gives up
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            try:
                while not self.closing.wait(0.2):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
            except OSError:
                pass
        elif how == "hang":  # read the request, never answer
            self.closing.wait()
        # "drop": close the connection without a word, as a server ending an idle keep-alive does
        handler.close_connection = True


def graph_error(code: int, subcode: int | None, message: str | None = None) -> bytes:
    error = {"message": message or f"(#{code}) scripted", "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return json.dumps({"error": error}).encode()


class ScriptedEcb(EcbStandIn):
    """The ECB's rate files on a real local server, that misbehaves on request.

    `behave(how)` answers the next request: "down" (503), "hang" (never), "truncated" (the file cut
    in half), "html" (an error page with status 200, as a captive portal or a CDN gives) or
    "malformed" (XML that does not parse).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.behaviour: list[str] = []

    def behave(self, how: str) -> None:
        self.behaviour.append(how)

    def answer(self, handler) -> None:
        how = self.behaviour.pop(0) if self.behaviour else None
        if how is None:
            return super().answer(handler)
        if how == "hang":
            self.closing.wait()
            return
        body, kind = self.files().get(handler.path, (b"", "text/plain"))
        status, body = {"down": (503, b"Service Unavailable"), "truncated": (200, body[:len(body) // 2]),
                        "html": (200, b"<!DOCTYPE html><html><body>Maintenance</body></html>"),
                        "malformed": (200, b"<gesmes:Envelope><Cube><Cube time='2026-12-04'>")}[how]
        standin.reply(handler, status, body, kind)


class ScriptedPhotos(PhotoStandIn):
    """Messenger's photo CDN on a real local server, with hostile answers on request.

    `redirect(location)`: a URL answered 302 to location; `endless()`: a URL whose body never ends
    (no Content-Length, 64 KB chunks until the client hangs up); `down()`: a URL answered 503.
    """

    def __init__(self):
        super().__init__()
        self.special: dict[str, tuple[str, str]] = {}

    def redirect(self, location: str) -> str:
        return self._special("redirect", location)

    def endless(self) -> str:
        return self._special("endless", "")

    def down(self) -> str:
        return self._special("down", "")

    def _special(self, how: str, argument: str) -> str:
        url = self.put(b"", f"{how}.jpg")
        self.special[url.removeprefix(self.origin)] = (how, argument)
        return url

    def answer(self, handler) -> None:
        how, argument = self.special.get(handler.path, ("", ""))
        if how == "redirect":
            return standin.reply(handler, 302, b"", headers={"Location": argument})
        if how == "down":
            return standin.reply(handler, 503, b"Service Unavailable")
        if how == "endless":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.end_headers()
            chunk = b"\xff" * 65536
            try:
                while True:
                    handler.wfile.write(chunk)
            except OSError:
                return
        return super().answer(handler)
