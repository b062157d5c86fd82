"""Grouped MOS datasets: within-group measures (group bootstrap), the monotone PLCC fit, outputs, CLI."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from srjudge.bench import bootstrap as B
from srjudge.bench import fitting as F
from srjudge.bench import grouped as G
from srjudge.bench import measures as M
from srjudge.bench.dataset_files import DatasetError
from srjudge.bench.datasets import MOSDataset, load_dataset
from srjudge.bench.evaluate import GROUPED_COLUMNS, run_bench
from srjudge.bench.page import is_numeric_text, nonempty_columns, render_bench_page, table_html
from srjudge.bench.synthetic import make_synthetic
from srjudge.judges import create_judge

# ---------------------------------------------------------------------------------------------------
# Within-group measures: hand-made cases


def test_perfect_within_group_order_despite_group_offsets() -> None:
    # Inside every group the judge orders the items exactly as people do, but its scale is shifted per
    # group (group b gets the highest scores and the lowest human scores): the global order is broken.
    human = [4, 5, 6, 1, 2, 3, 7, 8, 9]
    pred = [10, 20, 30, 40, 50, 60, 0, 1, 2]
    groups = ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert F.srcc(pred, human) < 0
    assert G.within_group_srcc(pred, human, groups) == pytest.approx(1.0)
    assert G.within_group_pairwise(pred, human, groups) == pytest.approx(1.0)
    g = G.grouped_measures(pred, human, groups, n_boot=200)
    assert (g.n_items, g.n_groups, g.n_groups_used, g.n_pairs, g.n_judge_ties) == (9, 3, 3, 9, 0)
    assert g.srcc == B.Estimate(1.0, 1.0, 1.0) and g.pair_accuracy == B.Estimate(1.0, 1.0, 1.0)


def test_reversed_within_group_order() -> None:
    human = [1, 2, 3, 10, 20]
    pred = [3, 2, 1, 0.5, 0.1]
    groups = ["x", "x", "x", "y", "y"]
    assert G.within_group_srcc(pred, human, groups) == pytest.approx(-1.0)
    assert G.within_group_pairwise(pred, human, groups) == pytest.approx(0.0)


def test_dmos_direction() -> None:
    human = [1, 2, 3, 10, 20]
    pred = [3, 2, 1, 0.5, 0.1]  # higher prediction, lower DMOS: a perfect judge of DMOS
    groups = ["x", "x", "x", "y", "y"]
    assert G.within_group_srcc(pred, human, groups, higher_is_better=False) == pytest.approx(1.0)
    assert G.within_group_pairwise(pred, human, groups, higher_is_better=False) == pytest.approx(1.0)


def test_judge_ties_count_half_and_human_ties_are_left_out() -> None:
    # Group p: pairs (0,1) judge tie -> 0.5, (0,2) right -> 1, (1,2) right -> 1.
    # Group q: people tie items 3 and 4 (pair left out); (3,5) and (4,5) both right.
    human = [1, 2, 3, 1, 1, 2]
    pred = [1, 1, 2, 2, 1, 3]
    groups = ["p", "p", "p", "q", "q", "q"]
    g = G.grouped_measures(pred, human, groups, n_boot=0)
    assert g.n_pairs == 3 + 2 and g.n_judge_ties == 1
    assert g.pair_accuracy.value == pytest.approx((2.5 + 2.0) / 5)
    assert g.judge_tie_credit == 0.5
    assert math.isnan(g.pair_accuracy.low) and math.isnan(g.srcc.high)  # no resamples, no CI
    expected = (
        stats.spearmanr([1, 1, 2], [1, 2, 3]).statistic + stats.spearmanr([2, 1, 3], [1, 1, 2]).statistic
    ) / 2
    assert g.srcc.value == pytest.approx(expected)
    # A judge that scores a whole group equal: every pair is a tie (0.5) and its SRCC counts 0.
    flat = G.grouped_measures([5, 5, 5], [1, 2, 3], ["g"] * 3, n_boot=0)
    assert flat.pair_accuracy.value == pytest.approx(0.5) and flat.srcc.value == 0.0
    assert flat.n_judge_ties == 3


def test_groups_of_one_and_constant_groups_are_skipped() -> None:
    human = [1, 2, 3, 5, 4, 4, 4]
    pred = [1, 2, 3, 0, 9, 1, 5]
    groups = ["a", "a", "a", "single", "flat", "flat", "flat"]
    g = G.grouped_measures(pred, human, groups, n_boot=50)
    assert (g.n_groups, g.n_groups_used, g.n_pairs) == (3, 1, 3)
    assert g.srcc.value == pytest.approx(1.0) and g.pair_accuracy.value == pytest.approx(1.0)
    assert g.to_row()["groups_skipped"] == 2
    none_used = G.grouped_measures([1, 2], [3, 3], ["a", "a"], n_boot=50)
    assert none_used.n_groups_used == 0 and none_used.n_pairs == 0
    assert math.isnan(none_used.srcc.value) and math.isnan(none_used.pair_accuracy.value)
    assert math.isnan(G.within_group_srcc([1], [1], ["a"]))


def test_abstentions_are_dropped_and_counted() -> None:
    human = [1, 2, 3, 1, 2]
    pred: list[float | None] = [1, None, 3, float("nan"), 2]
    groups = ["a", "a", "a", "b", "b"]
    g = G.grouped_measures(pred, human, groups, n_boot=20)
    # Group a keeps items 0 and 2 (one pair, right); group b keeps one item and is skipped.
    assert (g.n_items, g.n_abstained, g.n_groups, g.n_groups_used, g.n_pairs) == (3, 2, 2, 1, 1)
    assert g.pair_accuracy.value == 1.0 and g.srcc.value == pytest.approx(1.0)
    assert G.within_group_pairwise(np.array([1.0, np.nan, 3.0]), [1, 2, 3], ["a"] * 3) == 1.0


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="lengths differ"):
        G.grouped_measures([1, 2], [1, 2, 3], ["a", "a", "a"])
    with pytest.raises(ValueError, match="human scores"):
        G.within_group_srcc([1, 2], [1, float("nan")], ["a", "a"])
    with pytest.raises(ValueError, match="finite"):
        G.within_group_srcc([1, float("inf")], [1, 2], ["a", "a"])
    with pytest.raises(ValueError, match="group"):
        G.within_group_srcc([1, 2], [1, 2], ["a", None])  # type: ignore[list-item]


def test_bootstrap_resamples_groups_not_items() -> None:
    # Group A: 3 items in the human order (SRCC 1, 3 pairs right); group B: 2 items reversed (SRCC -1,
    # its one pair wrong). Point values: SRCC (1 - 1) / 2 = 0, pairwise accuracy 3 / 4.
    human = [1.0, 2.0, 3.0, 1.0, 2.0]
    pred = [1.0, 2.0, 3.0, 2.0, 1.0]
    groups = ["A", "A", "A", "B", "B"]
    n_boot, seed = 400, 11
    g = G.grouped_measures(pred, human, groups, n_boot=n_boot, seed=seed)
    assert g.srcc.value == pytest.approx(0.0) and g.pair_accuracy.value == pytest.approx(0.75)
    # The same CI by hand: draw the 2 groups with replacement with the same generator.
    idx = B.boot_indices(2, n_boot, seed)
    per_srcc, per_credit, per_pairs = np.array([1.0, -1.0]), np.array([3.0, 0.0]), np.array([3.0, 1.0])
    srcc_boot = per_srcc[idx].mean(axis=1)
    pair_boot = per_credit[idx].sum(axis=1) / per_pairs[idx].sum(axis=1)
    lo, hi = np.quantile(srcc_boot, [0.025, 0.975])
    assert (g.srcc.low, g.srcc.high) == (pytest.approx(lo), pytest.approx(hi))
    lo, hi = np.quantile(pair_boot, [0.025, 0.975])
    assert (g.pair_accuracy.low, g.pair_accuracy.high) == (pytest.approx(lo), pytest.approx(hi))
    # A group resample holds AA, AB or BB: the bounds are among {-1, 0, 1} and {0, 3/4, 1}.
    assert (g.srcc.low, g.srcc.high) == (pytest.approx(-1.0), pytest.approx(1.0))
    assert (g.pair_accuracy.low, g.pair_accuracy.high) == (pytest.approx(0.0), pytest.approx(1.0))
    # Resampling ITEMS instead gives other values (e.g. group A drawn as items 1, 1, 3: 2 pairs, B: 1).
    rng = np.random.default_rng(seed)
    item_boot = []
    for rows in rng.integers(0, 5, size=(n_boot, 5)):
        value = G.within_group_pairwise(
            [pred[i] for i in rows], [human[i] for i in rows], [groups[i] for i in rows]
        )
        if not math.isnan(value):
            item_boot.append(round(value, 6))
    assert set(item_boot) - {0.0, 0.75, 1.0}
    assert not {round(v, 6) for v in pair_boot} - {0.0, 0.75, 1.0}
    assert not {round(v, 6) + 0.0 for v in srcc_boot} - {-1.0, 0.0, 1.0}


def test_grouped_measures_are_deterministic() -> None:
    rng = np.random.default_rng(2)
    groups = [f"g{i // 6}" for i in range(60)]
    human = rng.normal(size=60)
    pred = human + rng.normal(scale=1.0, size=60)
    a = G.grouped_measures(pred, human, groups, n_boot=300, seed=5)
    assert a == G.grouped_measures(list(pred), list(human), groups, n_boot=300, seed=5)
    assert a != G.grouped_measures(pred, human, groups, n_boot=300, seed=6)
    for est in (a.srcc, a.pair_accuracy):
        assert est.low <= est.value <= est.high and est.high > est.low
    assert a.n_groups_used == 10 and a.n_pairs == 10 * 15
    row = a.to_row()
    assert {"groups", "pairs", "srcc_within", "srcc_within_lo", "pair_acc_within_hi"} <= set(row)


def test_large_group_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    n = 700  # more than one block of pairs per group with a small block size
    human = rng.integers(0, 5, n).astype(float)
    pred = rng.integers(0, 7, n).astype(float)
    right = ties = pairs = 0
    for i in range(n):
        for j in range(i + 1, n):
            if human[i] == human[j]:
                continue
            pairs += 1
            if pred[i] == pred[j]:
                ties += 1
            elif (pred[i] > pred[j]) == (human[i] > human[j]):
                right += 1
    old = G._PAIR_BLOCK
    try:
        G._PAIR_BLOCK = 5000
        g = G.grouped_measures(pred, human, ["one"] * n, n_boot=0)
    finally:
        G._PAIR_BLOCK = old
    assert g.n_pairs == pairs and g.n_judge_ties == ties
    assert g.pair_accuracy.value == pytest.approx((right + 0.5 * ties) / pairs)
    assert g.srcc.value == pytest.approx(stats.spearmanr(pred, human).statistic)


# ---------------------------------------------------------------------------------------------------
# The monotone fit behind PLCC


def _hump(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A rise then a longer fall (the 5-param logistic's own shape with a negative linear term)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 100, 60)
    y = F.LogisticFit("5-param", (60.0, 0.3, 20.0, -0.8, 50.0))(x) + rng.normal(0, 2, x.size)
    return x, y


def _falls_against(fit: F.LogisticFit, x: np.ndarray, direction: int) -> float:
    grid = np.linspace(x.min(), x.max(), 4001)
    v = direction * fit(grid)
    return float(np.max(np.maximum.accumulate(v) - v))


def test_hump_no_longer_gives_plcc_against_srcc() -> None:
    x, y = _hump()
    srcc = F.srcc(x, y)
    assert srcc < 0
    # The unconstrained VQEG logistic fits the hump: PLCC would be ~0.99 with SRCC negative.
    p0 = (float(np.ptp(y)), 2.0 / float(np.std(x)), float(np.mean(x)), 0.0, float(np.mean(y)))
    params, _ = curve_fit(lambda t, *b: F.LogisticFit("5-param", b)(t), x, y, p0=p0, maxfev=20000)
    assert stats.pearsonr(F.LogisticFit("5-param", tuple(params))(x), y).statistic > 0.9
    # The monotone fit falls (as SRCC says) and PLCC has the sign of SRCC.
    fit, mapped = F.logistic_fit(x, y)
    assert fit.kind == "4-param" and "not monotone" in fit.note
    assert _falls_against(fit, x, -1) == pytest.approx(0.0, abs=1e-9)
    assert F.plcc(x, y) < 0
    m = M.mos_measures(x, y, n_boot=100, seed=1)
    assert m.plcc.value < 0 and m.fit == fit
    assert m.to_row()["fit"] == "4-param"
    np.testing.assert_allclose(mapped, fit(x))


@pytest.mark.parametrize("seed", range(8))
def test_plcc_never_has_the_opposite_sign_of_srcc(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, 40)
    centre = rng.uniform(20, 80)
    y = -((x - centre) ** 2) / 50 + rng.uniform(-0.5, 0.5) * x + rng.normal(0, 5, x.size)
    srcc = F.srcc(x, y)
    fit, _ = F.logistic_fit(x, y)
    direction = -1 if srcc < 0 else 1
    assert _falls_against(fit, x, direction) <= F.MONOTONE_TOLERANCE * np.ptp(y) + 1e-9
    plcc = F.plcc(x, y)
    assert math.isnan(plcc) or plcc * srcc >= 0, (srcc, plcc, fit)
    m = M.mos_measures(x, y, n_boot=50, seed=seed)
    assert m.plcc.value * m.srcc.value >= 0


def test_anticorrelated_judge_gets_negative_plcc() -> None:
    x = np.linspace(0, 100, 50)
    y = 100.0 / (1.0 + np.exp((x - 50.0) / 10.0))  # falls as the judge's score rises
    fit, mapped = F.logistic_fit(x, y)
    assert fit.kind == "5-param" and fit.note == ""
    assert F.plcc(x, y) == pytest.approx(-1.0, abs=1e-6)
    assert F.srcc(x, y) == pytest.approx(-1.0)
    np.testing.assert_allclose(mapped, y, atol=1e-4)


# ---------------------------------------------------------------------------------------------------
# Datasets with a group column


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_mos_dataset_with_group_column_loads(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png")
    # No dataset.json: image + mos + group is a MOS set (not best-of-N).
    (tmp_path / "d.csv").write_text("image,mos,group\na.png,3,lr1\nb.png,4, lr1 \nc.png,2,lr2\n")
    ds = load_dataset(tmp_path / "d.csv")
    assert isinstance(ds, MOSDataset) and ds.grouped
    assert ds.groups == ("lr1", "lr1", "lr2")
    lines = [{"image": "a.png", "mos": 3, "group": 7}, {"image": "b.png", "mos": 4, "group": 7}]
    (tmp_path / "j.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    ds = load_dataset(tmp_path / "j.jsonl")
    assert isinstance(ds, MOSDataset) and ds.groups == ("7", "7")


def test_empty_group_column_means_no_groups(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    (tmp_path / "d.csv").write_text("image,mos,group\na.png,3,\nb.png,4,\n")
    ds = load_dataset(tmp_path / "d.csv")
    assert isinstance(ds, MOSDataset) and not ds.grouped and ds.groups == (None, None)


def test_mixed_groups_fail_validation_with_row_numbers(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png", "d.png", "e.png")
    text = "image,mos,group\na.png,3,g1\nb.png,4,\nc.png,2,g2\nd.png,1,\ne.png,5,g2\n"
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(DatasetError) as exc:
        load_dataset(tmp_path / "d.csv")
    assert [(p.kind, p.row) for p in exc.value.problems] == [("group", 2)]
    message = str(exc.value)
    assert "3 with, 2 without" in message and "rows 2, 4 have no group" in message


def test_synthetic_grouped_mos(tmp_path: Path) -> None:
    ds = load_dataset(make_synthetic(tmp_path, "mos", seed=1, n_photos=2, levels=2, grouped=True))
    assert isinstance(ds, MOSDataset) and ds.grouped
    assert set(ds.groups) == {"astronaut", "coffee"}
    from srjudge.errors import SrjudgeError

    with pytest.raises(SrjudgeError, match="grouped"):
        make_synthetic(tmp_path / "p", "pairwise", grouped=True)


# ---------------------------------------------------------------------------------------------------
# Bench outputs and the page


@pytest.fixture(scope="module")
def grouped_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(
        tmp_path_factory.mktemp("grouped") / "data", "mos", n_photos=2, levels=3, grouped=True
    )


def test_bench_reports_within_group_measures(grouped_set: Path, tmp_path: Path) -> None:
    data = load_dataset(grouped_set)
    [row] = run_bench(data, [create_judge("psnr")], tmp_path, n_boot=100)
    assert set(GROUPED_COLUMNS) <= set(row)
    assert row["groups"] == 2 and row["pairs_within"] > 0
    assert re.fullmatch(r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", row["SRCC_within"])
    table = json.loads((tmp_path / "table.json").read_text())
    detail = table["details"][0]
    assert detail["grouped"]["n_groups_used"] == 2 and "pair_accuracy" in detail["grouped"]
    assert detail["measures"]["fit"]["kind"] in ("5-param", "4-param", "linear")
    assert table["settings"]["groups"] == 2
    md = (tmp_path / "table.md").read_text()
    assert "SRCC_within" in md and "pair_acc_within" in md and "a judge tie counts 0.5" in md
    with (tmp_path / "table.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert {"SRCC_within", "pair_acc_within", "groups", "pairs_within", "fit"} <= set(header)
    page = (tmp_path / "index.html").read_text()
    assert "Agreement within groups" in page and "<figcaption>" in page
    assert "monotone" in page and "whole groups" in page
    assert (tmp_path / "bars-within.png").is_file()


def test_ungrouped_rows_have_no_within_columns(tmp_path: Path) -> None:
    data = load_dataset(make_synthetic(tmp_path / "d", "mos", n_photos=1, levels=3))
    [row] = run_bench(data, [create_judge("psnr")], tmp_path / "out", n_boot=20, plots=False)
    assert not set(GROUPED_COLUMNS) & set(row)
    assert "grouped" not in json.loads((tmp_path / "out" / "table.json").read_text())["details"][0]


def test_page_table_is_readable() -> None:
    spec = "vlm:openai,model=Qwen/Qwen2.5-VL-7B-Instruct,protocol=perceive-infer"
    rows = [
        {"judge": spec, "n": 10, "SRCC": "-0.123 [-0.456, 0.210]", "fit": "4-param", "tokens": None},
        {"judge": "psnr", "n": 10, "SRCC": "n/a", "fit": "-", "tokens": None},
    ]
    assert nonempty_columns(rows) == ["judge", "n", "SRCC", "fit"]
    html = table_html(rows, numeric_text=True, drop_empty=True, wrap=("judge",))
    assert "tokens" not in html
    assert '<th class="num">SRCC</th>' in html and '<td class="num">-0.123 [-0.456, 0.210]</td>' in html
    assert "<wbr>" in html and 'class="wrap"' in html
    assert "vlm:<wbr>openai,<wbr>model=<wbr>Qwen/<wbr>Qwen2.5-<wbr>VL-<wbr>" in html
    assert is_numeric_text("0.5 [0.1, 0.9]") and is_numeric_text("n/a") and not is_numeric_text("psnr")
    page = render_bench_page("t", {"x": rows}, [], {}, "note", table_notes={"x": "what the table means"})
    data_rule = re.search(r"table\.data th,table\.data td\{[^}]*\}", page)
    assert data_rule is not None and "anywhere" not in data_rule.group(0)  # no letter-by-letter columns
    assert "white-space:nowrap" in page and "overflow-x:auto" in page
    assert "what the table means" in page


def test_page_plots_have_captions(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "b.png"
    Image.new("RGB", (4, 4), "white").save(png)
    page = render_bench_page("t", {}, [(png, "SRCC per judge <with CI>")], {}, "")
    assert "<figure>" in page
    assert "<figcaption>SRCC per judge &lt;with CI&gt;</figcaption>" in page
    assert 'alt="SRCC per judge &lt;with CI&gt;"' in page


# ---------------------------------------------------------------------------------------------------
# CLI


def test_cli_bench_prints_within_group_figures(grouped_set: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "srjudge.cli.main",
            "bench",
            "--dataset",
            str(grouped_set.parent),
            "--judges",
            "psnr",
            "--bootstrap",
            "50",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Agreement within groups (2 groups in the dataset)" in out
    for header in ("SRCC_within", "pair_acc_within", "pairs_within", "fit"):
        assert header in out
    [row] = json.loads((tmp_path / "out" / "table.json").read_text())["rows"]
    value, ci = row["SRCC_within"].split(" ", 1)
    assert value in out and ci in out  # the estimate and its CI, never cut
    assert "a judge tie counts 0.5" in out
