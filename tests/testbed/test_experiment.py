"""The testbed experiment: measures on hand-made cases, and `srjudge testbed build` + `run` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import srjudge.cli.testbed_cmd  # noqa: F401  (registers `srjudge testbed`)
from srjudge.bench.store import JsonlStore
from srjudge.cli.common import app
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.io import load_image
from srjudge.spec import iter_specs
from srjudge.testbed.candidates import CandidateCache, Item, ensure_candidates
from srjudge.testbed.measures import (
    ItemFacts,
    Pick,
    baseline_measures,
    candidate_measures,
    judge_measures,
    outcome,
)
from srjudge.testbed.results import ExperimentConfig, backend_specs


def _facts() -> list[ItemFacts]:
    """Four items, three candidates each (two diffusion samples and bicubic), readings chosen by hand."""
    d, b = "diffusion", "bicubic"
    return [
        # item a: truth 3; sample 0 reads 3, sample 1 confidently reads 8, bicubic unclear
        ItemFacts("a", "3", 3, "font", (d, d, b), ("3", "8", "8"), (0.9, 0.8, 0.3), (60.0, 50.0, 40.0)),
        # item b: truth 7; every candidate correct
        ItemFacts("b", "7", 0, "font", (d, d, b), ("7", "7", "7"), (0.99, 0.95, 0.9), (70.0, 70.0, 40.0)),
        # item c: truth O; no candidate correct, all confident Q
        ItemFacts("c", "O", 3, "font", (d, d, b), ("Q", "Q", "Q"), (0.9, 0.9, 0.6), (55.0, 50.0, 45.0)),
        # item d: truth B; one unreadable sample, one correct, bicubic correct
        ItemFacts(
            "d", "B", 0, "sklearn-digits", (d, d, b), (None, "B", "B"), (0.0, 0.7, 0.6), (30.0, 65.0, 41.0)
        ),
    ]


def test_outcome_definitions() -> None:
    """Correct needs the true label; a wrong label is a hallucination only when read confidently."""
    assert outcome("3", 0.1, "3") == "correct"
    assert outcome("8", 0.5, "3") == "hallucinated"
    assert outcome("8", 0.49, "3") == "unclear"
    assert outcome(None, 0.0, "3") == "unclear"
    assert outcome("8", 0.6, "3", threshold=0.7) == "unclear"


def test_judge_measures_on_hand_made_picks() -> None:
    """Top-1 accuracy, hallucination, fused accuracy and pick TWS equal the counts done by hand."""
    facts = _facts()
    picks = {
        "a": Pick("a", 1, "8", 0.8, (1, 0), "3", 0.7, tws=50.0),  # hallucinated pick, fusion repairs it
        "b": Pick("b", 0, "7", 0.99, (0, 1), "7", 0.9, tws=70.0),
        "c": Pick("c", 2, "Q", 0.6, (2,), "Q", 0.6, tws=45.0),  # hallucinated (no correct candidate)
        "d": Pick("d", None, None, 0.0, abstained_candidates=3),  # judge abstained on every candidate
    }
    m = judge_measures("j", facts, picks, n_boot=200, seed=1)
    assert m.n == 4 and m.abstained == 1
    assert m.top1_accuracy.value == pytest.approx(1 / 4)
    assert m.hallucination is not None and m.hallucination.value == pytest.approx(2 / 4)
    assert m.fused_accuracy is not None and m.fused_accuracy.value == pytest.approx(2 / 4)
    assert m.fused_hallucination is not None and m.fused_hallucination.value == pytest.approx(1 / 4)
    assert m.tws is not None and m.tws.value == pytest.approx((50 + 70 + 45) / 3)  # abstention has no TWS
    row = m.to_row()
    assert row["top1_accuracy"] == pytest.approx(0.25) and row["abstained"] == 1


def test_random_and_oracle_baselines_are_exact() -> None:
    """Random = mean over candidates per item (no sampling); oracle = any candidate correct."""
    facts = _facts()
    r = baseline_measures("random", facts, n_boot=100, seed=0)
    expected = np.mean([1 / 3, 1.0, 0.0, 2 / 3])
    assert r.top1_accuracy.value == pytest.approx(expected)
    # confident wrong: a: 1 of 3 (bicubic 8 at 0.3 is unclear); c: 3 of 3
    assert r.hallucination is not None and r.hallucination.value == pytest.approx(np.mean([1 / 3, 0, 1, 0]))
    assert r.tws is not None and r.tws.value == pytest.approx(np.mean([50, 60, 50, 136 / 3]))
    o = baseline_measures("oracle", facts, n_boot=100, seed=0)
    assert o.top1_accuracy.value == pytest.approx(3 / 4)
    assert o.hallucination is not None and o.hallucination.value == pytest.approx(1 / 4)  # item c only


def test_candidate_measures_per_backend() -> None:
    """Diffusion wrong-symbol rate and disagreement are counted per item, bicubic separately."""
    facts = _facts()
    d = candidate_measures(facts, "diffusion", n_boot=100, seed=0)
    assert d is not None and d.n_items == 4 and d.n_candidates == 8
    assert d.accuracy.value == pytest.approx(np.mean([0.5, 1.0, 0.0, 0.5]))
    assert d.wrong_symbol.value == pytest.approx(np.mean([0.5, 0.0, 1.0, 0.0]))
    assert d.items_with_wrong.value == pytest.approx(2 / 4)
    assert d.items_disagreeing.value == pytest.approx(2 / 4)  # a (3 vs 8) and d (None vs B)
    b = candidate_measures(facts, "bicubic", n_boot=100, seed=0)
    assert b is not None and b.n_candidates == 4 and b.accuracy.value == pytest.approx(2 / 4)
    assert candidate_measures(facts, "realesrgan") is None


def test_bootstrap_interval_contains_estimate_and_is_seeded() -> None:
    """The 95 % interval brackets the point estimate, is reproducible per seed and changes with it."""
    rng = np.random.default_rng(3)
    facts = []
    picks = {}
    for i in range(60):
        truth = "3"
        label = "3" if rng.random() < 0.6 else "8"
        facts.append(ItemFacts(f"i{i}", truth, i % 4, "font", ("diffusion",), (label,), (0.9,), (50.0,)))
        picks[f"i{i}"] = Pick(f"i{i}", 0, label, 0.9, (0,), label, 0.9, tws=50.0)
    a = judge_measures("j", facts, picks, n_boot=500, seed=7)
    b = judge_measures("j", facts, picks, n_boot=500, seed=7)
    c = judge_measures("j", facts, picks, n_boot=500, seed=8)
    assert a.top1_accuracy.low <= a.top1_accuracy.value <= a.top1_accuracy.high
    assert a.top1_accuracy.high - a.top1_accuracy.low > 0.05
    assert a.top1_accuracy == b.top1_accuracy
    assert (c.top1_accuracy.low, c.top1_accuracy.high) != (a.top1_accuracy.low, a.top1_accuracy.high)
    none = judge_measures("j", facts, picks, n_boot=0, seed=7)
    assert math.isnan(none.top1_accuracy.low) and none.top1_accuracy.value == a.top1_accuracy.value


def test_config_and_spec_errors() -> None:
    """Bad settings fail with a SpecError naming the option; ';' separates specs that hold commas."""
    with pytest.raises(SpecError, match="--fusion"):
        ExperimentConfig(fusion="max")
    with pytest.raises(SpecError, match="--samples"):
        ExperimentConfig(samples=0)
    with pytest.raises(SpecError, match="twice"):
        ExperimentConfig(judges=("trust", "trust"))
    assert list(iter_specs("trust, lr-psnr")) == ["trust", "lr-psnr"]


def test_steps_go_to_every_backend_that_declares_a_steps_option() -> None:
    """--steps is written into the specs of backends whose registration declares ``steps`` (and not
    into one that sets it itself); with no such backend it is an error."""
    config = ExperimentConfig(backends=("diffusion", "diffusion:steps=9", "diffusers:/m", "bicubic"), steps=4)
    assert backend_specs(config) == (
        "diffusion:steps=4",
        "diffusion:steps=9",
        "diffusers:/m,steps=4",
        "bicubic",
    )
    assert backend_specs(ExperimentConfig(backends=("bicubic",))) == ("bicubic",)
    with pytest.raises(SpecError, match="--steps 4"):
        backend_specs(ExperimentConfig(backends=("bicubic",), steps=4))
    assert list(iter_specs("vlm:hf,model=/m;trust")) == ["vlm:hf,model=/m", "trust"]


def test_jsonl_store_resumes_and_skips_cut_lines(tmp_path: Path) -> None:
    """Rows of the same configuration are reused; a cut last line is dropped and other configurations
    are ignored; the next row after a cut line starts on a line of its own."""
    path = tmp_path / "picks.jsonl"
    store = JsonlStore(path, "h1")
    store.put("a", {"pick": 1})
    store.close()
    with path.open("a") as fh:
        fh.write(json.dumps({"key": "b", "config_hash": "other", "pick": 2}) + "\n")
        fh.write('{"key": "c", "config_ha')
    again = JsonlStore(path, "h1")
    assert again.get("a") == {"key": "a", "config_hash": "h1", "pick": 1}
    assert again.get("b") is None and again.get("c") is None
    again.put("c", {"pick": 3})
    again.close()
    third = JsonlStore(path, "h1")
    assert third.get("c") == {"key": "c", "config_hash": "h1", "pick": 3}
    third.close()
    assert len(path.read_text().splitlines()) == 3


def test_jsonl_store_rejects_a_bad_line_before_the_last(tmp_path: Path) -> None:
    """Only an unterminated last line is an interrupted write; a bad complete line names file and line."""
    path = tmp_path / "readings.jsonl"
    good = json.dumps({"key": "a", "config_hash": "h1"})
    path.write_text(good + "\n" + "not json\n" + good + "\n")
    with pytest.raises(SrjudgeError, match=r"readings\.jsonl:2: not valid JSON"):
        JsonlStore(path, "h1")
    path.write_text(good + "\n" + '{"cut": ' + "\n")  # a cut line that was then terminated
    with pytest.raises(SrjudgeError, match=r"readings\.jsonl:2: "):
        JsonlStore(path, "h1")
    path.write_text(good + "\n[1, 2]\n")
    with pytest.raises(SrjudgeError, match="line 2 is not a JSON object with a 'key'"):
        JsonlStore(path, "h1")


def test_candidate_cache_is_keyed_by_the_testbed_digest(tmp_path: Path) -> None:
    """A --out folder reused with a rebuilt testbed (another digest, other LR images) makes new
    candidates instead of serving the old ones; the same digest reuses them."""
    config = ExperimentConfig(backends=("bicubic",), samples=1)
    cache = CandidateCache(tmp_path / "candidates")
    rng = np.random.default_rng(0)
    lr_a = np.round(rng.random((8, 8, 3)) * 255).astype(np.float32) / 255
    lr_b = np.round(rng.random((8, 8, 3)) * 255).astype(np.float32) / 255

    def run(lr: np.ndarray, digest: str) -> tuple[dict[str, list[tuple[Any, Path]]], int, int]:
        items = [Item("x", "3", 0, "font", None, lambda: lr)]
        return ensure_candidates(items, cache, ["bicubic"], config, scale=4, testbed=digest)

    sets, made, reused = run(lr_a, "sha256:a")
    assert (made, reused) == (1, 0)
    first = load_image(sets["x"][0][1])
    _, made, reused = run(lr_a, "sha256:a")
    assert (made, reused) == (0, 1)
    sets, made, reused = run(lr_b, "sha256:b")
    assert (made, reused) == (1, 0)
    second = load_image(sets["x"][0][1])
    assert float(np.abs(first - second).mean()) > 0.05  # made from the new LR, not the cached one


def test_cli_rejects_bad_options_clearly(tmp_path: Path) -> None:
    """A wrong option is one clear line, not a traceback."""
    result = CliRunner().invoke(
        app, ["testbed", "run", "--testbed", str(tmp_path), "--fusion", "max", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, SpecError) and "--fusion" in str(result.exception)


TINY_TESTBED = """\
classes: "38OQB17"
test_copies: 1
splits: [test]
severities: [0, 3]
sklearn_limit: 6
"""


def _invoke(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"


def test_build_and_run_end_to_end_then_resume(tmp_path: Path) -> None:
    """`testbed build` + `testbed run` on a tiny config write every output; a re-run samples nothing again.

    Real components throughout: the bundled diffusion checkpoint (2 DDIM steps to keep the test short on
    CPU), the referee and classifier readers.
    """
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TESTBED)
    testbed, out = tmp_path / "testbed", tmp_path / "run"
    _invoke(["testbed", "build", "--out", str(testbed), "--config", str(cfg), "--seed", "3"])
    run = [
        "testbed", "run", "--testbed", str(testbed), "--out", str(out),
        "--judges", "lr-psnr,readout:classifier,trust", "--samples", "3", "--limit", "6",
        "--bootstrap", "200", "--top-k", "2", "--steps", "2",
    ]  # fmt: skip
    _invoke(run)
    for name in ("table.md", "table.json", "table.csv", "candidates.csv", "index.html", "plots/accuracy.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = json.loads((out / "table.json").read_text())
    assert table["counts"] == {"items": 6, "candidates": 24, "candidates_made": 24, "candidates_reused": 0}
    assert table["settings"]["testbed"]["digest"] and table["settings"]["samples"] == 3
    assert table["settings"]["backends"] == ["diffusion:steps=2", "bicubic"]
    specs = {j["spec"]: j["status"] for j in table["judges"]}
    assert specs["lr-psnr"] == specs["trust"] == specs["readout:classifier"] == "ok"
    assert specs["lpips"] in ("ok", "needs weights")  # listed either way, never dropped
    rows = {(r["judge"], r["severity"]): r for r in table["rows"]}
    for judge in ("trust", "readout:classifier", "random", "oracle"):
        acc = rows[(judge, "all")]["top1_accuracy"]
        assert 0.0 <= acc <= rows[("oracle", "all")]["top1_accuracy"] <= 1.0
    assert {r["backend"] for r in table["candidates"]} == {"diffusion", "bicubic"}
    page = (out / "index.html").read_text()
    assert "<script" not in page and "readout:classifier" in page and "LR input" in page
    pngs = sorted((out / "candidates").rglob("*.png"))
    assert len(pngs) == 24
    stamps = {p: p.stat().st_mtime_ns for p in pngs}
    picks = sorted((out / "picks").glob("*.jsonl"))
    lines = {p: p.read_text().count("\n") for p in picks}

    rerun = [
        a if a != "lr-psnr,readout:classifier,trust" else "lr-psnr,readout:classifier,trust,tws" for a in run
    ]
    _invoke(rerun)  # the same run with one more judge: everything before is reused
    again = json.loads((out / "table.json").read_text())
    assert again["counts"]["candidates_made"] == 0 and again["counts"]["candidates_reused"] == 24
    assert {p: p.stat().st_mtime_ns for p in pngs} == stamps  # nothing re-sampled or rewritten
    assert {p: p.read_text().count("\n") for p in picks} == lines  # picks reused, not recomputed
    again_rows = {(r["judge"], r["severity"]): r for r in again["rows"]}
    assert again_rows[("trust", "all")] == rows[("trust", "all")]
    assert ("tws", "all") in again_rows


def test_compare_base_and_aligned_models_end_to_end(tmp_path: Path) -> None:
    """`testbed compare` runs both models on the same items and seeds and writes the paired table."""
    from srjudge.sr.conditional_diffusion import UNetSettings, build_unet, save_checkpoint, scheduler_config

    tiny = UNetSettings(block_out_channels=(8, 16), norm_num_groups=8, attention_head_dim=8, attention=False)
    other = tmp_path / "other-model"
    save_checkpoint(other, build_unet(tiny, seed=1), scheduler_config())
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TESTBED)
    testbed, out = tmp_path / "testbed", tmp_path / "compare"
    _invoke(["testbed", "build", "--out", str(testbed), "--config", str(cfg), "--seed", "3"])
    _invoke([
        "testbed", "compare", "--testbed", str(testbed), "--aligned", f"diffusion:{other}",
        "--judges", "lr-psnr,readout:classifier", "--samples", "2", "--limit", "4", "--steps", "2",
        "--bootstrap", "50", "--out", str(out),
    ])  # fmt: skip
    for name in ("compare.md", "compare.json", "compare.csv", "samples.png", "index.html", "base/table.json"):
        assert (out / name).is_file(), name
    data = json.loads((out / "compare.json").read_text())
    rows = {(r["group"], r["measure"]): r for r in data["rows"]}
    assert data["base"]["backends"] == ["diffusion:steps=2"]
    assert data["aligned"]["backends"] == [f"diffusion:{other},steps=2"]
    for measure in (
        "wrong",
        "hallucinated",
        "lr_psnr",
        "spread",
        "distinct",
        "oracle",
        "top1:readout:classifier",
        "bicubic_wrong",
    ):
        row = rows[("all", measure)]
        assert row["n"] == 4 and row["delta"] == pytest.approx(row["aligned"] - row["base"], abs=2e-6)
    reference = rows[("all", "bicubic_wrong")]  # of the LR inputs, not of a model: the same for both
    assert reference["base"] == reference["aligned"] and reference["delta"] == 0.0
    # the random tiny model draws noise: the referee reads nearly nothing right, the trained one does
    assert rows[("all", "wrong")]["aligned"] >= rows[("all", "wrong")]["base"]
    assert load_image(out / "samples.png").shape[1] > 5 * 32
