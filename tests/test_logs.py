"""JSON-line logs: one object per line, through the standard handler."""

from __future__ import annotations

import json
import logging
import re

from expensebot.logs import log_event

logger = logging.getLogger("expensebot.test_logs")


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_event_is_one_json_line_with_its_fields(stream):
    fields = {"psid_hash": "a" * 64, "mid": 'm_"1"\n\u00e9', "expense_id": 7, "expenses": 1, "kind": "message",
              "when": object.__new__(type("When", (), {"__str__": lambda self: "later"}))}
    log_event(logger, "event_logged", **fields)
    [line] = lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("ts"))
    assert line == {"level": "info", "event": "event_logged", **fields, "when": "later"}


def test_a_warning_keeps_its_level(stream):
    log_event(logger, "reply_failed", level=logging.WARNING, code=551)
    assert lines(stream)[0]["level"] == "warning"


def test_a_level_turned_off_writes_nothing(stream):
    logging.getLogger().setLevel(logging.WARNING)
    log_event(logger, "event_logged", mid="m_1")
    assert stream.getvalue() == ""


def test_a_plain_log_record_is_a_json_line_too(stream):
    logger.warning("plain %s", "words")
    [line] = lines(stream)
    assert (line["event"], line["message"], line["logger"]) == ("log", "plain words", logger.name)


def test_a_field_that_holds_itself_is_reported_not_raised(stream, capsys):
    looped = {}
    looped["self"] = looped
    log_event(logger, "event_logged", looped=looped)  # reported by the handler, not raised
    assert "event_logged" not in stream.getvalue()
    assert "--- Logging error ---" in capsys.readouterr().err


def test_a_broken_stream_is_reported_not_raised(stream, capsys):
    stream.close()  # as stdout closed under the bot
    log_event(logger, "event_logged", mid="m_1")  # the direct path: must not raise into the request
    assert "--- Logging error ---" in capsys.readouterr().err


