"""From judges' predictions to the bench's tables, plots and page (terminal, Markdown, CSV, JSON, HTML)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from srjudge.bench.datasets import BestOfNDataset, MOSDataset, PairwiseDataset
from srjudge.bench.measures import Estimate, best_of_n, instability, mos_measures, pairwise_accuracy
from srjudge.bench.page import to_csv, to_markdown, write_bench_page
from srjudge.bench.run import JudgeResult, check_repeats, mean_prediction, run_judge
from srjudge.judges.base import Judge
from srjudge.judges.vlm.stability import level_of

BENCH_SCHEMA = "srjudge.bench/1"
Dataset: TypeAlias = MOSDataset | PairwiseDataset | BestOfNDataset


def _ci(e: Estimate) -> str:
    return str(e)


def _row_mos(
    ds: MOSDataset, r: JudgeResult, n_boot: int, seed: int
) -> tuple[dict[str, Any], Any, list[float]]:
    preds = [mean_prediction(r.predictions[str(item.image)]) for item in ds.items]
    keep = [i for i, p in enumerate(preds) if not math.isnan(p)]
    pred = np.array([preds[i] for i in keep])
    mos = np.array([ds.items[i].score for i in keep])
    if len(keep) < 3:  # the judge abstained (or failed) on nearly every item: nothing to correlate
        blank = {k: "n/a" for k in ("SRCC", "KRCC", "PLCC", "RMSE")}
        return (
            {
                "judge": r.spec,
                "n": len(keep),
                "abstained": r.abstained(),
                **blank,
                "fit": "-",
                "level_flip_rate": None,
                **r.cost_row(),
            },
            None,
            list(pred),
        )
    m = mos_measures(pred, mos, higher_is_better=ds.higher_is_better, n_boot=n_boot, seed=seed)
    repeated = [r.predictions[str(item.image)] for item in ds.items]
    levels = [[level_of(v) for v in vals if v is not None] for vals in repeated]
    scores = [[v for v in vals if v is not None] for vals in repeated]
    inst = instability(levels, None, scores)
    row = {
        "judge": r.spec,
        "n": m.n,
        "abstained": r.abstained(),
        "SRCC": _ci(m.srcc),
        "KRCC": _ci(m.krcc),
        "PLCC": _ci(m.plcc),
        "RMSE": _ci(m.rmse),
        "fit": m.fit.kind,
        "level_flip_rate": inst.level_flip_rate,
        "score_spread": None if inst.score_spread is None else round(inst.score_spread, 4),
        **r.cost_row(),
    }
    return row, m, list(pred)


def _row_pairwise(ds: PairwiseDataset, r: JudgeResult, n_boot: int, seed: int) -> tuple[dict[str, Any], Any]:
    a, b = [], []
    for item in ds.items:
        values = r.predictions[f"{item.a}|{item.b}"]
        a.append(mean_prediction(values[0::2]))
        b.append(mean_prediction(values[1::2]))
    consistency = [c for c in r.extra.get("position_consistency", []) if c is not None]
    m = pairwise_accuracy(
        np.nan_to_num(np.array(a), nan=-1.0),
        np.nan_to_num(np.array(b), nan=-1.0),
        [item.human_winner for item in ds.items],
        position_consistency=consistency or None,
        n_boot=n_boot,
        seed=seed,
    )
    inst = instability(None, r.extra.get("winners"), None)
    row = {
        "judge": r.spec,
        "pairs": m.n_pairs,
        "human_ties": m.n_human_ties,
        "accuracy": _ci(m.accuracy),
        "judge_tie_rate": round(m.judge_tie_rate, 4),
        "position_consistency": m.position_consistency,
        "winner_flip_rate": inst.winner_flip_rate,
        **r.cost_row(),
    }
    return row, m


def _row_best_of_n(ds: BestOfNDataset, r: JudgeResult, n_boot: int, seed: int) -> tuple[dict[str, Any], Any]:
    preds, votes = [], []
    for group in ds.groups:
        values = r.predictions[group.group]
        n = len(group.candidates)
        per = [mean_prediction(values[i::n]) for i in range(n)]
        preds.append(np.nan_to_num(np.array(per), nan=-1.0))
        votes.append(np.array(group.votes, dtype=float))
    m = best_of_n(preds, votes, seed=seed, n_boot=n_boot)
    row = {
        "judge": r.spec,
        "groups": m.n_groups,
        "top1_agreement": _ci(m.top1),
        "vote_share": _ci(m.vote_share),
        "random_vote_share": _ci(m.random_vote_share),
        "oracle_vote_share": _ci(m.oracle_vote_share),
        **r.cost_row(),
    }
    return row, m


def run_bench(
    dataset: Dataset,
    judges: Sequence[Judge],
    out_dir: Path,
    *,
    repeats: int = 1,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    plots: bool = True,
) -> list[dict[str, Any]]:
    """Run every judge on the dataset and write table.{md,csv,json}, plots and index.html."""
    check_repeats(repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    plot_files: list[Path] = []
    bars: list[tuple[str, Estimate]] = []
    for judge in judges:
        result = run_judge(dataset, judge, out_dir, repeats=repeats, progress=progress)
        if isinstance(dataset, MOSDataset):
            row, m, pred = _row_mos(dataset, result, n_boot, seed)
            bars.append((judge.spec, m.srcc if m is not None else Estimate(math.nan, math.nan, math.nan)))
            if plots and m is not None:
                mos = [
                    item.score
                    for item in dataset.items
                    if not math.isnan(mean_prediction(result.predictions[str(item.image)]))
                ]
                plot_files.append(
                    _plot_scatter(
                        pred, mos, m, judge.spec, out_dir / f"scatter-{len(plot_files)}.png", dataset
                    )
                )
        elif isinstance(dataset, PairwiseDataset):
            row, m = _row_pairwise(dataset, result, n_boot, seed)
            bars.append((judge.spec, m.accuracy))
        else:
            row, m = _row_best_of_n(dataset, result, n_boot, seed)
            bars.append((judge.spec, m.top1))
        rows.append(row)
        measures = _jsonable(asdict(m)) if m is not None else None
        details.append({"judge": judge.spec, "config_hash": result.config_hash, "measures": measures})
    measure = {MOSDataset: "SRCC", PairwiseDataset: "pairwise accuracy", BestOfNDataset: "top-1 agreement"}[
        type(dataset)
    ]
    if plots and bars:
        from srjudge.bench.plots import bars_with_ci

        plot_files.append(
            bars_with_ci(
                [b[0] for b in bars],
                [b[1].value for b in bars],
                [b[1].low for b in bars],
                [b[1].high for b in bars],
                title=f"{measure} per judge (95 % bootstrap CI)",
                ylabel=measure,
                path=out_dir / "bars.png",
            )
        )
    settings = {
        "dataset": dataset.name,
        "dataset_file": str(dataset.path),
        "synthetic": dataset.synthetic,
        "judges": [j.spec for j in judges],
        "repeats": repeats,
        "bootstrap_resamples": n_boot,
        "seed": seed,
        "version": __import__("srjudge").__version__,
    }
    (out_dir / "table.md").write_text(to_markdown(rows))
    to_csv(rows, None, out_dir / "table.csv")
    (out_dir / "table.json").write_text(
        json.dumps({"schema": BENCH_SCHEMA, "settings": settings, "rows": rows, "details": details}, indent=2)
    )
    note = (
        "SYNTHETIC dataset: scores follow the degradation strength, not human opinion."
        if dataset.synthetic
        else "Measured against the dataset's human opinion scores."
    )
    write_bench_page(out_dir, f"srjudge bench: {dataset.name}", {measure: rows}, plot_files, settings, note)
    return rows


def _plot_scatter(pred: list[float], mos: list[float], m: Any, spec: str, path: Path, ds: MOSDataset) -> Path:
    from srjudge.bench.plots import scatter_with_fit

    label = "human score (DMOS, lower is better)" if not ds.higher_is_better else "human score (MOS)"
    return scatter_with_fit(pred, mos, m.fit, title=spec, path=path, ylabel=label)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
