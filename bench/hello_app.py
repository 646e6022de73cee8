"""Bottle hello-world on waitress: the baseline the ingest benchmark is compared with.

Usage: python bench/hello_app.py PORT
"""
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
    waitress.serve(create_app(), host="127.0.0.1", port=int(sys.argv[1]), threads=4)
