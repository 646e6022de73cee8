"""The one way waitress is built: `serve`, the demo and the tests all run the app through make_server."""

from __future__ import annotations

import gc
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
WEBHOOK_THREADS = 4
SERVER_THREADS = report.RENDER_THREADS + WEBHOOK_THREADS
# A connection that sends nothing for this long is closed. Behind the proxy every request is
# a short local connection; without one, idle or trickling clients would each hold a socket.
CHANNEL_TIMEOUT = 30
# At most this many open connections; more wait in the kernel's accept queue. Each may buffer
# a body of up to 1 MiB before the one request thread gets to it, so this bounds that memory.
CONNECTION_LIMIT = 64


# What waitress may read beyond MAX_BODY_BYTES before answering 413 itself: the size lines and
# line ends of a chunked body (about 7 bytes a chunk: 1 MiB in chunks of 100 bytes or more).
CHUNK_FRAMING = 64 * 1024
# Collect cycles after this many allocations (Python's default: 700). A webhook's objects die by
# reference counting; at the default a collection ran every few requests, for nothing.
GC_FIRST_THRESHOLD = 20_000


def settle_memory() -> None:
    """Once started, before serving: keep the cycle collector off what start-up built.

    gc.freeze() moves every object alive now (modules, the app, its caches) to a generation no
    collection looks at again, and collections become rarer (GC_FIRST_THRESHOLD). Measured under
    wrk (bench/README.md): about 2-4% less CPU a request and half a millisecond off the p99.
    """
    gc.freeze()
    gc.set_threshold(GC_FIRST_THRESHOLD, 50, 100)


def make_server(app: bottle.Bottle, config: Config,
                sockets: list[socket.socket] | None = None) -> waitress.server.BaseWSGIServer:
    """Bind config.host:config.port (0 = any free port), or use `sockets` already listening; return the
    server, not yet running.

    Raises OSError when the address cannot be bound (in use, not ours, not permitted).
    """
    where = {"sockets": sockets} if sockets else {"host": config.host, "port": config.port}
    return waitress.create_server(
        app,
        **where,
        threads=SERVER_THREADS,
        # waitress answers 413 itself to a body of this size or more, counting a chunked body's
        # framing too; the app then refuses exactly what is over 1 MiB (app._read_body).
        max_request_body_size=webhook.MAX_BODY_BYTES + CHUNK_FRAMING,
        channel_timeout=CHANNEL_TIMEOUT,
        # Idle connections are looked for this often, so CHANNEL_TIMEOUT holds within 10 s.
        cleanup_interval=10,
        connection_limit=CONNECTION_LIMIT,
        ident="expensebot",
        # waitress can trust one proxy address, not a list: it keeps X-Forwarded-For only when
        # EXPENSEBOT_TRUSTED_PROXIES names some, and report.client_address believes the header only
        # from those. With none named no route ever sees the header.
        clear_untrusted_proxy_headers=not config.trusted_proxies,
    )


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
