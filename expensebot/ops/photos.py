"""Messenger's photo CDN with no network, for the demo and the tests: a local stand-in server.

A photo sent to the Page reaches the bot as a URL on Meta's CDN. `demo --photo FILE` puts the file
here and sends its URL; the bot downloads it from here because the demo's RECEIPT_HOSTS names this
server's origin. Production downloads from RECEIPT_HOSTS (Meta's CDN hosts); only `demo` and the
tests start this server.
"""

from __future__ import annotations

import http.server
import secrets
import threading


class PhotoStandIn:
    """A local HTTP server serving the bytes put in it, each at a URL of its own; `origin` is its
    scheme, host and port (what RECEIPT_HOSTS names). Every request's path is noted in `requests`."""

    def __init__(self):
        self.photos: dict[str, bytes] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests.append(self.path)
                outer.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def put(self, data: bytes, name: str = "photo.jpg") -> str:
        """Serve data at a new URL, as the CDN does each photo; return the URL."""
        path = f"/v/t1.15752-9/{secrets.token_hex(8)}_{name}"
        self.photos[path] = data
        return self.origin + path

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        data = self.photos.get(handler.path.split("?")[0])
        if data is None:
            return self.reply(handler, 404, b"not found")
        self.reply(handler, 200, data, "image/jpeg")

    @staticmethod
    def reply(handler, status: int, body: bytes, content_type: str = "text/plain", headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
