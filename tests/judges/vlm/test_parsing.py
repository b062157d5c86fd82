"""Parsing recorded VLM replies: well-formed, fenced, prose around JSON, truncated, wrong types, refusals."""

from __future__ import annotations

import math

import pytest

from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.parsing import LEVELS, ParseError

AUDIT_TAGS = ("blockiness", "ringing", "oversharpening", "colour shift", "blur", "noise")


@pytest.mark.parametrize(
    "reply",
    [
        '{"score": 72, "tags": ["blur"], "reason": "soft edges", "confidence": 0.8}',
        'Sure! Here is my assessment:\n```json\n{"score": 72, "tags": ["blur"], "reason": "soft edges", '
        '"confidence": 0.8}\n```\nLet me know if you need more.',
        'The image {looks} fine overall. {"score": "72", "tags": "blur", "reason": "soft edges", '
        '"confidence": "0.8"}',
        '{"score": 72.0, "tags": ["Blur"], "reason": "a {brace} in a string", "confidence": 0.8} trailing',
    ],
)
def test_well_formed_and_prose_wrapped_json(reply: str) -> None:
    obj = parsing.extract_json_object(reply)
    assert parsing.number_field(obj, "score", 0, 100) == 72.0
    assert parsing.tags_field(obj, AUDIT_TAGS) == ("blur",)
    assert parsing.number_field(obj, "confidence", 0, 1) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "reply,message",
    [
        ('{"score": 72, "tags": ["blur"], "reason": "soft ed', "truncated"),
        ("", "empty"),
        ("I'm sorry, but I can't help with evaluating this image.", "refused"),
        ("The image is quite blurry, I would say about seventy.", "no JSON object"),
    ],
)
def test_unreadable_replies(reply: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parsing.extract_json_object(reply)


@pytest.mark.parametrize(
    "obj,message",
    [
        ({"score": "high"}, "not a number"),
        ({"score": 140}, "outside"),
        ({"score": True}, "boolean"),
        ({"score": float("nan")}, "finite"),
        ({}, "missing field"),
    ],
)
def test_wrong_types(obj: dict[str, object], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parsing.number_field(obj, "score", 0, 100)


def test_tags_outside_the_vocabulary_are_an_error() -> None:
    assert parsing.tags_field({"tags": ["color shift", "Colour_Shift", "noise"]}, AUDIT_TAGS) == (
        "colour shift",
        "noise",
    )
    with pytest.raises(ParseError, match="vocabulary"):
        parsing.tags_field({"tags": ["jpeg"]}, AUDIT_TAGS)


def test_level_words_and_preferences() -> None:
    assert parsing.first_word("Good.", LEVELS) == "good"
    assert parsing.first_word("The quality of the image is **poor**", LEVELS) == "poor"
    assert parsing.first_word("Second", parsing.PREFERENCES) == "second"
    with pytest.raises(ParseError, match="none of"):
        parsing.first_word("It is hard to say.", LEVELS)
    with pytest.raises(ParseError, match="refused"):
        parsing.first_word("I cannot evaluate images of people.", LEVELS)


def test_level_distribution_from_top_logprobs() -> None:
    top = {" good": math.log(0.5), "Good": math.log(0.1), " fair": math.log(0.2), "The": math.log(0.15)}
    dist = parsing.word_distribution(top, LEVELS)
    assert dist["good"] == pytest.approx(0.75) and dist["fair"] == pytest.approx(0.25)
    assert sum(dist.values()) == pytest.approx(1.0)
    assert parsing.expected_level(dist) == pytest.approx(0.75 * 4 + 0.25 * 3)
    assert parsing.level_to_score(parsing.expected_level(dist)) == pytest.approx(68.75)
    with pytest.raises(ParseError, match="among the top tokens"):
        parsing.word_distribution({"The": -0.1, "image": -2.0}, LEVELS)


def test_entropy_confidence() -> None:
    assert parsing.normalised_entropy(dict.fromkeys(LEVELS, 0.2)) == pytest.approx(1.0)
    assert (
        parsing.normalised_entropy({"excellent": 1.0, "good": 0.0, "fair": 0.0, "poor": 0.0, "bad": 0.0})
        == 0.0
    )
