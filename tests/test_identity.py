"""The identity adapter: a PSID becomes psid_hash at the door; a PSID kept across a restart is sealed."""

from __future__ import annotations

import pytest

from expensebot.identity import PsidHasher, Sealer

KEY = "test-psid-hash-key"


def test_a_sealed_psid_opens_with_the_key_and_its_own_psid_hash_only():
    sealer, hasher = Sealer(KEY), PsidHasher(KEY)
    psid = "6543210987654321"
    token = sealer.seal(psid, hasher(psid))
    assert psid not in token
    assert sealer.open(token, hasher(psid)) == psid
    assert sealer.open(token, hasher("1111111111111111")) is None  # moved to another person's row
    assert Sealer("another-key-entirely").open(token, hasher(psid)) is None
    assert sealer.seal(psid, hasher(psid)) != token  # a fresh nonce every time


@pytest.mark.parametrize("token", ["", "garbage", "AAAA", "é", "A" * 40])
def test_anything_but_a_sealed_psid_opens_to_nothing(token):
    assert Sealer(KEY).open(token, "h") is None


def test_a_changed_byte_opens_to_nothing():
    sealer = Sealer(KEY)
    token = sealer.seal("6543210987654321", "h")
    changed = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert sealer.open(changed, "h") is None
