"""Reply latency against a Send API that takes as long as Meta's (150 ms a call): targets, not tests.

    .venv/bin/python bench/bench_replies.py            # ~15 s
    .venv/bin/python bench/bench_replies.py --delay 0.3

The real service (Service.open: its outbox, one dispatcher and a pool of senders) behind real
waitress on port 0, the demo's Send API stand-in taking `--delay` seconds a call, webhooks posted
over one keep-alive connection. A reply "starts" when the stand-in has read its request. Scenes:
  1. burst:      --people people send one expense each at once; when does the last reply start?
                 (target: within 1.5 s of the first post)
  2. one:        one person sends five expenses and "summary", one webhook each: answered in order?
  3. slow-ai:    AI on, AI_TIMEOUT=3, a model that answers after 3.5 s; person A asks for a summary,
                 person B sends "tea 3" right after: B's reply starts how long after B's post?
                 (target: < 1 s)
  4. sustained:  --messages messages from --senders people, one webhook each, as fast as one client
                 posts them: replies a second, and how long after the last post the last reply
                 starts (no target: it shows whether sending keeps up with writing).
Then the sending thread's CPU per reply (time.thread_time): a plain call, and one item of a
batch of 50, against nginx `return 200` (its own process) when nginx is installed. Exit 0 when
every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import waitress  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import harness  # noqa: E402

from expensebot import logs  # noqa: E402
from expensebot.config import Config  # noqa: E402
from expensebot.ops.demo import SendApiStandIn  # noqa: E402
from expensebot.replies.graph import GraphClient  # noqa: E402
from expensebot.service import Service  # noqa: E402

PAGE_ID = "106245718838291"
SECRET = "bench-app-secret"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay", type=float, default=0.15, help="seconds the stand-in takes per call (0.15)")
    p.add_argument("--people", type=int, default=40, help="people in the burst (40)")
    p.add_argument("--max-last-start", type=float, default=1.5, help="burst target, seconds (1.5)")
    p.add_argument("--max-other-delay", type=float, default=1.0, help="slow-ai target, seconds (1.0)")
    p.add_argument("--messages", type=int, default=2000, help="messages of the sustained scene (2000)")
    p.add_argument("--senders", type=int, default=500, help="people sending them (500)")
    p.add_argument("--cpu-calls", type=int, default=2000, help="calls timed for CPU per reply (2000)")
    return p.parse_args(argv)


class Bot:
    """The service on waitress with one keep-alive client connection for posting webhooks."""

    def __init__(self, work: Path, graph_url: str, **config):
        self.config = Config(db_path=work / f"bench-{secrets.token_hex(4)}.db", fb_app_secret=SECRET,
                             fb_verify_token="v", psid_hash_key=secrets.token_hex(16), fb_page_access_token="t",
                             fb_graph_url=graph_url, **config)
        self.service = Service.open(self.config, enrich_interval=3600)
        self.server = waitress.create_server(self.service.app, host="127.0.0.1", port=0, threads=1)
        threading.Thread(target=self.server.run, daemon=True).start()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.server.effective_port, timeout=10)

    def say(self, psid: str, text: str) -> float:
        """Post one message event; return when the post was sent (monotonic)."""
        now = int(time.time() * 1000)
        event = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now,
                 "message": {"mid": f"m_{secrets.token_hex(8)}", "text": text}}
        body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [event]}]}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        sent = time.monotonic()
        self.conn.request("POST", "/webhook", body, {"Content-Type": "application/json",
                                                     "X-Hub-Signature-256": signature})
        response = self.conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return sent

    def close(self) -> None:
        self.conn.close()
        self.server.close()
        self.service.close()


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def starts_of(graph: SendApiStandIn) -> dict[str, list[float]]:
    """When each person's replies started (the request carrying it arrived), in arrival order."""
    starts: dict[str, list[float]] = {}
    for request in graph.requests:
        if "json" in request:
            recipients = [request["json"]["recipient"]["id"]]
        else:
            recipients = [json.loads(urllib.parse.parse_qs(item["body"])["recipient"][0])["id"]
                          for item in json.loads(request["form"]["batch"])]
        for psid in recipients:
            starts.setdefault(psid, []).append(request["at"])
    return starts


def burst(work: Path, args) -> dict:
    graph = SendApiStandIn(delay=args.delay)
    bot = Bot(work, graph.url)
    try:
        first = None
        for person in range(args.people):
            sent = bot.say(f"{1000 + person}", f"coffee {person + 1}")
            first = first or sent
        acked = time.monotonic() - first
        wait_until(lambda: len(graph.delivered) >= args.people, 30)
        starts = sorted(times[0] - first for times in starts_of(graph).values())
        return {"people": args.people, "all_acked_s": round(acked, 3), "replies": len(graph.delivered),
                "calls": len(graph.requests), "median_start_s": round(statistics.median(starts), 3),
                "last_start_s": round(starts[-1], 3)}
    finally:
        bot.close()
        graph.close()


def one_person(work: Path, args) -> dict:
    graph = SendApiStandIn(delay=args.delay)
    bot = Bot(work, graph.url)
    try:
        first = bot.say("2000", "item 1")
        for i in range(2, 6):
            bot.say("2000", f"item {i}")
        bot.say("2000", "summary")
        wait_until(lambda: len(graph.delivered) >= 6, 30)
        texts = graph.texts
        in_order = ([t.split(",")[0] for t in texts[:5]] == [f"item — {i}.00 USD" for i in range(1, 6)]
                    and "15.00 USD" in texts[5])
        return {"replies": len(texts), "in_order": in_order,
                "last_start_s": round(graph.requests[-1]["at"] - first, 3)}
    finally:
        bot.close()
        graph.close()


@contextlib.contextmanager
def slow_model(after: float):
    """An OpenAI-compatible endpoint that answers `after` seconds late."""
    stop = threading.Event()

    def answer(handler):
        handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        stop.wait(after)
        body = json.dumps({"choices": [{"message": {"content": "late"}}]}).encode()
        with contextlib.suppress(OSError):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    with harness.local_server(answer) as url:
        try:
            yield f"{url}/v1"
        finally:
            stop.set()


def slow_ai(work: Path, args) -> dict:
    graph = SendApiStandIn(delay=args.delay)
    with slow_model(3.5) as model_url:
        bot = Bot(work, graph.url, ai_enabled=True, ai_url=model_url, ai_model="m", ai_timeout=3.0)
        try:
            bot.say("3000", "coffee 3")
            wait_until(lambda: len(graph.delivered) >= 1, 10)
            asked = bot.say("3000", "summary")
            other = bot.say("3001", "tea 3")
            wait_until(lambda: len(graph.delivered) >= 3, 15)
            starts = starts_of(graph)
            return {"other_delay_s": round(starts["3001"][0] - other, 3),
                    "summary_start_s": round(starts["3000"][1] - asked, 3)}
        finally:
            bot.close()
    graph.close()


def sustained(work: Path, args) -> dict:
    graph = SendApiStandIn(delay=args.delay)
    bot = Bot(work, graph.url)
    try:
        first = bot.say("5000", "coffee 3.20")
        for n in range(1, args.messages):
            last = bot.say(f"{5000 + n % args.senders}", "coffee 3.20")
        wait_until(lambda: len(graph.delivered) >= args.messages, 60)
        last_start = max(request["at"] for request in graph.requests)
        return {"messages": args.messages, "people": args.senders, "posted_s": round(last - first, 2),
                "replies": len(graph.delivered), "calls": len(graph.requests),
                "replies_per_s": round(len(graph.delivered) / (last_start - first)),
                "last_start_after_last_post_s": round(last_start - last, 3)}
    finally:
        bot.close()
        graph.close()


def cpu_per_reply(args, work: Path) -> dict:
    """The sending thread's own CPU per reply, plain calls and batches of 50, against nginx `return 200`.

    nginx runs in its own process, so the figure is the client's alone; without nginx, the
    in-process stand-in (whose threads share the GIL and inflate the figure) is used and named.
    """
    with contextlib.ExitStack() as stack:
        if shutil.which("nginx"):
            url = stack.enter_context(harness.nginx(work))
            against = "nginx"
        else:
            url, against = stack.enter_context(contextlib.closing(SendApiStandIn())).url, "stand-in"
        return {"against": against, **_cpu(args, url)}


def _cpu(args, url: str) -> dict:
    client = GraphClient(url, "t", SECRET)
    message = {"text": "coffee — 4.50 USD, today\nToday: 12.00 USD"}
    try:
        client.send_message("1", message)  # connect first
        started = time.thread_time()
        for _ in range(args.cpu_calls):
            client.send_message("1", message)
        plain = (time.thread_time() - started) / args.cpu_calls
        batch = [(str(i), message) for i in range(50)]
        rounds = max(args.cpu_calls // 50, 1)
        started = time.thread_time()
        for _ in range(rounds):
            client.send_batch(batch)
        batched = (time.thread_time() - started) / (rounds * 50)
    finally:
        client.close()
    return {"plain_call_us": round(plain * 1e6, 1), "batch_of_50_us_per_reply": round(batched * 1e6, 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    logs.configure(open("/dev/null", "w"))  # the service's JSON lines are not what is measured here
    with tempfile.TemporaryDirectory(prefix="bench-replies-") as tmp:
        work = Path(tmp)
        results = {"delay_s": args.delay, "burst": burst(work, args), "one_person": one_person(work, args),
                   "slow_ai": slow_ai(work, args), "sustained": sustained(work, args),
                   "cpu": cpu_per_reply(args, work)}
    checks = [
        ("burst: last reply starts within", results["burst"]["last_start_s"] <= args.max_last_start,
         f'{results["burst"]["last_start_s"]} s (target {args.max_last_start} s)'),
        ("burst: every reply sent", results["burst"]["replies"] == args.people,
         f'{results["burst"]["replies"]}/{args.people}'),
        ("one person: five expenses and a summary in order", results["one_person"]["in_order"],
         f'{results["one_person"]["replies"]} replies, last started {results["one_person"]["last_start_s"]} s'),
        ("slow model: another person's reply waits less than", results["slow_ai"]["other_delay_s"]
         < args.max_other_delay, f'{results["slow_ai"]["other_delay_s"]} s (target {args.max_other_delay} s)'),
    ]
    print(json.dumps(results, indent=2))
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
