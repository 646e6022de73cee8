"""JSON-line logs: the direct path writes what the logging path writes; a delivery's lines go out in one write."""

from __future__ import annotations

import json
import logging
import re

import pytest

from expensebot import logs
from expensebot.logs import log_event

logger = logging.getLogger("expensebot.test_logs")


def alone() -> None:
    """Leave configure()'s handler the only one, as when serving (pytest adds its own for each test)."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logs.JsonLines)]


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_path_and_the_logging_path_write_the_same_line(stream):
    fields = {"psid_hash": "a" * 64, "mid": 'm_"1"\n\u00e9', "expense_id": 7, "expenses": 1, "kind": "message",
              "when": object.__new__(type("When", (), {"__str__": lambda self: "later"}))}
    alone()
    assert logs._sole_handler(logger) is logging.getLogger().handlers[0]
    log_event(logger, "event_logged", **fields)  # direct: configure()'s handler is the only one
    extra = logging.NullHandler()
    logging.getLogger().addHandler(extra)
    try:
        assert logs._sole_handler(logger) is None
        log_event(logger, "event_logged", **fields)  # another handler listens: a LogRecord goes round
    finally:
        logging.getLogger().removeHandler(extra)
    direct, through_logging = lines(stream)
    for line in (direct, through_logging):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("ts"))
    assert direct == through_logging == {"level": "info", "event": "event_logged", **fields, "when": "later"}


def test_a_warning_keeps_its_level_on_the_direct_path(stream):
    alone()
    log_event(logger, "reply_failed", level=logging.WARNING, code=551)
    assert lines(stream)[0]["level"] == "warning"


def test_a_level_turned_off_writes_nothing(stream):
    alone()  # the direct path, which must check the level itself
    logging.getLogger().setLevel(logging.WARNING)
    log_event(logger, "event_logged", mid="m_1")
    assert stream.getvalue() == ""


def test_lines_logged_together_are_flushed_once_at_the_end(stream):
    alone()
    log_event(logger, "alone")
    with logs.together():
        log_event(logger, "event_logged", mid="m_1")
        with logs.together():  # nested: still one flush, at the outer end
            log_event(logger, "ai_enriched", mid="m_1")
        log_event(logger, "event_logged", mid="m_2")
        assert stream.lines_at_flush == [1]  # only the line before the block went out so far
    assert stream.lines_at_flush == [1, 4]
    assert [line["event"] for line in lines(stream)] == ["alone", "event_logged", "ai_enriched", "event_logged"]


def test_lines_logged_together_are_one_write_in_the_order_logged_whichever_path(stream):
    alone()
    with logs.together():
        log_event(logger, "event_logged", mid="m_1")  # direct
        logger.warning("plain %s", "words")  # through a LogRecord
        log_event(logger, "ai_enriched", mid="m_1")
        assert stream.writes == 0
    assert stream.writes == 1
    assert [line["event"] for line in lines(stream)] == ["event_logged", "log", "ai_enriched"]
    assert lines(stream)[1]["message"] == "plain words"


@pytest.mark.parametrize("fields", [
    {"mid": 'm_"1"\n\u00e9\u2028', "n": 7, "x": 1.5, "nan": float("nan"), "inf": float("-inf"), "big": 10**30},
    {"nested": {"kinds": {"read": 2}, "list": [1, None, True]}, 3: "int key", "thing": object()},
])
def test_a_line_is_what_json_dumps_writes(fields):
    assert logs._encode(fields) == json.dumps(fields, default=str)


def test_a_field_that_holds_itself_is_json_dumps_own_error(stream):
    looped = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="Circular reference"):
        logs._encode({"looped": looped})
    logger.info("event_logged", extra={"fields": {"looped": looped}})  # reported by the handler, not raised
    assert "event_logged" not in stream.getvalue()


def test_a_renamed_level_is_the_same_on_both_paths(stream):
    logging.addLevelName(logging.WARNING, "WARN")
    try:
        alone()
        log_event(logger, "reply_failed", level=logging.WARNING)
        logging.getLogger().addHandler(extra := logging.NullHandler())
        try:
            log_event(logger, "reply_failed", level=logging.WARNING)
        finally:
            logging.getLogger().removeHandler(extra)
    finally:
        logging.addLevelName(logging.WARNING, "WARNING")
    assert [line["level"] for line in lines(stream)] == ["warn", "warn"]


def test_lines_logged_together_go_out_even_when_the_block_fails(stream):
    with pytest.raises(RuntimeError), logs.together():
        log_event(logger, "event_logged", mid="m_1")
        raise RuntimeError("after the commit")
    assert stream.lines_at_flush == [1]


def test_a_broken_stream_is_reported_not_raised(stream, capsys):
    alone()
    stream.close()  # as stdout closed under the bot
    log_event(logger, "event_logged", mid="m_1")  # the direct path: must not raise into the request
    assert "--- Logging error ---" in capsys.readouterr().err


def test_a_broken_stream_at_the_end_of_a_together_block_is_reported_not_raised(stream, capsys):
    # The block's end flushes what it held back; ingest.write ends one after its commit, so a
    # stdout that broke meanwhile must not turn a committed delivery into an error.
    alone()
    with logs.together():
        log_event(logger, "event_logged", mid="m_1")
        stream.close()  # as stdout closed under the bot
    assert "--- Logging error ---" in capsys.readouterr().err
