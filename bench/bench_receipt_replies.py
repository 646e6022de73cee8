#!/usr/bin/env python3
"""Text replies while receipt photos are read: as fast as without them?

    .venv/bin/python bench/bench_receipt_replies.py              # ~1 min; needs the receipts extra
    .venv/bin/python bench/bench_receipt_replies.py --photos 6   # shorter

The real Service on real waitress (port 0), the demo's Send API stand-in answering in 150 ms (as
Meta does), and the stand-in for Messenger's photo CDN serving generated receipts
(tests/receipt_images.py). One person texts "tea 3", waits for the reply to reach the Send API, and
texts again 50 ms later: first with nothing else going on, then right after --photos other people
have each sent a photo, while the bot reads them one at a time. Printed: each phase's reply times
(post to the reply's arrival at the Send API: median, p95, max), the photos' reading, and the
process' memory (peak RSS before the first photo and at the end). Target: the
median and p95 while photos are read within 1.5x of the idle figures (this shared machine's noise).
Exit 0 when met, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from receipt_images import make_receipt  # noqa: E402

from expensebot.config import Config  # noqa: E402
from expensebot.ingest import webhook  # noqa: E402
from expensebot.ops.demo import SendApiStandIn  # noqa: E402
from expensebot.ops.photos import PhotoStandIn  # noqa: E402
from expensebot.receipts import ocr  # noqa: E402
from expensebot.service import Service  # noqa: E402
from expensebot.web.server import make_server  # noqa: E402
from expensebot.web.server import stop as stop_server  # noqa: E402

SECRET = "bench-app-secret"


class Bot:
    def __init__(self, db_path: Path):
        self.graph = SendApiStandIn(delay=0.15)
        self.photos = PhotoStandIn()
        self.config = Config(db_path=db_path, port=0, fb_app_secret=SECRET, fb_verify_token="v" * 16,
                             psid_hash_key="k" * 32, fb_page_access_token="t" * 16, fb_graph_url=self.graph.url,
                             rates_url="off", receipt_hosts=(self.photos.origin,))
        self.service = Service.open(self.config)
        self.server = make_server(self.service.app, self.config)
        threading.Thread(target=self.server.run, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.effective_port}/webhook"
        self.session = requests.Session()
        self.sent = 0

    def post(self, psid: str, message: dict) -> str:
        self.sent += 1
        mid = f"m_{psid}_{self.sent}"
        ms = int(time.time() * 1000)
        event = {"sender": {"id": psid}, "recipient": {"id": "1"}, "timestamp": ms, "message": {"mid": mid, **message}}
        body = json.dumps({"object": "page", "entry": [{"id": "1", "time": ms, "messaging": [event]}]}).encode()
        answer = self.session.post(self.url, data=body, timeout=30, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(SECRET, body)})
        if answer.status_code != 200:
            raise SystemExit(f"webhook answered {answer.status_code}")
        return mid

    def text_reply_time(self) -> float:
        """Post "tea 3"; seconds until its reply reached the Send API stand-in."""
        before = sum(1 for text in self.graph.texts if text.startswith("tea"))
        started = time.perf_counter()
        self.post("999999", {"text": "tea 3"})
        while sum(1 for text in self.graph.texts if text.startswith("tea")) == before:
            time.sleep(0.001)
        return time.perf_counter() - started

    def waiting_photos(self) -> int:
        with self.service.db.connection() as conn:
            return conn.execute("SELECT count(*) FROM receipt_drafts WHERE status = 'pending'").fetchone()[0]

    def close(self) -> None:
        stop_server(self.server)
        self.service.close()
        self.graph.close()
        self.photos.close()


def replies(bot: Bot, count: int, until=lambda: False) -> list[float]:
    times = []
    while len(times) < count and not until():
        times.append(bot.text_reply_time())
        time.sleep(0.05)
    return times


def describe(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (f"{len(ms)} replies, median {statistics.median(ms):.0f} ms, p95 {ms[int(len(ms) * 0.95)]:.0f} ms, "
            f"max {ms[-1]:.0f} ms")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=12)
    args = p.parse_args(argv)
    if not ocr.available():
        raise SystemExit("the receipts extra is not installed: .venv/bin/pip install -e '.[receipts]'")
    with tempfile.TemporaryDirectory(prefix="bench-receipts-") as tmp:
        bot = Bot(Path(tmp) / "bench.db")
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        try:
            bot.post("1", {"attachments": [{"type": "image", "payload": {"url": bot.photos.put(make_receipt(0).image)}}]})
            while bot.waiting_photos():  # the engine loaded once, before anything is timed
                time.sleep(0.05)
            idle = replies(bot, 60)
            images = [make_receipt(seed).image for seed in range(1, args.photos + 1)]
            started = time.perf_counter()
            for n, image in enumerate(images):
                bot.post(str(100 + n), {"attachments": [{"type": "image", "payload": {"url": bot.photos.put(image)}}]})
            reading = replies(bot, 10_000, until=lambda: bot.waiting_photos() == 0)
            seconds = time.perf_counter() - started
        finally:
            bot.close()
    print(f"text replies, nothing else going on:         {describe(idle)}")
    print(f"text replies while {args.photos} photos are read: {describe(reading)}")
    print(f"the {args.photos} photos read in {seconds:.1f} s ({seconds / args.photos:.2f} s each, one at a time)")
    print(f"the process' peak memory (RSS): {before_mb:.0f} MB before the first photo, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB at the end")
    p95 = lambda times: sorted(times)[int(len(times) * 0.95)]  # noqa: E731
    median_ratio = statistics.median(reading) / statistics.median(idle)
    p95_ratio = p95(reading) / p95(idle)
    met = median_ratio <= 1.5 and p95_ratio <= 1.5
    print(f"{'PASS' if met else 'FAIL'}  text replies as fast while photos are read: median {median_ratio:.2f}x, "
          f"p95 {p95_ratio:.2f}x (target <= 1.5x)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
