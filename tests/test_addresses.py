"""The reply side owns addressing: the PSID for a psid_hash lives in outbox.Addresses, not in ingest."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import Client, delivery, message_event, psid_hash, wait_for

from expensebot.replies.outbox import Addresses

T0 = 1764075600000  # 2025-11-25T13:00:00Z


def test_addresses_keep_the_most_recent_senders_up_to_the_limit():
    addresses = Addresses(limit=2)
    addresses.remember({"a": "1", "b": "2"})
    addresses.remember({"a": "1"})  # heard from again: the most recent now
    addresses.remember({"c": "3"})
    assert (addresses.get("a"), addresses.get("b"), addresses.get("c")) == ("1", None, "3")
    assert len(addresses) == 2


@pytest.mark.parametrize("recipients", [{}])
def test_remembering_nobody_changes_nothing(recipients):
    addresses = Addresses(limit=1)
    addresses.remember({"a": "1"})
    addresses.remember(recipients)
    assert addresses.get("a") == "1"


def test_a_spooled_message_is_answered_after_its_replay(bot, graph):
    holder = sqlite3.connect(bot.config.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the database cannot take the write: the delivery is spooled
    try:
        body = delivery(message_event("111", "m_1", "coffee 100", timestamp=T0))
        assert Client(bot).post_webhook(body).status == 200
        assert bot.ingest.spool.files()
        assert graph.delivered == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert wait_for(lambda: len(graph.delivered) == 1, timeout=30)
    assert graph.delivered[0]["recipient"] == {"id": "111"}
    assert graph.texts == ["coffee — 100.00 USD, today\nToday: 100.00 USD"]
    assert bot.outbox.addresses.get(psid_hash("111")) == "111"


def test_a_reply_worded_after_later_messages_shows_the_day_total_its_own_commit_left(bot, graph):
    """The `upto` bound: worded after the next message committed, a reply still counts only what came before."""
    graph.delay = 0.5  # the first reply holds this person's queue while the next two messages commit
    client = Client(bot.app)
    for n, (mid, text) in enumerate((("m_0", "water 1"), ("m_1", "coffee 3"), ("m_2", "tea 2"))):
        assert client.post_webhook(delivery(message_event("111", mid, text, timestamp=T0 + n))).status == 200
    assert bot.outbox.drain(30)
    assert graph.texts == ["water — 1.00 USD, today\nToday: 1.00 USD",
                           "coffee — 3.00 USD, today\nToday: 4.00 USD",
                           "tea — 2.00 USD, today\nToday: 6.00 USD"]
