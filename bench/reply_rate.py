"""Replies a second: N messages through the real Service to a local Send API stand-in that takes --latency s.

    .venv/bin/python bench/reply_rate.py --messages 300 --latency 0.2
Replies go out one at a time in commit order (replies.py), so with Meta's real 100-300 ms per
send the reply rate is about 1 / latency; the figure for docs/SCALING.md.
"""
import argparse
import datetime as dt
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot.config import Config  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.service import Service  # noqa: E402
from expensebot.webhook import Message  # noqa: E402


def stand_in(latency: float, received: list, done: threading.Event, wanted: int):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(latency)
            body = json.dumps({"recipient_id": "1", "message_id": "m"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            received.append(time.monotonic())
            if len(received) >= wanted:
                done.set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--latency", type=float, default=0.2)
    args = p.parse_args()
    received, done = [], threading.Event()
    server = stand_in(args.latency, received, done, args.messages)
    key = "reply-rate-key-0123456789"
    hasher = PsidHasher(key)
    with tempfile.TemporaryDirectory() as folder:
        config = Config(db_path=Path(folder) / "r.db", fb_app_secret="x" * 32, fb_verify_token="v" * 16,
                        psid_hash_key=key, fb_page_access_token="token-0123456789",
                        fb_graph_url=f"http://127.0.0.1:{server.server_address[1]}/v25.0")
        service = Service.open(config)
        began = time.monotonic()
        now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
        for n in range(args.messages):
            psid = str(10**15 + n % 100)
            message = Message(hasher(psid), f"m_rate_{n}", "message", "coffee 3.20", now, now, "{}")
            service.outbox.addresses.remember({hasher(psid): psid})
            service.ingest.accept([message])
        accepted = time.monotonic() - began
        done.wait(timeout=args.messages * (args.latency + 0.5) + 30)
        took = (received[-1] if received else time.monotonic()) - began
        service.close()
    server.shutdown()
    print(json.dumps({"messages": args.messages, "latency": args.latency, "replies": len(received),
                      "accept_seconds": round(accepted, 2), "seconds": round(took, 2),
                      "replies_per_second": round(len(received) / took, 1)}))


if __name__ == "__main__":
    main()
