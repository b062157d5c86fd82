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
    if "=" in name:
        raise SpecError(
            f"Spec {text!r} starts with the option {name!r} instead of a name: write NAME:key=value "
            "(e.g. vlm:openai,model=gpt-4o). In a list of specs, separate them with ';' when a spec "
            'contains commas: "niqe;vlm:openai,model=gpt-4o".'
        )
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


def coerce_options(spec: Spec, schema: Mapping[str, Any], *, kind: str) -> dict[str, Any]:
    """Convert a spec's string options to the types in ``schema``; unknown keys are an error.

    ``schema`` maps option -> type (or :class:`Choice`), or option -> (type, default) as registry
    entries declare it; only the options the spec gives are returned.
    """
    unknown = sorted(set(spec.options) - set(schema))
    if unknown:
        import difflib

        allowed = ", ".join(sorted(schema)) or "none"
        hints = [
            f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, list(schema), n=1)) else u
            for u in unknown
        ]
        raise SpecError(f"Unknown option(s) {', '.join(hints)} for {kind} {spec.name!r}. Allowed: {allowed}.")
    out: dict[str, Any] = {}
    for key, raw in spec.options.items():
        typ = schema[key][0] if isinstance(schema[key], tuple) else schema[key]
        try:
            if typ is bool:
                if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(raw)
                out[key] = raw.lower() in {"true", "1", "yes"}
            else:
                out[key] = typ(raw)
        except SpecError:  # a type that words its own message (a Choice with a label)
            raise
        except ValueError:
            raise SpecError(
                f"Option {key}={raw!r} for {kind} {spec.name!r} is not a valid {typ.__name__}."
            ) from None
    return out


def looks_like_option(piece: str) -> bool:
    """Whether a piece of a spec list is a ``key=value`` option cut off its spec (no name has an '=')."""
    return "=" in piece.partition(":")[0]


def iter_specs(text: str, *, option: str | None = None) -> Iterator[str]:
    """Judge or backend specs from one option: comma-separated, or ';'-separated when specs hold commas.

    A piece that is a ``key=value`` option rather than a spec (``niqe,vlm:openai,model=gpt-4o`` splits
    ``model=gpt-4o`` off its spec) is a :class:`SpecError` that shows the list written with ';';
    ``option`` (e.g. ``--judges``) names the command-line option in that message.
    """
    sep = ";" if ";" in text else ","
    parts = [part.strip() for part in text.split(sep) if part.strip()]
    stray = next((part for part in parts if looks_like_option(part)), None)
    if stray is not None:
        raise SpecError(_stray_option_message(stray, parts, sep, option))
    yield from parts


def _stray_option_message(stray: str, parts: list[str], sep: str, option: str | None) -> str:
    groups: list[str] = []
    for part in parts:
        if looks_like_option(part) and groups:
            groups[-1] += "," + part
        else:
            groups.append(part)
    fixed = f'"{";".join(groups)}"'
    example = f"{option} {fixed}" if option else fixed
    if looks_like_option(groups[0]):
        return (
            f'"{stray}" looks like an option, but no spec comes before it: put it after the name of '
            f"its spec (NAME:key=value,...) and separate specs with ';' when a spec contains commas."
        )
    if sep == ";":
        return (
            f"\"{stray}\" looks like an option of the previous spec; join it to that spec with ',': {example}"
        )
    return (
        f"\"{stray}\" looks like an option of the previous spec; separate specs with ';' when a spec "
        f"contains commas: {example}"
    )


class Choice:
    """An option type with a fixed set of values, checked when the spec is parsed (not at first use):
    ``{"channel": (Choice("rgb", "y", "gray"), "rgb")}``.

    ``aliases`` maps other accepted spellings to one of the values (they are not listed). With a
    ``label`` (e.g. ``"realesrgan model"``), a bad value is a :class:`SpecError` worded
    ``Unknown <label> '<value>': use one of ...``; without one, :func:`coerce_options` words it.
    """

    def __init__(self, *values: str, aliases: Mapping[str, str] | None = None, label: str = "") -> None:
        self.values = values
        self.aliases = dict(aliases or {})
        self.label = label
        self.__name__ = "value: use one of " + ", ".join(values)

    def __call__(self, raw: str) -> str:
        value = raw.strip().lower()
        value = self.aliases.get(value, value)
        if value not in self.values:
            if self.label:
                raise SpecError(f"Unknown {self.label} {raw.strip()!r}: use one of {', '.join(self.values)}.")
            raise ValueError(raw)
        return value
