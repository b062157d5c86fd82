"""The degradation record: every sampled parameter of one degradation, enough to replay it exactly.

A record is a frozen dataclass that holds plain JSON values only (no numpy scalars), so that
``DegradationRecord.from_json(record.to_json()) == record`` and a replay from a sidecar file gives the
same bytes as the original run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from srjudge.errors import SpecError

SCHEMA = 1
"""Version of the record's JSON layout; bumped when a field changes meaning."""

Step = dict[str, Any]
"""One recorded operation: ``name`` (unique in the record), ``op`` and the op's parameters."""


def plain(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python ones and tuples into lists (JSON's own types)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"degradation records hold JSON values only, got {type(value).__name__}: {value!r}")


def _size(value: Any, what: str) -> tuple[int, int]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise SpecError(f"degradation record: {what} must be [height, width], got {value!r}")
    h, w = (int(v) for v in value)
    return h, w


@dataclass(frozen=True)
class DegradationRecord:
    """What was done to one HR image: pipeline, scale, seed and every sampled step, in order.

    ``input_size`` and ``output_size`` are ``(height, width)`` of the HR image as given and of the LR
    result. ``version`` is the srjudge version that made it. ``source`` optionally names the HR file and
    ``source_sha256`` its content (set by the folder runner, used to decide whether a rerun may skip it).
    Steps are plain dicts; treat them as read-only.
    """

    pipeline: str
    scale: int
    seed: int
    steps: tuple[Step, ...]
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    version: str
    source: str | None = None
    source_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(plain(dict(s)) for s in self.steps))
        object.__setattr__(self, "input_size", _size(self.input_size, "input_size"))
        object.__setattr__(self, "output_size", _size(self.output_size, "output_size"))
        object.__setattr__(self, "scale", int(self.scale))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "extra", plain(dict(self.extra)))
        names = [s.get("name") for s in self.steps]
        if any(not isinstance(s.get("op"), str) or not isinstance(s.get("name"), str) for s in self.steps):
            raise SpecError("degradation record: every step needs a string 'name' and 'op'")
        if len(set(names)) != len(names):
            raise SpecError(f"degradation record: step names repeat: {names}")

    def step(self, name: str) -> Step | None:
        """The step called ``name``, or None if this record has none."""
        for s in self.steps:
            if s["name"] == name:
                return s
        return None

    @property
    def cropped(self) -> bool:
        """Whether the HR image was cropped to a multiple of the scale first."""
        return self.step("crop") is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the schema, every field in declaration order as :func:`plain` data (sizes as
        ``[height, width]`` lists), and the steps last."""
        values = {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.name != "steps"}
        return {"schema": SCHEMA, **values, "steps": [plain(s) for s in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DegradationRecord:
        """Inverse of :meth:`to_dict`; a malformed dict raises :class:`~srjudge.errors.SpecError`."""
        if not isinstance(data, Mapping):
            raise SpecError(f"degradation record: expected a JSON object, got {type(data).__name__}")
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise SpecError(
                f"degradation record: schema {schema!r} is not supported (this srjudge reads {SCHEMA})."
            )
        required = ("pipeline", "scale", "seed", "steps", "input_size", "output_size", "version")
        missing = [k for k in required if k not in data]
        if missing:
            raise SpecError(f"degradation record: missing field(s) {', '.join(missing)}")
        steps = data["steps"]
        if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
            raise SpecError("degradation record: 'steps' must be a list of objects")
        try:
            return cls(
                pipeline=str(data["pipeline"]),
                scale=int(data["scale"]),
                seed=int(data["seed"]),
                steps=tuple(dict(s) for s in steps),
                input_size=data["input_size"],
                output_size=data["output_size"],
                version=str(data["version"]),
                source=data.get("source"),
                source_sha256=data.get("source_sha256"),
                extra=dict(data.get("extra") or {}),
            )
        except (TypeError, ValueError) as exc:
            raise SpecError(f"degradation record: {exc}") from None

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text; floats are written with ``repr`` precision, so they read back bit-exact."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> DegradationRecord:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"degradation record: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def flat(self) -> dict[str, Any]:
        """Main parameters as ``<step>_<param>`` scalars for tables (sizes as ``HxW``; no seeds)."""
        out: dict[str, Any] = {}
        for s in self.steps:
            for key, value in s.items():
                if key in ("name", "op", "noise_seed", "encoder", "subsampling"):
                    continue
                if isinstance(value, list):
                    value = "x".join(str(v) for v in value)
                out[f"{s['name']}_{key}"] = value
        return out


RecordLike: TypeAlias = "DegradationRecord | Mapping[str, Any] | str | os.PathLike[str]"
"""What :func:`~srjudge.degrade.replay` accepts as a record: the object, its JSON dict, or a sidecar path."""


def as_record(record: RecordLike) -> DegradationRecord:
    """A :class:`DegradationRecord` from the record itself, its JSON sidecar as a dict, or the sidecar's path.

    A string that starts with ``{`` is read as JSON text, any other string as a path. A missing,
    unreadable or malformed sidecar raises :class:`~srjudge.errors.SpecError` naming it.
    """
    if isinstance(record, DegradationRecord):
        return record
    if isinstance(record, Mapping):
        return DegradationRecord.from_dict(record)
    if isinstance(record, str) and record.lstrip().startswith("{"):
        return DegradationRecord.from_json(record)
    if isinstance(record, str | os.PathLike):
        path = Path(record)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(
                f"{path}: no such degradation record (the <name>.json sidecar). Check the path."
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: the degradation record could not be read ({exc}).") from None
        try:
            return DegradationRecord.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None
    raise SpecError(
        "a degradation record must be a DegradationRecord, its JSON sidecar as a dict, or the sidecar's "
        f"path; got {type(record).__name__}"
    )
