"""Replies a second: N messages from P people through the real Service to a Send API stand-in taking --latency s.

    .venv/bin/python bench/reply_rate.py --messages 2000 --people 500 --latency 0.2
    .venv/bin/python bench/reply_rate.py --messages 200 --people 1 --latency 0.2

Each message goes the webhook's way after its signature check: its sender's PSID remembered in
`outbox.Addresses`, then `Ingest.accept` (one delivery per message). The outbox sends each
person's replies in commit order, different people in parallel (8 senders), and several
people's replies as one Graph batch request of up to 50; so a reply is counted when the stand-in
(expensebot.demo.SendApiStandIn, which answers batch items as Graph does) accepts it, whether it
came alone or as a batch item. `posts` is the HTTP requests that carried them.

`replies_per_second` is replies / (last reply - first accept); while messages come one per
delivery it is bounded by how fast this one thread writes them, so `drain_seconds` (last reply -
last accept) says how far sending lagged behind. `--per-delivery N` writes N messages per
transaction: with N = --messages every reply is queued at once, and `send_rate` (replies /
drain_seconds) is the outbox's own (null otherwise). A person's queue holds 50 replies (outbox.MAX_PER_PERSON):
more from one person at once are dropped, and counted in `dropped`.
"""
import argparse
import collections
import datetime as dt
import json
import logging
import queue
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expensebot.config import Config  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.events import Message  # noqa: E402
from expensebot.ops.demo import SendApiStandIn  # noqa: E402
from expensebot.service import Service  # noqa: E402


class Counter(logging.Handler):
    """Counts the outbox's warning lines (reply_dropped, reply_failed) by event."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.events = collections.Counter()

    def emit(self, record):
        self.events[record.msg] += 1


def run(messages: int, people: int, latency: float, per_delivery: int = 1) -> dict:
    counter = Counter()
    logging.getLogger().addHandler(counter)
    stand_in = SendApiStandIn(delay=latency)
    key = "reply-rate-key-0123456789"
    hasher = PsidHasher(key)
    replies, last = 0, None
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = Config(db_path=Path(folder) / "r.db", fb_app_secret="x" * 32, fb_verify_token="v" * 16,
                            psid_hash_key=key, fb_page_access_token="token-0123456789", fb_graph_url=stand_in.url)
            service = Service.open(config)
            try:
                began = time.monotonic()
                now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
                for start in range(0, messages, per_delivery):
                    delivery, senders = [], {}
                    for n in range(start, min(start + per_delivery, messages)):
                        psid = str(10**15 + n % people)
                        senders[hasher(psid)] = psid
                        delivery.append(Message(hasher(psid), f"m_rate_{n}", "message", "coffee 3.20", now, now, "{}"))
                    service.outbox.addresses.remember(senders)  # as the webhook does, before accept
                    service.ingest.accept(delivery)
                accepted = time.monotonic() - began
                deadline = began + messages * (latency + 0.5) / min(people, 8) + 60
                while replies + counter.events["reply_dropped"] + counter.events["reply_failed"] < messages:
                    try:
                        stand_in.sent.get(timeout=min(max(deadline - time.monotonic(), 0.0), 1.0))
                    except queue.Empty:
                        if time.monotonic() < deadline:
                            continue
                        break
                    replies += 1
                    last = time.monotonic()
                took = (last or time.monotonic()) - began
            finally:
                service.close()
        with stand_in.lock:
            posts = sum(1 for r in stand_in.requests if r["method"] == "POST")
    finally:
        stand_in.close()
        logging.getLogger().removeHandler(counter)
    drain = max(took - accepted, 1e-9)
    return {"messages": messages, "people": people, "per_delivery": per_delivery, "latency": latency,
            "replies": replies, "dropped": counter.events["reply_dropped"], "failed": counter.events["reply_failed"],
            "posts": posts, "replies_per_post": round(replies / posts, 1) if posts else None,
            "accept_seconds": round(accepted, 2), "seconds": round(took, 2), "drain_seconds": round(drain, 2),
            "replies_per_second": round(replies / took, 1),
            "send_rate": round(replies / drain, 1) if per_delivery >= messages else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--people", type=int, default=500, help="senders, taking turns (1: one person's replies, in order)")
    p.add_argument("--per-delivery", type=int, default=1, help="messages per Ingest.accept (one transaction)")
    p.add_argument("--latency", type=float, default=0.2, help="seconds the stand-in takes per HTTP request")
    args = p.parse_args()
    if args.messages < 1 or not 1 <= args.people <= args.messages or args.per_delivery < 1 or args.latency < 0:
        p.error("need --messages >= 1, 1 <= --people <= --messages, --per-delivery >= 1, --latency >= 0")
    print(json.dumps(run(args.messages, args.people, args.latency, args.per_delivery)))


if __name__ == "__main__":
    main()
