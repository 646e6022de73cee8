"""The one way waitress is built: `serve`, the demo and the tests all run the app through make_server."""

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

# Report pages hold at most report.RENDER_THREADS request threads (drawing, or waiting a moment
# for a turn), however many people reload them: the others are always there for a signed webhook.
# Two are enough: a webhook takes milliseconds, writes take turns on one lock anyway, and every
# thread more takes turns on Python's lock too (bench/bench_throughput.py: with 12 threads, fewer
# webhooks a second than with 6).
WEBHOOK_THREADS = 2
SERVER_THREADS = report.RENDER_THREADS + WEBHOOK_THREADS
# Open connections at once; more wait in the kernel's accept queue. A connection gets a request
# thread only once its request is whole, and an idle one costs waitress about 4 KB, so room for
# a thousand means that 64 slow clients, or 200 idle keep-alive ones, never keep a webhook out.
CONNECTION_LIMIT = 1000


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
        # waitress answers 413 itself to a body this size or more, counting a chunked body's framing
        # too (about 7 bytes a chunk: 64 KiB covers 1 MiB in chunks of 100 bytes or more); the app
        # then refuses exactly what is over 1 MiB (app._read_body).
        max_request_body_size=webhook.MAX_BODY_BYTES + 64 * 1024,
        # What one unfinished request may hold in memory, so a thousand of them hold at most ~100 MB:
        # its header (nginx's own default limit is 32 KB as well; Meta's headers are about 1 KB), and
        # the part of its body kept in memory (the rest of a body up to 1 MiB waits in a temporary file).
        max_request_header_size=32 * 1024,
        inbuf_overflow=64 * 1024,
        # A connection that sends nothing at all for 10 s, between requests or inside one, is closed
        # (looked at every 2 s), so an idle keep-alive client gives its place back. A client that
        # trickles a byte now and then stays: connection_limit keeps such clients from filling the server.
        channel_timeout=10,
        cleanup_interval=2,
        connection_limit=CONNECTION_LIMIT,
        # select() cannot watch a descriptor numbered 1024 or more, and CONNECTION_LIMIT
        # connections take more than that; poll() has no such bound.
        asyncore_use_poll=True,
        ident="expensebot",
        # waitress can trust one proxy address, not a list: it keeps X-Forwarded-For only when
        # EXPENSEBOT_TRUSTED_PROXIES names some, and report.client_address believes the header only
        # from those. With none named no route ever sees the header.
        clear_untrusted_proxy_headers=not config.trusted_proxies,
    )


def allow_open_files(wanted: int) -> None:
    """Raise this process' soft limit of open files to `wanted`, or as far as its hard limit allows.

    The soft limit (often 1024, systemd's default) is kept low for programs that use select(); the
    hard limit (systemd: 524288) is what a program using poll() may ask for. At the soft limit,
    accept() fails and waitress would try again and again, logging each time.
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
