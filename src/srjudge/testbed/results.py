"""The testbed experiment's settings and results: :class:`ExperimentConfig` in, :class:`ExperimentResult`
out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srjudge.errors import SpecError
from srjudge.spec import Spec, parse_spec
from srjudge.testbed.measures import CandidateMeasures, ItemFacts, Measures, Pick

SCHEMA = "srjudge.testbed.experiment/1"
DEFAULT_JUDGES: tuple[str, ...] = ("trust", "tws", "lr-psnr", "readout:classifier")
DEFAULT_BACKENDS: tuple[str, ...] = ("diffusion", "bicubic")
BASELINE_JUDGES: tuple[str, ...] = ("lr-psnr", "lpips")
"""Metric picks always in the table: LR-consistency PSNR, and LPIPS (against the bicubic-upsampled LR,
never the HR) when its weights are configured; otherwise it is listed as 'needs weights'."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of one run (what the CLI options map to)."""

    judges: tuple[str, ...] = DEFAULT_JUDGES
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    samples: int = 8
    top_k: int = 3
    fusion: str = "median"
    split: str = "test"
    limit: int | None = None
    n_boot: int = 1000
    seed: int = 0
    threshold: float = 0.5
    referee: str = "referee"
    tws: str = "tws"
    baselines: bool = True
    steps: int | None = None
    batch: int = 256

    def __post_init__(self) -> None:
        from srjudge.select.fusion import FUSE_METHODS

        if not self.judges and not self.baselines:
            raise SpecError("No judges to run: give --judges, e.g. 'trust,lr-psnr'.")
        if not self.backends:
            raise SpecError("No SR backends: give --backends, e.g. 'diffusion,bicubic'.")
        if len(set(self.judges)) != len(self.judges):
            raise SpecError(f"A judge is listed twice in {list(self.judges)}; list each once.")
        if len(set(self.backends)) != len(self.backends):
            raise SpecError(f"A backend is listed twice in {list(self.backends)}; list each once.")
        if self.samples < 1:
            raise SpecError(f"--samples {self.samples}: give at least 1 sample per stochastic backend.")
        if self.top_k < 1:
            raise SpecError(f"--top-k {self.top_k}: fuse at least the top 1 candidate.")
        if self.fusion not in FUSE_METHODS:
            raise SpecError(f"--fusion {self.fusion!r}: use one of {', '.join(FUSE_METHODS)}.")
        if self.split not in ("train", "val", "test"):
            raise SpecError(f"--split {self.split!r}: use train, val or test.")
        if self.limit is not None and self.limit < 1:
            raise SpecError(f"--limit {self.limit}: give a positive number of items (or leave it out).")
        if self.n_boot < 0:
            raise SpecError(f"--bootstrap {self.n_boot}: give 0 (no intervals) or more resamples.")
        if not 0.0 <= self.threshold <= 1.0:
            raise SpecError(f"threshold {self.threshold}: a referee confidence in [0, 1].")
        if self.batch < 1:
            raise SpecError(f"batch {self.batch}: give a positive batch size.")
        if self.steps is not None and self.steps < 1:
            raise SpecError(f"steps {self.steps}: give a positive number of sampling steps.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["judges"] = list(self.judges)
        data["backends"] = list(self.backends)
        return data


def backend_specs(config: ExperimentConfig) -> tuple[str, ...]:
    """The backend specs of a run: ``--steps`` goes into the spec of every backend that declares a
    ``steps`` option (the diffusion samplers) and does not set it itself, and so into the cache key."""
    if config.steps is None:
        return config.backends
    from srjudge.sr.base import SR_BACKENDS

    out = []
    for text in config.backends:
        spec = parse_spec(text)
        if "steps" in SR_BACKENDS.get(spec.name).options and "steps" not in spec.options:
            spec = Spec(spec.name, spec.arg, {**spec.options, "steps": str(config.steps)})
        out.append(str(spec))
    if out == list(config.backends):
        raise SpecError(
            f"--steps {config.steps}: no diffusion backend in --backends {','.join(config.backends)}."
        )
    return tuple(out)


@dataclass(frozen=True)
class JudgeInfo:
    """A judge (or baseline) in the table: its spec, configuration, and whether it ran."""

    spec: str
    kind: str
    status: str
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    seconds: float = 0.0
    reused: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "status": self.status,
            "config": {k: jsonable(v) for k, v in self.config.items()},
            "config_hash": self.config_hash,
            "seconds": round(self.seconds, 3),
            "reused_picks": self.reused,
            "message": self.message,
        }


@dataclass(frozen=True)
class ItemRecord:
    """Where an item's files are (for the report's image panels)."""

    item_id: str
    lr_path: Path | None
    candidate_files: tuple[Path, ...]


@dataclass(frozen=True)
class ExperimentResult:
    """Everything the report needs; serialises to JSON (``table.json``) with its provenance."""

    config: ExperimentConfig
    testbed: Mapping[str, Any]
    facts: tuple[ItemFacts, ...]
    picks: Mapping[str, Mapping[str, Pick]]
    judges: tuple[JudgeInfo, ...]
    rows: tuple[Measures, ...]
    candidates: tuple[CandidateMeasures, ...]
    records: Mapping[str, ItemRecord]
    timings: Mapping[str, float]
    counts: Mapping[str, int]
    referee: Mapping[str, Any]
    lr_scale: int = 4

    def settings(self) -> dict[str, Any]:
        from srjudge import __version__

        return {
            "schema": SCHEMA,
            "srjudge": __version__,
            "testbed": dict(self.testbed),
            "split": self.config.split,
            "items": len(self.facts),
            "backends": list(backend_specs(self.config)),
            "diffusion_steps": self.config.steps,
            "samples": self.config.samples,
            "top_k": self.config.top_k,
            "fusion": self.config.fusion,
            "seed": self.config.seed,
            "bootstrap": self.config.n_boot,
            "threshold": self.config.threshold,
            "referee": dict(self.referee),
            "tws": self.config.tws,
            "limit": self.config.limit,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "settings": self.settings(),
            "judges": [j.to_dict() for j in self.judges],
            "rows": [m.to_row() for m in self.rows],
            "candidates": [c.to_row() for c in self.candidates],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "counts": dict(self.counts),
        }


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value
