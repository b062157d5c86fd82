"""``srjudge fit``: calibrate a judge to your own raters.

Given a human-opinion dataset in any bench format and some input judges, fit a small, regularised
linear model over the judges' scores and numeric components (trust's terms, metric values, VLM
level scores):

- MOS with groups, pairwise and best-of-N data: a Bradley-Terry (pairwise logistic) model on the
  differences of standardised features of two images people compared, P(i beats j) =
  sigmoid(w . (z_i - z_j)), with an L2 penalty; the label is soft (vote share) where votes are given.
- MOS without groups: ridge regression of the MOS on standardised features.

Cross-validation is grouped k-fold (by MOS group, LR input or pair), seeded, never splitting a group:
every fold's model is fitted without that fold's groups and predicts them; the out-of-fold predictions
are measured with bench's measures, next to each input judge's own score. The final model is refitted
on all data and written as a judge file (JSON) that works as ``fitted:PATH``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

from srjudge.bench.datasets import BestOfNDataset, Dataset, MOSDataset, PairwiseDataset
from srjudge.bench.run import judge_slug
from srjudge.bench.store import JsonlStore as ScoreFile
from srjudge.errors import SrjudgeError
from srjudge.images.io import load_image
from srjudge.judges.base import Judge, Verdict
from srjudge.provenance import file_sha256

FITTED_SCHEMA = "srjudge.fitted/1"
ModelKind = Literal["pairwise-logistic", "ridge"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FeatureTable:
    """Per rated image: feature values (NaN where a judge abstained), and how images are compared."""

    names: tuple[str, ...]
    values: np.ndarray  # images x features
    groups: tuple[str, ...]  # per image: the unit that cross-validation keeps whole
    pairs: tuple[tuple[int, int, float, float], ...]  # (i, j, P(i beats j) by people, weight)
    mos: np.ndarray | None = None  # per image, MOS datasets only
    higher_is_better: bool = True


def verdict_features(spec: str, verdict: Verdict) -> dict[str, float]:
    """A verdict's score and finite numeric components, named ``spec.score`` / ``spec.component``."""
    if verdict.abstained or verdict.score is None:
        return {}
    out = {f"{spec}.score": float(verdict.score)}
    for key, value in verdict.components.items():
        if isinstance(value, int | float) and math.isfinite(float(value)):
            out[f"{spec}.{key}"] = float(value)
    return out


CandidateSet = tuple[Sequence[Path], Path | None, Path | None]
"""Images judged together, their LR input and their HR reference (MOS data that names one)."""


def _set_key(candidate_set: CandidateSet) -> str:
    """Cache key of a candidate set: its files' paths and contents (an image changed in place is new)."""
    images, lr, hr = candidate_set
    parts = [f"{p}:{file_sha256(p)}" for p in images]
    parts += [f"lr={lr}:{file_sha256(lr)}" if lr else "lr=", f"hr={hr}:{file_sha256(hr)}" if hr else "hr="]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _score_sets(
    sets: Sequence[CandidateSet],
    judges: Sequence[Judge],
    progress: Progress | None,
    cache_dir: Path | None,
) -> list[list[dict[str, float]]]:
    """Features of every image of every candidate set (judged together, as select would).

    With ``cache_dir``, each judge's features per set are streamed to a JSONL file (keyed by the
    judge's configuration and the files' contents), so an interrupted or repeated fit scores nothing twice.
    """
    files = {
        j.spec: ScoreFile(cache_dir / f"{judge_slug(j.spec)}.jsonl", j.provenance().config_hash)
        for j in judges
        if cache_dir is not None
    }
    out = []
    try:
        for done, candidate_set in enumerate(sets):
            images, lr_path, hr_path = candidate_set
            key = _set_key(candidate_set) if files else ""
            loaded: tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None] | None = None
            feats: list[dict[str, float]] = [{} for _ in images]
            for judge in judges:
                cached = files[judge.spec].get(key) if files else None
                if cached is None:
                    if loaded is None:
                        loaded = (
                            [load_image(p) for p in images],
                            load_image(lr_path) if lr_path is not None else None,
                            load_image(hr_path) if hr_path is not None else None,
                        )
                    arrays, lr, hr = loaded
                    try:
                        verdicts = judge.score_many(arrays, lr=lr, hr=hr)
                        cached = {"features": [verdict_features(judge.spec, v) for v in verdicts]}
                    except SrjudgeError as exc:  # the judge cannot score this set: its features are missing
                        cached = {"features": [{} for _ in images], "error": str(exc)}
                    if files:
                        files[judge.spec].put(key, cached)
                for f, values in zip(feats, cached["features"], strict=True):
                    f.update(values)
            out.append(feats)
            if progress is not None:
                progress(done + 1, len(sets))
    finally:
        for handle in files.values():
            handle.close()
    return out


def extract_features(
    dataset: Dataset,
    judges: Sequence[Judge],
    *,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> FeatureTable:
    """Run the input judges over a bench dataset and lay out what the model is fitted on."""
    rows: list[dict[str, float]] = []
    groups: list[str] = []
    pairs: list[tuple[int, int, float, float]] = []
    mos: list[float] = []
    higher = True
    if isinstance(dataset, MOSDataset):
        higher = dataset.higher_is_better
        by_set: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for index, item in enumerate(dataset.items):
            unit = item.group or (str(item.lr) if item.lr else f"item{index}")
            by_set[(unit, str(item.lr), str(item.ref) if item.group is None else "")].append(index)
        keys = list(by_set)
        sets: list[CandidateSet] = []
        for key in keys:
            first = dataset.items[by_set[key][0]]
            images = [dataset.items[i].image for i in by_set[key]]
            if first.group is None:  # no group: each image alone, with its own HR
                sets.extend(
                    ([dataset.items[i].image], dataset.items[i].lr, dataset.items[i].ref) for i in by_set[key]
                )
            else:  # a group is judged together; its HR goes along when every member names the same one
                refs = {dataset.items[i].ref for i in by_set[key]}
                sets.append((images, first.lr, refs.pop() if len(refs) == 1 else None))
        scored = _score_sets(sets, judges, progress, cache_dir)
        order = [i for key in keys for i in by_set[key]]
        flat = [f for feats in scored for f in feats]
        rows = [{} for _ in dataset.items]
        for i, f in zip(order, flat, strict=True):
            rows[i] = f
        sign = 1.0 if higher else -1.0
        for index, item in enumerate(dataset.items):
            groups.append(item.group or (str(item.lr) if item.lr else f"item{index}"))
            mos.append(item.score)
        if dataset.grouped:
            members: dict[str, list[int]] = defaultdict(list)
            for index, g in enumerate(groups):
                members[g].append(index)
            for idx in members.values():
                for a_pos, i in enumerate(idx):
                    for j in idx[a_pos + 1 :]:
                        if mos[i] != mos[j]:
                            pairs.append((i, j, 1.0 if sign * (mos[i] - mos[j]) > 0 else 0.0, 1.0))
    elif isinstance(dataset, PairwiseDataset):
        pair_sets: list[CandidateSet] = [([p.a, p.b], p.lr, None) for p in dataset.items]
        scored = _score_sets(pair_sets, judges, progress, cache_dir)
        for index, (pair, (fa, fb)) in enumerate(zip(dataset.items, scored, strict=True)):
            rows += [fa, fb]
            unit = str(pair.lr) if pair.lr else f"pair{index}"
            groups += [unit, unit]
            total = pair.votes_a + pair.votes_b
            if total > 0:
                pairs.append((2 * index, 2 * index + 1, pair.votes_a / total, 1.0))
    else:
        assert isinstance(dataset, BestOfNDataset)
        bon_sets: list[CandidateSet] = [(list(c.candidates), c.lr, None) for c in dataset.groups]
        scored = _score_sets(bon_sets, judges, progress, cache_dir)
        for choice, feats in zip(dataset.groups, scored, strict=True):
            base = len(rows)
            rows += feats
            groups += [choice.group] * len(feats)
            for a in range(len(feats)):
                for b in range(a + 1, len(feats)):
                    va, vb = choice.votes[a], choice.votes[b]
                    if va + vb > 0 and va != vb:
                        pairs.append((base + a, base + b, va / (va + vb), 1.0))
    names = tuple(sorted({k for r in rows for k in r}))
    values = np.array([[r.get(n, math.nan) for n in names] for r in rows], dtype=np.float64)
    return FeatureTable(
        names=names,
        values=values.reshape(len(rows), len(names)),
        groups=tuple(groups),
        pairs=tuple(pairs),
        mos=np.asarray(mos, dtype=np.float64) if mos else None,
        higher_is_better=higher,
    )


def usable_features(table: FeatureTable, wanted: Sequence[str] | None = None) -> list[int]:
    """Columns with a value for at least 80 % of images and some spread; ``wanted`` restricts by name."""
    keep = []
    for k, name in enumerate(table.names):
        if wanted is not None and name not in wanted:
            continue
        column = table.values[:, k]
        finite = column[np.isfinite(column)]
        if finite.size >= 0.8 * column.size and finite.size > 1 and float(np.std(finite)) > 1e-12:
            keep.append(k)
    return keep


@dataclass(frozen=True)
class LinearModel:
    """z = (x - mean) / std;  raw = weights . z + intercept."""

    kind: ModelKind
    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    intercept: float = 0.0

    def raw(self, x: np.ndarray) -> np.ndarray:
        raw: np.ndarray = ((x - self.mean) / self.std) @ self.weights + self.intercept
        return raw

    def contributions(self, x: np.ndarray) -> dict[str, float]:
        z = (x - self.mean) / self.std * self.weights
        return {name: float(v) for name, v in zip(self.names, z, strict=True)}


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(x, axis=0)
    std = np.nanstd(x, axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def fit_pairwise_logistic(
    x: np.ndarray, pairs: Sequence[tuple[int, int, float, float]], names: Sequence[str], *, l2: float
) -> LinearModel:
    """Bradley-Terry over feature differences: minimise weighted log loss + l2/2 |w|^2 (per pair)."""
    mean, std = _standardise(x)
    z = (x - mean) / std
    i = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    y = np.array([p[2] for p in pairs])
    w = np.array([p[3] for p in pairs])
    d = z[i] - z[j]
    total = float(w.sum())

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        m = d @ beta
        # log(1 + e^-m) and log(1 + e^m), computed stably
        nll = w * (y * np.logaddexp(0.0, -m) + (1.0 - y) * np.logaddexp(0.0, m))
        p = 1.0 / (1.0 + np.exp(-m))
        grad = d.T @ (w * (p - y))
        return float(nll.sum()) / total + 0.5 * l2 * float(beta @ beta), grad / total + l2 * beta

    beta0 = np.zeros(z.shape[1])
    result = minimize(loss, beta0, jac=True, method="L-BFGS-B")
    return LinearModel("pairwise-logistic", tuple(names), mean, std, np.asarray(result.x))


def fit_ridge(x: np.ndarray, target: np.ndarray, names: Sequence[str], *, l2: float) -> LinearModel:
    """Ridge regression of the target on standardised features (penalty scaled per image)."""
    mean, std = _standardise(x)
    z = (x - mean) / std
    n, k = z.shape
    intercept = float(target.mean())
    beta = np.linalg.solve(z.T @ z / n + l2 * np.eye(k), z.T @ (target - intercept) / n)
    return LinearModel("ridge", tuple(names), mean, std, beta, intercept)


def group_folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Indices of each fold's images: whole groups, shuffled with ``seed``, dealt round-robin."""
    unique = sorted(set(groups))
    if len(unique) < 2:
        raise SrjudgeError(f"Cross-validation needs at least 2 groups; the data has {len(unique)}.")
    k = min(k, len(unique))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[g]: pos % k for pos, g in enumerate(order)}
    labels = np.array([fold_of[g] for g in groups])
    return [np.flatnonzero(labels == f) for f in range(k)]


@dataclass
class FitResult:
    model: LinearModel
    cv_predictions: np.ndarray  # out-of-fold raw predictions, per image (NaN where unusable)
    used_images: int
    dropped_images: int
    inputs: list[dict[str, str]]
    target_range: tuple[float, float] | None = None  # ridge: the (oriented) MOS range, for the 0-100 score
    cv: dict[str, Any] = field(default_factory=dict)


def _fit_one(
    table: FeatureTable, cols: list[int], rows: np.ndarray, kind: ModelKind, l2: float
) -> LinearModel:
    x = table.values[:, cols]
    names = [table.names[c] for c in cols]
    if kind == "ridge":
        assert table.mos is not None
        sign = 1.0 if table.higher_is_better else -1.0
        return fit_ridge(x[rows], sign * table.mos[rows], names, l2=l2)
    position = {int(r): k for k, r in enumerate(rows)}
    pairs = [
        (position[i], position[j], y, w) for i, j, y, w in table.pairs if i in position and j in position
    ]
    if not pairs:
        raise SrjudgeError("No comparable pairs in the training data (do all human scores tie?).")
    return fit_pairwise_logistic(x[rows], pairs, names, l2=l2)


def fit_judge(
    table: FeatureTable,
    inputs: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    l2: float = 1.0,
    features: Sequence[str] | None = None,
) -> FitResult:
    """Grouped k-fold CV predictions and a final model fitted on all usable images."""
    if not (l2 >= 0 and math.isfinite(l2)):
        raise SrjudgeError(f"--l2 must be a finite number >= 0; got {l2}.")
    cols = usable_features(table, features)
    if not cols:
        raise SrjudgeError(
            "No usable features: every input judge abstained on most images or gave one constant value. "
            f"Judges: {', '.join(inputs)}; features seen: {', '.join(table.names) or 'none'}."
        )
    complete = np.all(np.isfinite(table.values[:, cols]), axis=1)
    kind: ModelKind = "ridge" if table.mos is not None and not table.pairs else "pairwise-logistic"
    usable = np.flatnonzero(complete)
    groups = [table.groups[i] for i in usable]
    predictions = np.full(len(table.groups), math.nan)
    for fold in group_folds(groups, folds, seed):
        test = usable[fold]
        train = np.setdiff1d(usable, test)
        model = _fit_one(table, cols, train, kind, l2)
        predictions[test] = model.raw(table.values[test][:, cols])
    final = _fit_one(table, cols, usable, kind, l2)
    spec_of = {name: name.rsplit(".", 1) for name in final.names}
    target_range = None
    if kind == "ridge" and table.mos is not None:
        oriented = (1.0 if table.higher_is_better else -1.0) * table.mos[usable]
        target_range = (float(oriented.min()), float(oriented.max()))
    return FitResult(
        model=final,
        cv_predictions=predictions,
        used_images=int(usable.size),
        dropped_images=int(len(table.groups) - usable.size),
        inputs=[{"judge": spec_of[n][0], "key": spec_of[n][1]} for n in final.names],
        target_range=target_range,
    )


def evaluate_predictions(
    table: FeatureTable, pred: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Agreement of per-image predictions (higher = better) with people, with a 95 % CI over groups.

    Grouped MOS: bench's within-group pairwise accuracy and SRCC. Pairwise and best-of-N: the share of
    human-decided pairs ordered as the majority did (judge ties 0.5). Ungrouped MOS: SRCC.
    """
    from srjudge.bench.bootstrap import boot_indices
    from srjudge.bench.grouped import grouped_measures
    from srjudge.bench.measures import mos_measures

    if table.mos is not None and not table.pairs:
        m = mos_measures(pred, table.mos, higher_is_better=table.higher_is_better, n_boot=n_boot, seed=seed)
        return {"measure": "SRCC", **_est(m.srcc)}
    if table.mos is not None:
        g = grouped_measures(
            [None if not math.isfinite(v) else float(v) for v in pred],
            table.mos,
            table.groups,
            higher_is_better=table.higher_is_better,
            n_boot=n_boot,
            seed=seed,
        )
        return {
            "measure": "within-group pairwise accuracy",
            **_est(g.pair_accuracy),
            "srcc_within": _est(g.srcc),
            "groups": g.n_groups_used,
            "pairs": g.n_pairs,
        }
    decided = [(i, j, y) for i, j, y, _ in table.pairs if y != 0.5 and math.isfinite(pred[i] + pred[j])]
    if not decided:
        raise SrjudgeError("No human-decided pair has predictions for both images.")
    credit = np.array(
        [0.5 if pred[i] == pred[j] else float((pred[i] > pred[j]) == (y > 0.5)) for i, j, y in decided]
    )
    by_group: dict[str, list[int]] = defaultdict(list)
    for k, (i, _, _) in enumerate(decided):
        by_group[table.groups[i]].append(k)
    members = list(by_group.values())
    draws = boot_indices(len(members), n_boot, seed)
    samples = np.array([credit[np.concatenate([members[g] for g in draw])].mean() for draw in draws])
    low, high = np.percentile(samples, [2.5, 97.5]) if samples.size else (math.nan, math.nan)
    return {
        "measure": "pairwise accuracy",
        "value": float(credit.mean()),
        "low": float(low),
        "high": float(high),
        "groups": len(members),
        "pairs": len(decided),
    }


def _est(e: Any) -> dict[str, float]:
    return {"value": float(e.value), "low": float(e.low), "high": float(e.high)}


def cv_report(
    table: FeatureTable, result: FitResult, inputs: Sequence[str], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Cross-validated agreement of the fitted judge next to each input judge's own score."""
    usable = np.isfinite(result.cv_predictions)

    def masked(values: np.ndarray) -> np.ndarray:
        """The same images for everyone: those the fitted judge predicted."""
        out: np.ndarray = np.where(usable, values, math.nan)
        return out

    rows = {
        "fitted (cross-validated)": evaluate_predictions(
            table, result.cv_predictions, n_boot=n_boot, seed=seed
        )
    }
    for spec in inputs:
        name = f"{spec}.score"
        if name in table.names:
            column = table.values[:, table.names.index(name)]
            rows[spec] = evaluate_predictions(table, masked(column), n_boot=n_boot, seed=seed)
    return rows


def judge_file(
    result: FitResult, *, dataset: Dataset, digest: str, folds: int, seed: int, l2: float
) -> dict[str, Any]:
    """The JSON document ``fitted:PATH`` loads."""
    import srjudge

    m = result.model
    return {
        "schema": FITTED_SCHEMA,
        "kind": m.kind,
        "inputs": result.inputs,
        "mean": [float(v) for v in m.mean],
        "std": [float(v) for v in m.std],
        "weights": [float(v) for v in m.weights],
        "intercept": m.intercept,
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.path),
            "sha256": digest,
            "synthetic": dataset.synthetic,
        },
        "training": {
            "folds": folds,
            "seed": seed,
            "l2": l2,
            "images": result.used_images,
            "dropped": result.dropped_images,
            **({"target_range": list(result.target_range)} if result.target_range else {}),
        },
        "cv": result.cv,
        "srjudge_version": srjudge.__version__,
    }
