"""``fitted:PATH``: a judge calibrated to a user's raters by ``srjudge fit``.

The file (JSON, schema ``srjudge.fitted/1``) names its input judges and which of their outputs it reads
(``score`` or a component), with the standardisation and weights of a linear model: raw = w . z (+ b),
z = (x - mean) / std. Pairwise-logistic models score 100 * sigmoid(raw), ridge models give the
predicted MOS as raw and its position in the training MOS range as the score. Every verdict carries
the weighted terms as ``contributions``, so a ranking says which inputs decided. A candidate for which
an input judge abstains gets an abstention that names the judge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.judges.base import CandidateSetJudge, Judge, Verdict
from srjudge.judges.registry import create_judge, register_judge
from srjudge.provenance import file_sha256
from srjudge.spec import Spec, coerce_options

FITTED_SCHEMA = "srjudge.fitted/1"
_KINDS = ("pairwise-logistic", "ridge")


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SrjudgeError(
            f"fitted: {path}: no such judge file. Make one with `srjudge fit DATASET --out {path}`."
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SrjudgeError(f"fitted: {path} is not a readable JSON judge file ({exc}).") from None
    problems = []
    if not isinstance(doc, dict) or doc.get("schema") != FITTED_SCHEMA:
        raise SrjudgeError(
            f"fitted: {path} is not a srjudge fitted judge (schema {FITTED_SCHEMA!r} expected)."
        )
    if doc.get("kind") not in _KINDS:
        problems.append(f"kind must be one of {', '.join(_KINDS)}")
    n = len(doc.get("inputs", []))
    for key in ("mean", "std", "weights"):
        values = doc.get(key)
        if (
            not isinstance(values, list)
            or len(values) != n
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in values)
        ):
            problems.append(f"{key} must be {n} finite numbers")
    if isinstance(doc.get("std"), list) and any(isinstance(v, int | float) and v <= 0 for v in doc["std"]):
        problems.append("std must be positive")
    if n == 0:
        problems.append("inputs is empty")
    if problems:
        raise SrjudgeError(f"fitted: {path} is damaged: " + "; ".join(problems) + ". Re-run `srjudge fit`.")
    return doc


class FittedJudge(CandidateSetJudge):
    """Runs the input judges on the candidate set and combines their outputs with the fitted weights."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        doc = _load(self.path)
        self.kind: str = doc["kind"]
        self.inputs: list[tuple[str, str]] = [(str(i["judge"]), str(i["key"])) for i in doc["inputs"]]
        self.mean = np.asarray(doc["mean"], dtype=np.float64)
        self.std = np.asarray(doc["std"], dtype=np.float64)
        self.weights = np.asarray(doc["weights"], dtype=np.float64)
        self.intercept = float(doc.get("intercept", 0.0))
        self.mos_range: tuple[float, float] | None = None
        if self.kind == "ridge":
            lo, hi = doc.get("training", {}).get("target_range", [0.0, 1.0])
            self.mos_range = (float(lo), float(hi)) if hi > lo else (0.0, 1.0)
        specs = list(dict.fromkeys(spec for spec, _ in self.inputs))
        self.judges: dict[str, Judge] = {spec: create_judge(spec) for spec in specs}
        self.spec = f"fitted:{path}"
        self.config = {"file_sha256": file_sha256(self.path), "inputs": [f"{s}.{k}" for s, k in self.inputs]}

    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        if not images:
            return []
        outputs = {spec: judge.score_many(images, lr=lr, hr=hr) for spec, judge in self.judges.items()}
        verdicts = []
        for index in range(len(images)):
            values, missing = [], []
            for spec, key in self.inputs:
                v = outputs[spec][index]
                value = v.score if key == "score" else v.components.get(key)
                if v.abstained or value is None or not math.isfinite(float(value)):
                    missing.append(f"{spec}.{key}" + (f" ({v.abstain_reason})" if v.abstain_reason else ""))
                    values.append(math.nan)
                else:
                    values.append(float(value))
            if missing:
                verdicts.append(self.abstention("input judge gave no value: " + ", ".join(missing)))
                continue
            z = (np.asarray(values) - self.mean) / self.std * self.weights
            raw = float(z.sum() + self.intercept)
            if self.mos_range is None:
                score = 100.0 / (1.0 + math.exp(-raw))
            else:
                lo, hi = self.mos_range
                score = float(np.clip(100.0 * (raw - lo) / (hi - lo), 0.0, 100.0))
            contributions = {f"{s}.{k}": float(c) for (s, k), c in zip(self.inputs, z, strict=True)}
            top = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:3]
            verdicts.append(
                self.verdict(
                    score,
                    raw,
                    rationale="fitted to raters; largest terms: "
                    + ", ".join(f"{k} {v:+.2f}" for k, v in top),
                    components={f"{s}.{k}": x for (s, k), x in zip(self.inputs, values, strict=True)},
                    contributions=contributions,
                )
            )
        return verdicts


@register_judge(
    "fitted", "A judge calibrated to your raters by `srjudge fit`; fitted:PATH (the JSON it wrote)."
)
def _make_fitted(spec: Spec) -> Judge:
    coerce_options(spec, {}, kind="judge")
    if not spec.arg:
        raise SpecError(
            "fitted needs the judge file written by `srjudge fit`: fitted:PATH (e.g. fitted:my-raters.json)."
        )
    return FittedJudge(spec.arg)
