"""Auditing a folder of LR inputs: per-variant folders, panels, a run CSV and (with HR) a paired table.

Outputs in ``out_dir`` (the face-SR paper's artifacts):
- ``pure/<name>.png`` (SR only) and ``judge/<name>.png`` (after the gatekeeper: the accepted or
  best variant), ``panels/<name>.png`` (LR | pure | +judge with scores, tags and the decision);
- ``audit.csv``: one row per input with seed, knob and value, scores, tags, decision and reason,
  appended and flushed per input; a re-run skips inputs already in it (resume);
- with HR references: ``metrics.csv`` (PSNR, SSIM, NIQE, and LPIPS when its weights are set via
  environment variables) for pure and +judge with deltas, per image, and ``metrics_summary.csv``
  with the means per family.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srjudge.audit.gate import AuditDecision, AuditPolicy, audit_image
from srjudge.errors import MissingDependencyError, MissingWeightsError, SrjudgeError
from srjudge.images.io import load_image, save_png
from srjudge.judges.base import Judge
from srjudge.metrics import create_metric
from srjudge.report.panels import side_by_side
from srjudge.sr.base import SRBackend

AUDIT_COLUMNS = [
    "name",
    "backend",
    "family",
    "seed",
    "judge",
    "pure_score",
    "pure_tags",
    "confidence",
    "knob",
    "value",
    "final_score",
    "final_tags",
    "decision",
    "reason",
    "steps",
]
METRICS = ("psnr", "ssim", "niqe", "lpips")


@dataclass
class AuditSummary:
    out_dir: Path
    decisions: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _caption(title: str, score: float | None, tags: Sequence[str], extra: str = "") -> str:
    score_text = "abstained" if score is None else f"score {score:.1f}"
    return "\n".join(x for x in (title, score_text, ", ".join(tags) or "no tags", extra) if x)


def panel(lr: np.ndarray, decision: AuditDecision) -> np.ndarray:
    """LR | pure | +judge, captioned with scores, tags and the decision."""
    pure, final = decision.pure, decision.final
    knob = f"{final.knob}={final.value:g}" if final.knob else "no knob"
    return side_by_side(
        [lr, pure.image, final.image],
        [
            "LR input",
            _caption("pure SR", pure.verdict.score, pure.verdict.tags),
            _caption(f"+judge ({knob})", final.verdict.score, final.verdict.tags, decision.decision),
        ],
    )


def _metric_fns() -> dict[str, Callable[..., float] | str]:
    """Each metric, or why it is not available (LPIPS needs user weights)."""
    fns: dict[str, Callable[..., float] | str] = {}
    for name in METRICS:
        try:
            fns[name] = create_metric(name)
        except (MissingWeightsError, MissingDependencyError) as exc:
            fns[name] = f"n/a: {str(exc).splitlines()[0]}"
    return fns


def audit_folder(
    lr_paths: Sequence[Path],
    backend: SRBackend,
    judge: Judge,
    out_dir: Path,
    *,
    scale: int = 4,
    policy: AuditPolicy | None = None,
    hr_dir: Path | None = None,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> AuditSummary:
    """Audit every LR input; resumable from ``audit.csv``; a failing input is reported, the run goes on."""
    policy = policy or AuditPolicy()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = AuditSummary(out_dir)
    csv_path = out_dir / "audit.csv"
    done: set[str] = set()
    if csv_path.exists():
        with csv_path.open(newline="") as handle:
            done = {row["name"] for row in csv.DictReader(handle)}
    metric_fns = _metric_fns() if hr_dir is not None else {}
    metric_rows: list[dict[str, object]] = []
    with csv_path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=AUDIT_COLUMNS)
        if not done:
            writer.writeheader()
            handle.flush()
        for n, path in enumerate(lr_paths, 1):
            name = path.stem
            if name in done:
                summary.skipped.append(name)
                if progress:
                    progress(n, len(lr_paths), name)
                continue
            try:
                lr = load_image(path)
                hr = None
                if hr_dir is not None:
                    matches = sorted(hr_dir.glob(f"{name}.*"))
                    if not matches:
                        raise SrjudgeError(f"no HR image named {name}.* in {hr_dir}")
                    hr = load_image(matches[0])
                decision = audit_image(lr, backend, judge, scale=scale, policy=policy, seed=seed)
            except SrjudgeError as exc:
                summary.failed.append((name, str(exc)))
                if progress:
                    progress(n, len(lr_paths), name)
                continue
            save_png(out_dir / "pure" / f"{name}.png", decision.pure.image)
            save_png(out_dir / "judge" / f"{name}.png", decision.final.image)
            save_png(out_dir / "panels" / f"{name}.png", panel(lr, decision))
            final = decision.final
            writer.writerow(
                {
                    "name": name,
                    "backend": backend.spec,
                    "family": backend.family,
                    "seed": seed,
                    "judge": judge.spec,
                    "pure_score": _num(decision.pure.verdict.score),
                    "pure_tags": ";".join(decision.pure.verdict.tags),
                    "confidence": _num(decision.pure.verdict.confidence),
                    "knob": final.knob or "",
                    "value": "" if final.value is None else final.value,
                    "final_score": _num(final.verdict.score),
                    "final_tags": ";".join(final.verdict.tags),
                    "decision": decision.decision,
                    "reason": decision.reason,
                    "steps": json.dumps([s.record() for s in decision.steps]),
                }
            )
            handle.flush()
            summary.decisions[name] = decision.decision
            if hr is not None:
                metric_rows.append(_paired(name, backend.family, decision, hr, metric_fns))
            if progress:
                progress(n, len(lr_paths), name)
    if metric_rows:
        _write_metrics(out_dir, metric_rows, metric_fns)
    return summary


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _paired(
    name: str,
    family: str,
    decision: AuditDecision,
    hr: np.ndarray,
    fns: dict[str, Callable[..., float] | str],
) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "family": family, "decision": decision.decision}
    for metric, fn in fns.items():
        if isinstance(fn, str):
            row[f"{metric}_pure"] = row[f"{metric}_judge"] = row[f"{metric}_delta"] = ""
            continue
        try:
            pure = fn(decision.pure.image, hr=hr)
            judged = fn(decision.final.image, hr=hr)
        except SrjudgeError:
            pure = judged = math.nan
        row[f"{metric}_pure"], row[f"{metric}_judge"], row[f"{metric}_delta"] = pure, judged, judged - pure
    return row


def _write_metrics(
    out_dir: Path, rows: list[dict[str, object]], fns: dict[str, Callable[..., float] | str]
) -> None:
    """Append per-image paired metrics; rewrite the per-family means from the whole file."""
    path = out_dir / "metrics.csv"
    columns = ["name", "family", "decision"] + [
        f"{m}_{k}" for m in METRICS for k in ("pure", "judge", "delta")
    ]
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    with path.open(newline="") as handle:
        everything = list(csv.DictReader(handle))
    families = sorted({r["family"] for r in everything})
    with (out_dir / "metrics_summary.csv").open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["family", "n", *columns[3:], "notes"])
        notes = "; ".join(f"{m}: {v}" for m, v in fns.items() if isinstance(v, str))
        for family in families:
            subset = [r for r in everything if r["family"] == family]
            means = []
            for col in columns[3:]:
                values = [float(r[col]) for r in subset if r[col] not in ("", "nan")]
                means.append(f"{np.mean(values):.4f}" if values else "")
            table.writerow([family, len(subset), *means, notes])
