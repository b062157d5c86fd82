"""Robust parsing of VLM answers: JSON inside prose or code fences, level words, preferences.

Every parser returns a value or raises :class:`ParseError` with a reason; callers retry and then
abstain. Nothing here ever invents a score. The JSON and field readers (and :class:`ParseError`)
are :mod:`srjudge.vlm.answers`', shared with the readers; the judges' own parsers follow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from srjudge.vlm.answers import (
    ParseError,
    extract_json_object,
    looks_like_refusal,
    number_field,
    string_field,
)

__all__ = [
    "LEVELS",
    "LEVEL_VALUES",
    "PREFERENCES",
    "ParseError",
    "expected_level",
    "extract_json_object",
    "first_word",
    "level_to_score",
    "looks_like_refusal",
    "normalised_entropy",
    "number_field",
    "string_field",
    "tags_field",
    "word_distribution",
]

LEVELS = ("excellent", "good", "fair", "poor", "bad")
LEVEL_VALUES = {"excellent": 5.0, "good": 4.0, "fair": 3.0, "poor": 2.0, "bad": 1.0}
"""Q-Align's weighting of the five level words."""

PREFERENCES = ("first", "second", "tie")


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
            return str(word)
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
