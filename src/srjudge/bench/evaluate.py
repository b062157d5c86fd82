"""From judges' predictions to the bench's tables, plots and page (terminal, Markdown, CSV, JSON, HTML)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from srjudge.bench.bootstrap import Estimate
from srjudge.bench.datasets import BestOfNDataset, MOSDataset, PairwiseDataset
from srjudge.bench.grouped import GroupedMeasures, grouped_measures
from srjudge.bench.measures import best_of_n, instability, mos_measures, pairwise_accuracy
from srjudge.bench.page import nonempty_columns, render_bench_page, to_csv, to_markdown, write_bench_page
from srjudge.bench.run import JudgeResult, check_repeats, mean_prediction, run_judge
from srjudge.execute import Executor
from srjudge.judges.base import Judge
from srjudge.judges.vlm.stability import level_of

BENCH_SCHEMA = "srjudge.bench/1"
Dataset: TypeAlias = MOSDataset | PairwiseDataset | BestOfNDataset


GROUPED_COLUMNS = ("groups", "pairs_within", "SRCC_within", "pair_acc_within")
"""Row columns of the within-group measures (MOS datasets with a group column only)."""
GROUPED_NOTE = (
    "Within groups: only the order of items inside a group counts. SRCC_within is the mean over groups "
    "of the per-group SRCC; pair_acc_within is the share of same-group pairs with different human scores "
    "that the judge orders as people do (a judge tie counts 0.5). Groups with fewer than 2 scored items "
    "or equal human scores are skipped; 'groups' and 'pairs_within' count what was used. 95 % CIs "
    "resample whole groups."
)


def _ci(e: Estimate) -> str:
    return str(e)


def _grouped_cols(g: GroupedMeasures) -> dict[str, Any]:
    return {
        "groups": g.n_groups_used,
        "pairs_within": g.n_pairs,
        "SRCC_within": _ci(g.srcc) if g.n_groups_used else "n/a",
        "pair_acc_within": _ci(g.pair_accuracy) if g.n_pairs else "n/a",
    }


def _row_mos(
    ds: MOSDataset, r: JudgeResult, n_boot: int, seed: int
) -> tuple[dict[str, Any], Any, list[float], GroupedMeasures | None]:
    preds = [mean_prediction(r.predictions[str(item.image)]) for item in ds.items]
    keep = [i for i, p in enumerate(preds) if not math.isnan(p)]
    pred = np.array([preds[i] for i in keep])
    mos = np.array([ds.items[i].score for i in keep])
    grouped = None
    within: dict[str, Any] = {}
    if ds.grouped:  # abstentions (NaN) are dropped and counted by grouped_measures
        grouped = grouped_measures(
            preds,
            [item.score for item in ds.items],
            [str(item.group) for item in ds.items],
            higher_is_better=ds.higher_is_better,
            n_boot=n_boot,
            seed=seed,
        )
        within = _grouped_cols(grouped)
    if len(keep) < 3:  # the judge abstained (or failed) on nearly every item: nothing to correlate
        blank = {k: "n/a" for k in ("SRCC", "KRCC", "PLCC", "RMSE")}
        return (
            {
                "judge": r.spec,
                "n": len(keep),
                "abstained": r.abstained(),
                **blank,
                "fit": "-",
                **within,
                "level_flip_rate": None,
                **r.cost_row(),
            },
            None,
            list(pred),
            grouped,
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
        **within,
        "level_flip_rate": inst.level_flip_rate,
        "score_spread": None if inst.score_spread is None else round(inst.score_spread, 4),
        **r.cost_row(),
    }
    return row, m, list(pred), grouped


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
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run every judge on the dataset and write table.{md,csv,json}, plots and index.html.

    ``executor`` (default: this process) scores the items of each judge in turn (see :func:`run_judge`).

    On a MOS dataset with groups each row also holds the within-group measures
    (:data:`GROUPED_COLUMNS`, defined in :data:`GROUPED_NOTE`), and table.json's details hold them
    in full under "grouped".
    """
    check_repeats(repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    plot_files: list[tuple[Path, str]] = []
    bars: list[tuple[str, Estimate]] = []
    within_bars: list[tuple[str, Estimate]] = []
    grouped_set = isinstance(dataset, MOSDataset) and dataset.grouped
    nan = Estimate(math.nan, math.nan, math.nan)
    for judge in judges:
        result = run_judge(dataset, judge, out_dir, repeats=repeats, progress=progress, executor=executor)
        grouped: GroupedMeasures | None = None
        if isinstance(dataset, MOSDataset):
            row, m, pred, grouped = _row_mos(dataset, result, n_boot, seed)
            bars.append((judge.spec, m.srcc if m is not None else nan))
            if grouped_set:
                within_bars.append((judge.spec, grouped.srcc if grouped is not None else nan))
            if plots and m is not None:
                mos = [
                    item.score
                    for item in dataset.items
                    if not math.isnan(mean_prediction(result.predictions[str(item.image)]))
                ]
                path = out_dir / f"scatter-{len(plot_files)}.png"
                plot_files.append(
                    (
                        _plot_scatter(pred, mos, m, judge.spec, path, dataset),
                        _scatter_caption(judge.spec, m, dataset),
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
        detail: dict[str, Any] = {
            "judge": judge.spec,
            "config_hash": result.config_hash,
            "measures": measures,
        }
        if grouped_set:
            detail["grouped"] = _jsonable(asdict(grouped)) if grouped is not None else None
        details.append(detail)
    measure = {MOSDataset: "SRCC", PairwiseDataset: "pairwise accuracy", BestOfNDataset: "top-1 agreement"}[
        type(dataset)
    ]
    if plots and bars:
        from srjudge.bench.plots import bars_with_ci

        unit = {MOSDataset: "items", PairwiseDataset: "decided pairs", BestOfNDataset: "groups"}[
            type(dataset)
        ]
        plot_files.append(
            (
                _bars(
                    bars_with_ci,
                    bars,
                    f"{measure} per judge (95 % bootstrap CI)",
                    measure,
                    out_dir / "bars.png",
                ),
                f"{measure} of each judge against the human scores (bar), with its 95 % bootstrap CI "
                f"(whiskers; {n_boot} resamples of {unit}, seed {seed}).",
            )
        )
        if within_bars:
            plot_files.append(
                (
                    _bars(
                        bars_with_ci,
                        within_bars,
                        "Within-group SRCC per judge (95 % CI)",
                        "within-group SRCC",
                        out_dir / "bars-within.png",
                    ),
                    "Mean within-group SRCC of each judge (bar): how well it orders the items of one "
                    "group as people do, with its 95 % bootstrap CI (whiskers; "
                    f"{n_boot} resamples of whole groups, seed {seed}).",
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
    if grouped_set:
        assert isinstance(dataset, MOSDataset)
        settings["groups"] = len(set(dataset.groups))
    (out_dir / "table.md").write_text(
        to_markdown(rows, nonempty_columns(rows)) + (f"\n{GROUPED_NOTE}\n" if grouped_set else "")
    )
    to_csv(rows, None, out_dir / "table.csv")
    (out_dir / "table.json").write_text(
        json.dumps({"schema": BENCH_SCHEMA, "settings": settings, "rows": rows, "details": details}, indent=2)
    )
    note = (
        "SYNTHETIC dataset: scores follow the degradation strength, not human opinion."
        if dataset.synthetic
        else "Measured against the dataset's human opinion scores."
    )
    tables: dict[str, list[dict[str, Any]]]
    notes: dict[str, str] = {}
    if grouped_set:
        main_rows = [{k: v for k, v in r.items() if k not in GROUPED_COLUMNS} for r in rows]
        within_rows = [{"judge": r["judge"], **{k: r.get(k) for k in GROUPED_COLUMNS}} for r in rows]
        within_title = "Agreement within groups"
        tables = {f"{measure} and PLCC over all items": main_rows, within_title: within_rows}
        notes[within_title] = GROUPED_NOTE
    else:
        tables = {measure: rows}
    title = f"srjudge bench: {dataset.name}"
    write_bench_page(out_dir, render_bench_page(title, tables, plot_files, settings, note, table_notes=notes))
    return rows


def _bars(
    draw: Callable[..., Path], bars: list[tuple[str, Estimate]], title: str, ylabel: str, path: Path
) -> Path:
    return draw(
        [b[0] for b in bars],
        [b[1].value for b in bars],
        [b[1].low for b in bars],
        [b[1].high for b in bars],
        title=title,
        ylabel=ylabel,
        path=path,
    )


def _scatter_caption(spec: str, m: Any, ds: MOSDataset) -> str:
    human = "DMOS (lower is better)" if not ds.higher_is_better else "MOS"
    fit = {
        "5-param": "5-parameter logistic",
        "4-param": "4-parameter logistic",
        "linear": "straight line",
    }.get(m.fit.kind, m.fit.kind)
    why = f" ({m.fit.note})" if m.fit.note else ""
    return (
        f"{spec}: judge score (x) against {human} (y), one dot per scored item (n={m.n}); the curve is the "
        f"monotone {fit} fitted for PLCC and RMSE{why}. SRCC {m.srcc.value:.3f}, PLCC {m.plcc.value:.3f}."
    )


def _plot_scatter(pred: list[float], mos: list[float], m: Any, spec: str, path: Path, ds: MOSDataset) -> Path:
    from srjudge.bench.plots import scatter_with_fit

    label = "human score (DMOS, lower is better)" if not ds.higher_is_better else "human score (MOS)"
    return scatter_with_fit(
        pred, mos, m.fit, title=spec, path=path, ylabel=label, higher_is_better=ds.higher_is_better
    )


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
