"""Reading a model's answer: the JSON object in it, refusals, and typed fields, on hand-written answers."""

from __future__ import annotations

import math

import pytest

from srjudge.vlm.answers import (
    ParseError,
    extract_json_object,
    looks_like_refusal,
    number_field,
    string_field,
)


def test_the_first_json_object_is_found_bare_fenced_or_in_prose() -> None:
    assert extract_json_object('{"a": 1}') == {"a": 1}
    assert extract_json_object('Sure!\n```json\n{"a": 2}\n```\nDone.') == {"a": 2}
    assert extract_json_object('I think {"text": "a } in a string", "n": 3} fits.') == {
        "text": "a } in a string",
        "n": 3,
    }
    assert extract_json_object('[1, 2] then {"b": {"c": 4}}') == {"b": {"c": 4}}
    with pytest.raises(ParseError, match="truncated JSON"):
        extract_json_object('{"a": 1')
    with pytest.raises(ParseError, match="the model refused"):
        extract_json_object("I'm sorry, I can't help with that.")
    with pytest.raises(ParseError, match="empty answer"):
        extract_json_object("  ")
    assert looks_like_refusal("I cannot evaluate images.") and not looks_like_refusal("Sorry for the wait: 3")


@pytest.mark.parametrize(
    "value,expected", [(85, 85.0), ("85", 85.0), ("85/100", 85.0), ("85 %", 85.0), (" 0.5 ", 0.5)]
)
def test_number_fields_accept_numbers_written_as_text(value: object, expected: float) -> None:
    assert number_field({"score": value}, "score", 0, 100) == expected


@pytest.mark.parametrize(
    "obj,message",
    [
        ({}, "missing field 'score'"),
        ({"score": True}, "is a boolean"),
        ({"score": "high"}, "is not a number"),
        ({"score": math.nan}, "not a finite number"),
        ({"score": 101}, r"= 101.0 is outside \[0, 100\]"),
    ],
)
def test_number_fields_refuse_what_is_not_a_number_in_range(obj: dict[str, object], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        number_field(obj, "score", 0, 100)


def test_string_fields() -> None:
    assert string_field({"reason": "  blurry  "}, "reason") == "blurry"
    assert string_field({}, "reason", required=False) == ""
    with pytest.raises(ParseError, match="missing field 'reason'"):
        string_field({}, "reason")
    with pytest.raises(ParseError, match="not a string"):
        string_field({"reason": 3}, "reason")
