"""``srjudge bench`` end to end on the synthetic sets: measures, outputs, resume, abstentions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srjudge.bench.datasets import load_dataset
from srjudge.bench.evaluate import run_bench
from srjudge.bench.synthetic import make_synthetic
from srjudge.judges import create_judge


@pytest.fixture(scope="module")
def mos_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("bench") / "mos", "mos", seed=0)


def test_mos_bench_writes_every_output_and_resumes(mos_set: Path, tmp_path: Path) -> None:
    data = load_dataset(mos_set)
    judges = [create_judge("psnr"), create_judge("niqe")]
    rows = run_bench(data, judges, tmp_path, n_boot=100)
    by = {r["judge"]: r for r in rows}
    # PSNR against the HR reference follows the synthetic strength (nearest and over-sharpened variants
    # are given strengths by fiat, so the agreement is far from perfect).
    assert float(by["psnr"]["SRCC"].split()[0]) > 0.3
    # NIQE cannot score 128x128 images: every item abstains, and the row says so instead of crashing.
    assert by["niqe"]["abstained"] == len(data.items) and by["niqe"]["SRCC"] == "n/a"
    for name in ("table.md", "table.csv", "table.json", "index.html", "bars.png", "scatter-0.png"):
        assert (tmp_path / name).is_file(), name
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["schema"] == "srjudge.bench/1" and table["settings"]["synthetic"] is True
    assert "SYNTHETIC" in (tmp_path / "index.html").read_text()
    again = run_bench(data, [create_judge("psnr")], tmp_path, n_boot=100)
    assert again[0]["reused_scores"] == len(data.items) and again[0]["SRCC"] == by["psnr"]["SRCC"]


@pytest.mark.parametrize("kind,measure", [("pairwise", "accuracy"), ("best-of-n", "top1_agreement")])
def test_pairwise_and_best_of_n(tmp_path: Path, kind: str, measure: str) -> None:
    data = load_dataset(make_synthetic(tmp_path / kind, kind, seed=0))  # type: ignore[arg-type]
    [row] = run_bench(
        data, [create_judge("psnr" if kind == "pairwise" else "trust")], tmp_path / "out", n_boot=100
    )
    value = float(str(row[measure]).split()[0])
    assert 0.0 <= value <= 1.0


def test_repeats_and_bad_repeats(mos_set: Path, tmp_path: Path) -> None:
    from srjudge.errors import SrjudgeError

    data = load_dataset(mos_set)
    [row] = run_bench(data, [create_judge("sharpness")], tmp_path, repeats=2, n_boot=50, plots=False)
    assert row["level_flip_rate"] == 0.0  # a deterministic judge never flips
    with pytest.raises(SrjudgeError, match="--repeats"):
        run_bench(data, [create_judge("sharpness")], tmp_path, repeats=0)
