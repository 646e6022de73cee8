"""dumps_with: json.dumps with fixed options, through one kept encoder, byte for byte."""

import json

import pytest

from expensebot.jsontext import dumps_with

VALUES = [
    {"mid": 'm_"1"\n\u00e9\u2028\ud83d', "n": 7, "x": 1.5, "nan": float("nan"), "inf": float("-inf"), "big": 10**30},
    {"nested": {"kinds": {"read": 2}, "list": [1, None, True, "¥ JPY"]}, 3: "int key", 2.5: "float key"},
    ["a list", {"of": ["things"]}, "\x00\x1f"],
    "just text ✓",
]
OPTIONS = [
    {},
    {"ensure_ascii": False},
    {"default": str},
    {"separators": (",", ":")},
    {"ensure_ascii": False, "default": repr, "separators": (",", ":")},
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("value", VALUES)
def test_it_writes_what_json_dumps_writes(value, options):
    assert dumps_with(**options)(value) == json.dumps(value, **options)


def test_an_unknown_object_is_passed_to_default_or_refused_as_json_dumps_does():
    thing = object()
    assert dumps_with(default=str)({"thing": thing}) == json.dumps({"thing": thing}, default=str)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_with()({"thing": thing})


@pytest.mark.parametrize("options", OPTIONS)
def test_a_value_that_holds_itself_is_json_dumps_own_error(options):
    looped = {"text": "hi"}
    looped["again"] = [looped]
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_with(**options)(looped)
