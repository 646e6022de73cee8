"""Invariant 4 end to end: after real traffic, no raw PSID or secret in the database, WAL, spool or logs."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
import requests
from conftest import (
    APP_SECRET,
    HASH_KEY,
    OPS_TOKEN,
    PAYLOADS,
    VERIFY_TOKEN,
    delivery,
    message_event,
    psid_hash,
    wait_for,
)
from test_ai import ModelStandIn, serve

from expensebot.ingest import webhook

SYNTHETIC_PSIDS = ["7000000000000001", "7000000000000002", "24658871334673719"]
SPOOLED_PSID = "7000000000000099"


def post(url: str, body: bytes) -> int:
    return requests.post(f"{url}/webhook", data=body, timeout=5,
                         headers={"X-Hub-Signature-256": webhook.sign(APP_SECRET, body)}).status_code


def payload_psids() -> set[str]:
    """Every sender and recipient id in the real payloads that is a person (not the Page)."""
    ids = set()
    for path in PAYLOADS.glob("*.json"):
        text = path.read_text()
        ids.update(re.findall(r'"(?:sender|recipient)"\s*:\s*\{\s*"id"\s*:\s*"?(\d{12,})', text))
    pages = set(re.findall(r'"id"\s*:\s*"?(\d{12,})"?\s*,\s*"time"', "".join(p.read_text() for p in PAYLOADS.glob("*.json"))))
    return ids - pages


PAGE_TOKEN, AI_KEY = "audit-page-access-token", "audit-ai-api-key"


@pytest.fixture
def categorizing_model():
    yield from serve(ModelStandIn())  # answers {"category": "food"}


def test_no_raw_psid_or_secret_anywhere_after_real_traffic(tmp_path, server_process, graph, categorizing_model):
    server = server_process(FB_PAGE_ACCESS_TOKEN=PAGE_TOKEN, FB_GRAPH_URL=graph.url, AI_ENABLED="true",
                            AI_URL=categorizing_model.url, AI_MODEL="m", AI_API_KEY=AI_KEY)
    for path in sorted(PAYLOADS.glob("*.json")):
        raw = path.read_bytes()
        body = json.dumps({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [json.loads(raw)]}]}).encode() \
            if path.name.endswith("_event.json") else raw
        assert post(server.url, body) == 200
    for n, psid in enumerate(SYNTHETIC_PSIDS):
        assert post(server.url, json.dumps(delivery(message_event(psid, f"m_{n}", "gizmo 3"))).encode()) == 200
    assert post(server.url, b"not json") == 400

    # A spooled event: the spool file must hold the hash too.
    db_path = tmp_path / "expensebot.db"
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        assert post(server.url, json.dumps(delivery(message_event(SPOOLED_PSID, "m_spool", "tea 1"))).encode()) == 200
        spooled = b"".join(p.read_bytes() for p in (tmp_path / "expensebot.db.spool").glob("*.jsonl"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert wait_for(lambda: b"m_spool" in db_path.read_bytes() + _read(tmp_path / "expensebot.db-wal"), 30)
    # Let replies and enrichment happen, so their logs are audited too.
    assert wait_for(lambda: len(graph.requests) >= len(SYNTHETIC_PSIDS) and bool(categorizing_model.requests), 30)
    wal = _read(tmp_path / "expensebot.db-wal")
    server.stop()
    assert graph.requests and categorizing_model.requests

    stores = {"database": db_path.read_bytes(), "wal": wal, "spool": spooled,
              "logs": server.log_path.read_bytes()}
    psids = payload_psids() | set(SYNTHETIC_PSIDS) | {SPOOLED_PSID}
    assert len(psids) >= 10
    for name, content in stores.items():
        for psid in psids:
            assert psid.encode() not in content, f"raw PSID {psid} found in {name}"
        for secret in (APP_SECRET, HASH_KEY, OPS_TOKEN, VERIFY_TOKEN, PAGE_TOKEN, AI_KEY):
            assert secret.encode() not in content, f"a secret found in {name}"

    # The audit can fail: the hashes it replaced are there.
    assert psid_hash(SPOOLED_PSID).encode() in spooled
    assert psid_hash(SYNTHETIC_PSIDS[0]).encode() in stores["logs"]
    assert psid_hash(SYNTHETIC_PSIDS[0]).encode() in stores["database"] + wal


def _read(path) -> bytes:
    return path.read_bytes() if path.exists() else b""
