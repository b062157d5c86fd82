"""Reading a model's answer: the JSON object in it (bare, fenced or in prose), refusals, typed fields.

Every reader returns a value or raises :class:`ParseError` with a reason; callers ask again and then
give up with that reason. Nothing here ever invents a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ParseError", "extract_json_object", "looks_like_refusal", "number_field", "string_field"]

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
