"""What the demo's and the tests' stand-ins for other servers (the ECB, Messenger's photo CDN) share."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable


def serve_gets(answer: Callable[[http.server.BaseHTTPRequestHandler], None],
               requests: list[str]) -> http.server.ThreadingHTTPServer:
    """A local HTTP/1.1 server on a free port, answering each GET with `answer(handler)` on a thread of
    its own and noting each path in `requests`; started, its owner shuts it down."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            requests.append(self.path)
            answer(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "text/plain",
          headers: dict | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
