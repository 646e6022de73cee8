"""Bottle's hello world on waitress: bench_throughput.py's `hello`, what the machine does with no work at all.

    python bench/hello_app.py PORT
"""
import logging
import sys

import bottle
import waitress


def create_app() -> bottle.Bottle:
    """Build an app that reads the webhook body and acknowledges it, doing nothing else."""
    app = bottle.Bottle()

    @app.post("/webhook")
    def webhook():
        bottle.request.body.read()
        return "EVENT_RECEIVED"

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    return app


if __name__ == "__main__":
    # waitress warns "Task queue depth is N" on stderr whenever requests queue: under load that
    # floods stderr and costs the reference about 10 % of its throughput.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress.serve(create_app(), host="127.0.0.1", port=int(sys.argv[1]), threads=4)
