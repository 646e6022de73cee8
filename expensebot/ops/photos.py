"""Messenger's photo CDN with no network, for the demo and the tests: a local stand-in server.

A photo sent to the Page reaches the bot as a URL on Meta's CDN. `demo --photo FILE` puts the file
here and sends its URL; the bot downloads it from here because the demo's RECEIPT_HOSTS names this
server's origin. Production downloads from RECEIPT_HOSTS (Meta's CDN hosts); only `demo` and the
tests start this server.
"""

from __future__ import annotations

import http.server
import secrets

from expensebot.ops import standin


class PhotoStandIn:
    """A local HTTP server serving the bytes put in it, each at a URL of its own; `origin` is its
    scheme, host and port (what RECEIPT_HOSTS names). Every request's path is noted in `requests`."""

    def __init__(self):
        self.photos: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.server = standin.serve_gets(self.answer, self.requests)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def put(self, data: bytes, name: str = "photo.jpg") -> str:
        """Serve data at a new URL, as the CDN does each photo; return the URL."""
        path = f"/v/t1.15752-9/{secrets.token_hex(8)}_{name}"
        self.photos[path] = data
        return self.origin + path

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        data = self.photos.get(handler.path.split("?")[0])
        if data is None:
            return standin.reply(handler, 404, b"not found")
        standin.reply(handler, 200, data, "image/jpeg")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
