"""The benchmarks judge the speed targets: their own arithmetic and inputs are tested here.

(wrk itself is not needed: these are the parts that run without it.)
"""

from __future__ import annotations

import json
import random
import sys

import pytest
from conftest import ROOT

from expensebot.ingest import webhook
from expensebot.outbound import Client, OutboundError

sys.path.insert(0, str(ROOT / "bench"))
import ai_outage  # noqa: E402
import bench_ingest  # noqa: E402
import cpu_per_message  # noqa: E402
import reply_rate  # noqa: E402


def test_generated_bodies_are_signed_like_meta_and_every_mid_is_distinct(tmp_path):
    rng = random.Random(7)
    senders = bench_ingest.make_senders(rng, 5)
    path = tmp_path / "bodies.txt"
    events = bench_ingest.write_bodies(path, "s3cret", rng, senders, n_bodies=30, per_body=3, mid_prefix="t")
    lines = path.read_text().splitlines()
    assert events == 90 and len(lines) == 30
    mids = []
    for line in lines:
        signature, body = line.split("\t")
        assert webhook.verify_signature("s3cret", body.encode(), signature)
        assert not webhook.verify_signature("other", body.encode(), signature)
        payload = json.loads(body)
        for event in payload["entry"][0]["messaging"]:
            assert event["sender"]["id"] in senders
            mids.append(event["message"]["mid"])
    assert len(set(mids)) == 90


def test_rows_must_cover_every_2xx_and_only_in_flight_requests_may_add_more():
    result = {"status_2xx": 100, "status_non2xx": 0, "sent": 103, "rows": 100}
    assert bench_ingest.rows_check(result, 1)[0]
    assert bench_ingest.rows_check({**result, "rows": 103}, 1)[0]      # committed, answer not read
    assert not bench_ingest.rows_check({**result, "rows": 99}, 1)[0]   # an acknowledged event lost
    assert not bench_ingest.rows_check({**result, "rows": 104}, 1)[0]  # more rows than could exist
    assert bench_ingest.rows_check({**result, "rows": 10_300}, 100)[0]


def test_the_median_round_is_chosen_by_ratio():
    rounds = [({"requests_per_s": 1000}, {"requests_per_s": r}, None) for r in (300, 100, 200)]
    assert bench_ingest.median_round(rounds)[1]["requests_per_s"] == 200


def test_a_raw_psid_in_a_log_is_found(tmp_path):
    log = tmp_path / "server.log"
    log.write_text('{"event": "event_logged", "psid_hash": "ab"}\n{"oops": "1234567890123456"}\n')
    assert bench_ingest.raw_psids_in_log(log, ["1234567890123456", "6543210987654321"]) == 1


def test_cpu_per_message_runs_the_real_service_and_counts_every_reply(capsys):
    assert cpu_per_message.main(["--messages", "30", "--warmup", "5"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (figures["replies"], figures["messages"], figures["all_replied"]) == ("logged", 30, True)
    assert figures["whole_process_us"] >= figures["request_thread_us"] > 0


def test_cpu_per_message_refuses_bodies_that_do_not_divide_the_messages():
    with pytest.raises(SystemExit):
        cpu_per_message.main(["--messages", "30", "--warmup", "5", "--per-body", "20"])


def test_reply_rate_counts_replies_in_batches_not_requests():
    # 40 messages from 20 people queued at once: the outbox sends them as Graph batches, so there
    # are fewer requests than replies, and every reply is counted, none dropped.
    figures = reply_rate.run(40, 20, 0.0, per_delivery=40)
    assert (figures["replies"], figures["dropped"], figures["failed"]) == (40, 0, 0)
    assert 2 <= figures["posts"] < 40
    assert figures["send_rate"] > 0


def test_reply_rate_sends_one_persons_replies_one_request_each():
    figures = reply_rate.run(5, 1, 0.0)
    assert (figures["replies"], figures["posts"], figures["send_rate"]) == (5, 5, None)


@pytest.mark.parametrize("how, outcome", [("hang", "no answer in time"), ("refused", "request failed"),
                                          ("503", "HTTP 503")])
def test_the_outage_benchmarks_models_are_down_as_named(how, outcome):
    client = Client()
    try:
        with ai_outage.model_down(how) as url:
            with pytest.raises(OutboundError, match=outcome):
                client.request("POST", f"{url}/chat/completions", timeout=0.5, json={"model": "m"})
    finally:
        client.close()
