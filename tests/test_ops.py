"""GET /healthz and the /ops routes behind the ops bearer token."""

from __future__ import annotations

import pytest
from conftest import OPS_TOKEN, Client, delivery, make_config, message_event, psid_hash

from expensebot import __version__


def test_healthz_reports_ok_and_spool_depth_without_personal_data(client):
    client.post_webhook(delivery(message_event("111", "m_1")))
    response = client.get("/healthz")
    assert response.status == 200
    assert response.json() == {"status": "ok", "spool_depth": 0, "version": __version__}


def test_healthz_is_503_when_the_database_does_not_answer(service, client):
    service.config.db_path.unlink()
    service.config.db_path.mkdir()  # a directory where the file was: nothing can open it
    response = client.get("/healthz")
    assert response.status == 503
    assert response.json()["status"] == "unavailable"


@pytest.mark.parametrize("path", ["/ops/stats", f"/ops/last-write?psid_hash={'a' * 64}"])
def test_ops_routes_are_404_when_no_ops_token_is_configured(tmp_path, path, open_service):
    service = open_service(make_config(tmp_path, ops_token=""))
    assert Client(service).get(path, token="").status == 404
    assert Client(service).get(path, token="anything").status == 404


@pytest.mark.parametrize("path", ["/ops/stats", f"/ops/last-write?psid_hash={'a' * 64}"])
@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", f"Basic {OPS_TOKEN}",
                                           f"Bearer {OPS_TOKEN}x", "Bearer \u00e9"])
def test_ops_routes_are_401_without_the_right_bearer_token(client, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.request("GET", path, headers=headers)
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_last_write_returns_the_newest_row_of_that_person(client):
    h = psid_hash("111")
    empty = client.get(f"/ops/last-write?psid_hash={h}", token=OPS_TOKEN)
    assert empty.json() == {"psid_hash": h, "last_write": None, "mid": None}
    client.post_webhook(delivery(message_event("111", "m_1"), message_event("111", "m_2"),
                                 message_event("222", "m_3")))
    response = client.get(f"/ops/last-write?psid_hash={h}", token=OPS_TOKEN)
    assert response.status == 200
    body = response.json()
    assert (body["psid_hash"], body["mid"]) == (h, "m_2")
    assert body["last_write"].endswith("Z") and body["last_write"][:2] == "20"


@pytest.mark.parametrize("value", ["", "abc", "A" * 64, "g" * 64, "a" * 65, "' OR 1=1 --"])
def test_last_write_rejects_what_is_not_a_psid_hash(client, value):
    assert client.get(f"/ops/last-write?psid_hash={value}", token=OPS_TOKEN).status == 400


def test_stats_counts_messages_expenses_jobs_and_spool(client):
    client.post_webhook(delivery(message_event("111", "m_1", "coffee 1\ntea 2"),
                                 message_event("111", "m_2", "hello")))
    response = client.get("/ops/stats", token=OPS_TOKEN)
    assert response.status == 200
    stats = response.json()
    assert {key: stats[key] for key in ("messages", "expenses", "jobs", "rejected_events", "spool_depth")} == {
        "messages": 2, "expenses": 2, "jobs": {"pending": 0, "ok": 0, "error": 0, "skipped": 2},
        "rejected_events": 0, "spool_depth": 0}
    assert stats["wal_high_water_bytes"] >= 0 and stats["wal_limit_bytes"] == 64 * 1024 * 1024


@pytest.mark.parametrize("path", ["/ops/stats", f"/ops/last-write?psid_hash={'a' * 64}",
                                  f"/summary?psid_hash={'a' * 64}&period=all"])
def test_read_routes_answer_503_when_the_database_is_gone(service, client, path):
    service.config.db_path.unlink()
    service.config.db_path.mkdir()
    response = client.get(path, token=OPS_TOKEN)
    assert response.status == 503
    assert response.json() == {"error": "database unavailable"}
