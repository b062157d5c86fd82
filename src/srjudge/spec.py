"""Spec strings name a registered component with options: ``name[:arg][,key=value...]``.

Examples: ``niqe``, ``psnr:channel=y,crop_border=4``, ``tws:clip=/models/clip``, ``reward:/runs/rm``.
A single leading item without ``=`` is the positional argument (a path or a backend name).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from srjudge.errors import SpecError


@dataclass(frozen=True)
class Spec:
    name: str
    arg: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ([self.arg] if self.arg else []) + [f"{k}={v}" for k, v in self.options.items()]
        return self.name + (":" + ",".join(parts) if parts else "")


def parse_spec(text: str) -> Spec:
    """Parse a spec string; malformed options raise :class:`SpecError` naming the bad piece."""
    text = text.strip()
    if not text:
        raise SpecError("Empty spec: give a name such as 'niqe' or 'psnr:channel=y'.")
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    arg: str | None = None
    options: dict[str, str] = {}
    if rest:
        for index, item in enumerate(rest.split(",")):
            item = item.strip()
            if not item:
                raise SpecError(f"Empty option in spec {text!r}: remove the stray comma.")
            if "=" in item:
                key, _, value = item.partition("=")
                key = key.strip().lower().replace("-", "_")
                if not key or key in options:
                    raise SpecError(f"Option {key!r} in spec {text!r} is empty or given twice.")
                options[key] = value.strip()
            elif index == 0:
                arg = item
            else:
                raise SpecError(
                    f"Option {item!r} in spec {text!r} has no '=': write key=value "
                    "(only the first item may be a bare argument)."
                )
    return Spec(name=name, arg=arg, options=options)


def coerce_options(spec: Spec, schema: Mapping[str, type], *, kind: str) -> dict[str, Any]:
    """Convert a spec's string options to the types in ``schema``; unknown keys are an error."""
    unknown = sorted(set(spec.options) - set(schema))
    if unknown:
        allowed = ", ".join(sorted(schema)) or "none"
        raise SpecError(
            f"Unknown option(s) {', '.join(unknown)} for {kind} {spec.name!r}. Allowed: {allowed}."
        )
    out: dict[str, Any] = {}
    for key, raw in spec.options.items():
        typ = schema[key]
        try:
            if typ is bool:
                if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(raw)
                out[key] = raw.lower() in {"true", "1", "yes"}
            else:
                out[key] = typ(raw)
        except ValueError:
            raise SpecError(
                f"Option {key}={raw!r} for {kind} {spec.name!r} is not a valid {typ.__name__}."
            ) from None
    return out


def iter_specs(text: str) -> Iterator[str]:
    """Judge or backend specs from one option: comma-separated, or ';'-separated when specs hold commas."""
    for part in text.split(";") if ";" in text else text.split(","):
        if part.strip():
            yield part.strip()
