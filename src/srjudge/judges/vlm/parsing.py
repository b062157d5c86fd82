"""Robust parsing of VLM answers: JSON inside prose or code fences, level words, preferences.

Every parser returns a value or raises :class:`ParseError` with a reason; callers retry and then
abstain. Nothing here ever invents a score.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

LEVELS = ("excellent", "good", "fair", "poor", "bad")
LEVEL_VALUES = {"excellent": 5.0, "good": 4.0, "fair": 3.0, "poor": 2.0, "bad": 1.0}
"""Q-Align's weighting of the five level words."""

PREFERENCES = ("first", "second", "tie")

_REFUSAL = re.compile(
    r"\b(i\s*(?:am|'m)\s*(?:sorry|unable)|i\s*can(?:not|'t)\s*(?:help|assist|evaluate|analy[sz]e|provide|comply))",
    re.IGNORECASE,
)


class ParseError(ValueError):
    """The answer could not be read as the protocol requires."""


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, fenced (```json), or surrounded by prose."""
    if not text or not text.strip():
        raise ParseError("empty answer")
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    while start != -1:
        depth, in_string, escape = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start : i + 1])
                    break
        start = text.find("{", start + 1)
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    if looks_like_refusal(text):
        raise ParseError(f"the model refused: {text.strip()[:120]!r}")
    if "{" in text and "}" not in text[text.find("{") :]:
        raise ParseError("truncated JSON (no closing brace)")
    raise ParseError(f"no JSON object in the answer: {text.strip()[:120]!r}")


def number_field(obj: Mapping[str, Any], name: str, lo: float, hi: float) -> float:
    """A numeric field within [lo, hi]; numbers given as strings ("85", "85/100", "0.9") are accepted."""
    if name not in obj:
        raise ParseError(f"missing field {name!r}")
    value = obj[name]
    if isinstance(value, bool):
        raise ParseError(f"field {name!r} is a boolean, not a number")
    if isinstance(value, str):
        match = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?|%)?\s*$", value)
        if not match:
            raise ParseError(f"field {name!r} is not a number: {value!r}")
        value = float(match.group(1))
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ParseError(f"field {name!r} is not a finite number: {value!r}")
    value = float(value)
    if not lo <= value <= hi:
        raise ParseError(f"field {name!r} = {value} is outside [{lo:g}, {hi:g}]")
    return value


def string_field(obj: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name)
    if value is None:
        if required:
            raise ParseError(f"missing field {name!r}")
        return ""
    if not isinstance(value, str):
        raise ParseError(f"field {name!r} is not a string: {value!r}")
    return value.strip()


def tags_field(obj: Mapping[str, Any], vocabulary: Sequence[str]) -> tuple[str, ...]:
    """Tags restricted to the vocabulary (case and spacing normalised); unknown tags are an error."""
    raw = obj.get("tags", [])
    if isinstance(raw, str):
        raw = [t for t in re.split(r"[,;]", raw) if t.strip()]
    if not isinstance(raw, list):
        raise ParseError(f"field 'tags' is not a list: {raw!r}")
    canon = {re.sub(r"[\s_-]+", " ", v.lower()).replace("color", "colour"): v for v in vocabulary}
    out = []
    for tag in raw:
        if not isinstance(tag, str):
            raise ParseError(f"tag {tag!r} is not a string")
        key = re.sub(r"[\s_-]+", " ", tag.strip().lower()).replace("color", "colour")
        if key not in canon:
            raise ParseError(f"tag {tag!r} is not in the vocabulary ({', '.join(vocabulary)})")
        if canon[key] not in out:
            out.append(canon[key])
    return tuple(out)


def first_word(text: str, allowed: Sequence[str]) -> str:
    """The first allowed word in a short answer ("Good.", "The quality is good", "**first**")."""
    words = re.findall(r"[a-z]+", text.lower())
    for word in words[:12]:
        if word in allowed:
            return word
    if looks_like_refusal(text):
        raise ParseError(f"the model refused: {text.strip()[:120]!r}")
    raise ParseError(f"none of {', '.join(allowed)} in the answer: {text.strip()[:120]!r}")


def word_distribution(top: Mapping[str, float], words: Sequence[str]) -> dict[str, float]:
    """Probabilities of ``words`` among top-token log-probabilities, renormalised over the words.

    Token variants (" good", "Good", "good") are summed. Raises ParseError when no word is present.
    """
    mass = dict.fromkeys(words, 0.0)
    for token, logprob in top.items():
        key = token.strip().lower()
        for word in words:
            # A level word may be split into several tokens; its first token is a prefix of it.
            if key and (key == word or (len(key) >= 3 and word.startswith(key))):
                mass[word] += math.exp(logprob)
                break
    total = sum(mass.values())
    if total <= 0.0:
        raise ParseError(f"none of {', '.join(words)} among the top tokens")
    return {w: m / total for w, m in mass.items()}


def expected_level(distribution: Mapping[str, float]) -> float:
    """Q-Align's score: sum of p(level) x value, in [1, 5]."""
    return float(sum(distribution[w] * LEVEL_VALUES[w] for w in LEVELS))


def level_to_score(level: float) -> float:
    """[1, 5] -> [0, 100]."""
    return (level - 1.0) * 25.0


def normalised_entropy(distribution: Mapping[str, float]) -> float:
    probs = [p for p in distribution.values() if p > 0]
    if len(distribution) < 2:
        return 0.0
    return float(-sum(p * math.log(p) for p in probs) / math.log(len(distribution)))
