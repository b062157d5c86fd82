"""``srjudge fit``: grouped CV that never splits a group, models that recover a known truth, and the
``fitted:PATH`` judge round-tripping through its file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import q8
from srjudge.bench.datasets import load_dataset
from srjudge.errors import SrjudgeError
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.sr import classical
from srjudge.train.fit import (
    FeatureTable,
    evaluate_predictions,
    extract_features,
    fit_judge,
    fit_pairwise_logistic,
    group_folds,
    judge_file,
)


def test_group_folds_never_split_a_group_and_are_seeded() -> None:
    groups = [f"g{i // 3}" for i in range(30)]  # ten groups of three
    folds = group_folds(groups, 4, seed=7)
    assert sorted(np.concatenate(folds).tolist()) == list(range(30))
    for fold in folds:
        for other in folds:
            if fold is not other:
                assert not {groups[i] for i in fold} & {groups[i] for i in other}
    assert [f.tolist() for f in folds] == [f.tolist() for f in group_folds(groups, 4, seed=7)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in group_folds(groups, 4, seed=8)]
    with pytest.raises(SrjudgeError, match="at least 2 groups"):
        group_folds(["only"] * 5, 3, seed=0)


def _synthetic_table(n_groups: int = 12, per: int = 5, seed: int = 0) -> FeatureTable:
    """People follow feature 'good' (minus half of 'bad'); 'noise' is irrelevant."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_groups * per, 3))
    mos = x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.05, size=len(x))
    groups = tuple(f"g{i // per}" for i in range(len(x)))
    pairs = tuple(
        (i, j, 1.0 if mos[i] > mos[j] else 0.0, 1.0)
        for i in range(len(x))
        for j in range(i + 1, len(x))
        if groups[i] == groups[j]
    )
    return FeatureTable(("a.good", "a.bad", "a.noise"), x, groups, pairs, mos, True)


def test_pairwise_logistic_recovers_the_known_direction() -> None:
    table = _synthetic_table()
    model = fit_pairwise_logistic(table.values, table.pairs, table.names, l2=0.01)
    w = model.weights * 1.0
    assert w[0] > 0 and w[1] < 0 and abs(w[2]) < 0.3 * abs(w[0])
    assert -0.8 < w[1] / w[0] < -0.2  # the truth is -0.5; a logistic link on hard labels bends it


def test_cross_validated_fit_beats_its_weaker_inputs() -> None:
    table = _synthetic_table()
    result = fit_judge(table, ["a"], folds=4, seed=0, l2=0.01)
    assert np.isfinite(result.cv_predictions).all() and result.dropped_images == 0
    fitted = evaluate_predictions(table, result.cv_predictions, n_boot=200, seed=0)
    alone = evaluate_predictions(table, table.values[:, 0], n_boot=200, seed=0)
    assert fitted["measure"] == "within-group pairwise accuracy"
    assert fitted["value"] > 0.95 > alone["value"]
    assert fitted["low"] <= fitted["value"] <= fitted["high"] and fitted["groups"] == 12


def test_ungrouped_mos_fits_ridge_and_is_measured_by_srcc() -> None:
    grouped = _synthetic_table()
    table = FeatureTable(
        grouped.names, grouped.values, tuple(f"item{i}" for i in range(60)), (), grouped.mos, True
    )
    result = fit_judge(table, ["a"], folds=5, seed=0, l2=0.01)
    assert result.model.kind == "ridge" and result.target_range is not None
    raw_units = result.model.weights / result.model.std  # MOS = good - 0.5 bad + noise
    assert raw_units[0] == pytest.approx(1.0, abs=0.05) and raw_units[1] == pytest.approx(-0.5, abs=0.05)
    measured = evaluate_predictions(table, result.cv_predictions, n_boot=100, seed=0)
    assert measured["measure"] == "SRCC" and measured["value"] > 0.95


def _mos_dataset(tmp: Path) -> Path:
    """Three photos x five outputs; 'people' prefer real detail and punish blur and blocks."""
    from srjudge.images.samples import bundled_photo

    rows = []
    for photo in ("astronaut", "chelsea", "coffee"):
        hr = bundled_photo(photo, size=128)
        lr = q8(imresize(hr, 0.25))
        save_png(tmp / f"{photo}_lr.png", lr)
        bic = classical.bicubic(lr, 4)
        outputs = {
            "truth": (hr, 4.6),
            "good": (q8(0.7 * hr + 0.3 * bic), 4.0),
            "bicubic": (bic, 3.0),
            "soft": (q8(0.5 * bic + 0.5 * imresize(imresize(bic, 0.5), 2.0)), 2.2),
            "nearest": (classical.nearest(lr, 4), 1.5),
        }
        for name, (image, mos) in outputs.items():
            save_png(tmp / f"{photo}_{name}.png", image)
            rows.append([f"{photo}_{name}.png", mos, f"{photo}_lr.png", photo])
    with (tmp / "mos.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "mos", "lr", "group"])
        writer.writerows(rows)
    return tmp / "mos.csv"


def test_fitted_judge_round_trips_through_its_file(tmp_path: Path) -> None:
    data = load_dataset(_mos_dataset(tmp_path))
    judges = [create_judge("trust"), create_judge("lr-psnr")]
    table = extract_features(data, judges)
    assert "trust.detail" in table.names and "lr-psnr.score" in table.names
    result = fit_judge(table, [j.spec for j in judges], folds=3, seed=0, l2=0.1)
    doc = judge_file(result, dataset=data, digest="x" * 64, folds=3, seed=0, l2=0.1)
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(doc))
    judge = create_judge(f"fitted:{path}")
    items = [i for i in data.items if i.group == "chelsea"]
    from srjudge.images.io import load_image

    images = [load_image(i.image) for i in items]
    verdicts = judge.score_many(images, lr=load_image(items[0].lr))  # type: ignore[arg-type]
    usable = [i for i, g in enumerate(table.groups) if g == "chelsea"]
    expected = result.model.raw(table.values[usable][:, [table.names.index(n) for n in result.model.names]])
    assert [v.raw for v in verdicts] == pytest.approx(expected.tolist(), abs=1e-9)
    assert all(0 <= (v.score or -1) <= 100 and v.contributions for v in verdicts)
    best = max(range(len(items)), key=lambda k: verdicts[k].score or -1)
    assert items[best].image.name == "chelsea_truth.png"
    # The same file works wherever a judge spec does: select (with its "why") and bench.
    from srjudge.bench.evaluate import run_bench
    from srjudge.select.selection import select_best

    selection = select_best(images, [i.image.name for i in items], judge, lr=load_image(items[0].lr))  # type: ignore[arg-type]
    assert selection.result.paths[selection.chosen] == "chelsea_truth.png"
    assert selection.to_dict()["why"]  # decided by named fitted terms
    rows = run_bench(data, [judge], tmp_path / "bench", n_boot=50, plots=False)
    assert rows[0]["judge"] == f"fitted:{path}" and rows[0]["abstained"] == 0


def test_fitted_judge_rejects_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SrjudgeError, match="no such judge file"):
        create_judge(f"fitted:{tmp_path / 'missing.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "schema": "srjudge.fitted/1",
                "kind": "ridge",
                "inputs": [{"judge": "niqe", "key": "score"}],
                "mean": [0.0],
                "std": [0.0],
                "weights": [math.nan],
            }
        )
    )
    with pytest.raises(SrjudgeError, match=r"damaged.*std must be positive"):
        create_judge(f"fitted:{bad}")


def test_fit_command_writes_a_judge_and_a_cv_table(tmp_path: Path) -> None:
    from srjudge.cli.main import app

    csv_path = _mos_dataset(tmp_path)
    out = tmp_path / "fitted.json"
    args = ["fit", str(csv_path), "-j", "trust;lr-psnr", "-o", str(out), "--folds", "3", "--bootstrap", "100"]
    args += ["--cache", str(tmp_path / "features")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cached = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert len(cached) == 2 and all(name.endswith(".jsonl") for name in cached)
    before = {p: p.read_text() for p in (tmp_path / "features").iterdir()}
    first_weights = json.loads(out.read_text())["weights"]
    again = CliRunner().invoke(app, args)  # every set is in the cache: nothing is scored or appended
    assert again.exit_code == 0 and {p: p.read_text() for p in before} == before
    assert json.loads(out.read_text())["weights"] == first_weights
    assert "fitted (cross-validated)" in result.output and "within-group pairwise accuracy" in result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "srjudge.fitted/1" and doc["training"]["folds"] == 3
    assert set(doc["cv"]) == {"fitted (cross-validated)", "trust", "lr-psnr"}
    bad = CliRunner().invoke(app, ["fit", str(csv_path), "--folds", "1"])
    assert isinstance(bad.exception, SrjudgeError) and "--folds must be at least 2" in str(bad.exception)
