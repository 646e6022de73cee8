"""Rate limits (the AI per person, report pages per client address): slots per key per minute, bounded in keys."""

from __future__ import annotations

import pytest

from expensebot.limits import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_a_key_takes_per_minute_slots_then_waits_until_the_oldest_frees(clock):
    rate = RateLimiter(3, 100, clock)
    for second in range(3):
        clock.now = 1000.0 + second * 10
        assert rate.wait("a") == 0.0
    clock.now = 1030.0
    assert rate.wait("a") == 30.0  # the first slot, taken at 1000, frees at 1060
    assert rate.wait("b") == 0.0  # another key has its own slots
    clock.now = 1060.0
    assert rate.wait("a") == 0.0
    assert rate.wait("a") == 10.0  # the next frees at 1070; a refused call took nothing


def test_the_keys_remembered_never_exceed_max_keys(clock):
    rate = RateLimiter(1, 50, clock)
    for n in range(10_000):
        rate.wait(f"person-{n}")
    assert len(rate) == 50


def test_the_least_recently_used_key_is_forgotten_first(clock):
    rate = RateLimiter(1, 2, clock)
    assert rate.wait("a") == 0.0
    assert rate.wait("b") == 0.0
    assert rate.wait("a") > 0  # a is the most recently used now, b the least
    assert rate.wait("c") == 0.0  # b is forgotten
    assert rate.wait("a") > 0  # a is still limited
    assert rate.wait("b") == 0.0  # b starts afresh
