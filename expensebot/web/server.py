"""The one way waitress is built: `serve`, the demo and the tests all run the app through make_server.

Why each setting has its value: docs/OPERATIONS.md, "How the server is set up, and why".
"""

from __future__ import annotations

import resource
import socket
import threading

import bottle
import waitress
import waitress.server

from expensebot.config import Config
from expensebot.ingest import webhook
from expensebot.web import report

# Report pages hold at most report.RENDER_THREADS request threads, so these are always free for a webhook.
WEBHOOK_THREADS = 2
SERVER_THREADS = report.RENDER_THREADS + WEBHOOK_THREADS
CONNECTION_LIMIT = 1000  # open connections at once; more wait in the kernel's accept queue


def make_server(app: bottle.Bottle, config: Config,
                sockets: list[socket.socket] | None = None) -> waitress.server.BaseWSGIServer:
    """Bind config.host:config.port (0 = any free port), or use `sockets` already listening; return the
    server, not yet running.

    Raises OSError when the address cannot be bound (in use, not ours, not permitted).
    """
    allow_open_files(4 * CONNECTION_LIMIT)  # a connection's socket, its temporary files, and the rest
    where = {"sockets": sockets} if sockets else {"host": config.host, "port": config.port}
    return waitress.create_server(
        app,
        **where,
        threads=SERVER_THREADS,
        # waitress counts a chunked body's framing too (about 7 bytes a chunk); the app then refuses
        # exactly what is over 1 MiB (app._read_body).
        max_request_body_size=webhook.MAX_BODY_BYTES + 64 * 1024,
        max_request_header_size=32 * 1024,
        inbuf_overflow=64 * 1024,
        channel_timeout=10,
        cleanup_interval=2,
        connection_limit=CONNECTION_LIMIT,
        asyncore_use_poll=True,  # select() cannot watch a descriptor numbered 1024 or more
        ident="expensebot",
        # waitress can trust one proxy address, not a list: with proxies named it keeps X-Forwarded-For
        # and report.client_address decides; with none named no route ever sees the header.
        clear_untrusted_proxy_headers=not config.trusted_proxies,
    )


def allow_open_files(wanted: int) -> None:
    """Raise this process' soft limit of open files to `wanted`, or as far as its hard limit allows.

    At the soft limit (often 1024), accept() fails and waitress would try again and again, logging each time.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def stop(server: waitress.server.BaseWSGIServer, timeout: float = 5.0) -> None:
    """Stop a server whose run() loops in another thread, and end its request threads.

    The loop itself closes the connections and takes the listening socket and its trigger out of
    its map, so run() returns; closing sockets from here instead races its select(), which then
    fails on a closed descriptor. Those two are closed here, once the trigger's pull is written.
    """
    dropped = threading.Event()

    def drop_all() -> None:
        for dispatcher in list(server._map.values()):
            if dispatcher in (server, server.trigger):
                dispatcher.del_channel()
            else:
                dispatcher.close()
        dropped.set()
    server.trigger.pull_trigger(drop_all)
    dropped.wait(timeout)
    server.close()
    server.task_dispatcher.shutdown(timeout=timeout)
