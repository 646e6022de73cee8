"""Property: any delivery mixing valid and hostile events stores every valid one and answers 200."""

from __future__ import annotations

import itertools

from conftest import (
    Client,
    delivery,
    make_config,
    message_event,
    query,
    services_closed_at_exit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = 1764075600000
_counter = itertools.count()

hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just(2**63), st.just(253_402_300_799_000), st.just("\ud800"),
)


@st.composite
def hostile_event(draw):
    """Events shaped like Meta's with fields that can never be stored, or garbage outright."""
    kind = draw(st.sampled_from(["edit", "message", "postback", "garbage", "notice"]))
    sender = draw(st.one_of(st.just({"id": "222"}), st.fixed_dictionaries({"id": hostile_values}), hostile_values))
    timestamp = draw(hostile_values)
    if kind == "edit":
        body = {"mid": draw(st.one_of(st.just("m_target"), hostile_values)),
                "text": draw(st.one_of(st.just("coffee 5"), st.just("undo"), hostile_values)),
                "num_edit": draw(hostile_values)}
        return {"sender": sender, "recipient": {"id": "1"}, "timestamp": timestamp, "message_edit": body}
    if kind == "message":
        body = {"mid": draw(hostile_values), "text": draw(hostile_values),
                "quick_reply": draw(st.one_of(hostile_values, st.fixed_dictionaries({"payload": hostile_values})))}
        return {"sender": sender, "recipient": {"id": "1"}, "timestamp": timestamp, "message": body}
    if kind == "postback":
        body = {"payload": draw(hostile_values), "mid": draw(hostile_values)}
        return {"sender": sender, "timestamp": timestamp, "postback": body}
    if kind == "notice":
        return {"sender": sender, "timestamp": timestamp, draw(st.sampled_from(["read", "delivery"])): draw(hostile_values)}
    return draw(hostile_values)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mix_of_valid_and_hostile_events_stores_every_valid_one(tmp_path, data):
    n_valid = data.draw(st.integers(min_value=1, max_value=4), label="valid")
    hostile = data.draw(st.lists(hostile_event(), max_size=6), label="hostile")
    run = next(_counter)
    valid = [message_event("111", f"m_{run}_{n}", f"coffee {n + 1}", timestamp=T0 + n) for n in range(n_valid)]
    events = data.draw(st.permutations(valid + hostile), label="order")
    (tmp_path / f"run{run}").mkdir()
    with services_closed_at_exit() as open_service:  # each example's own database, closed when it ends
        service = open_service(make_config(tmp_path / f"run{run}"), replay_interval=3600)
        response = Client(service).post_webhook(delivery(*events))
        assert response.status == 200
        stored = {mid for (mid,) in query(service, "SELECT mid FROM expenses")}
    assert {event["message"]["mid"] for event in valid} <= stored
