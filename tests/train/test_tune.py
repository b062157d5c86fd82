"""Two-stage tuning (perceive, then infer) on the tiny random Qwen2-VL: targets, prompts, training, CLI.

Random weights learn nothing useful in a few steps; these tests check that the targets are what the
perceive-infer protocol reads, that the prompts are the protocol's own, that LoRA weights move, and
that the saved folders load as judges with the scores of the model in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

import srjudge.cli.main  # the full app: with one command Typer would take `tune` as an argument
import srjudge.cli.tune_cmd  # noqa: F401  (registers `srjudge tune`)
from srjudge.cli.common import app
from srjudge.degrade import DegradationRecord, degrade_folder
from srjudge.errors import SpecError
from srjudge.images.io import save_png
from srjudge.images.samples import bundled_photo
from srjudge.judges.vlm import VLMJudge
from srjudge.judges.vlm.judge import VLMJudgeConfig
from srjudge.train.common import RECORD_NAME, LoraSettings, load_config_yaml, save_config_yaml
from srjudge.train.tune import TuneConfig, train_stage
from srjudge.train.tune_data import build_perceive_examples
from srjudge.train.tune_prompts import infer_example, perceive_example, render_prompt
from srjudge.train.tune_targets import (
    Distortion,
    degradation_distortions,
    describe_degradation,
    levels_from_scores,
    scores_from_pairs,
)
from srjudge.vlm.backends.base import create_backend
from srjudge.vlm.request import ChatRequest
from vlm_replay import ReplayBackend, with_logprobs


def _record(steps: list[dict]) -> DegradationRecord:
    named = [{"name": f"s{i}", **s} for i, s in enumerate(steps)]
    return DegradationRecord("realesrgan", 4, 0, tuple(named), (64, 64), (16, 16), "0.1.0")


def test_describe_degradation_on_hand_made_records() -> None:
    """Strength words follow the documented thresholds; stages combine; resizes are not listed."""
    rec = _record(
        [
            {"op": "blur", "kernel": "iso", "size": 21, "sigma_x": 2.0, "sigma_y": 2.0, "theta": 0.0},
            {"op": "resize", "direction": "down", "factor": 0.5, "mode": "area", "size": [32, 32]},
            {"op": "blur", "kernel": "aniso", "size": 7, "sigma_x": 1.0, "sigma_y": 4.0, "theta": 0.3},
            {"op": "noise", "type": "gaussian", "sigma": 6.0, "gray": False, "noise_seed": 1},
            {"op": "jpeg", "quality": 80},
            {"op": "jpeg", "quality": 32},
        ]
    )
    # blur: sqrt(2*2 + 1*4) = 2.83 -> severe; noise 6 -> slight; JPEG min quality 32 -> severe
    assert describe_degradation(rec) == (
        "severe blur (sigma 2.8); slight Gaussian noise (sigma 6); severe JPEG blocking (quality 32)"
    )
    mild = _record(
        [
            {"op": "blur", "kernel": "iso", "size": 7, "sigma_x": 0.3, "sigma_y": 0.3, "theta": 0.0},
            {"op": "noise", "type": "poisson", "scale": 1.0, "gray": True, "noise_seed": 2},
            {"op": "blur", "kernel": "sinc", "size": 11, "omega_c": 1.0},
            {"op": "jpeg", "quality": 95},
        ]
    )
    # blur 0.3 < 0.5 (not listed); Poisson scale 1 = sigma 11.3 -> moderate; sinc 1.0 < 1.2 -> severe ringing
    assert degradation_distortions(mild.to_dict()) == (
        Distortion("ringing", "severe", "sinc cutoff 1.00"),
        Distortion("Poisson noise", "moderate", "sigma 11"),
    )
    bicubic = _record([{"op": "bicubic", "size": [16, 16]}, {"op": "quantise", "bits": 8}])
    assert describe_degradation(bicubic) == "no visible distortions"
    with pytest.raises(SpecError, match="numeric 'quality'"):
        describe_degradation(_record([{"op": "jpeg", "quality": "high"}]))


def test_levels_from_mos_quantiles_and_pairs() -> None:
    """Equal fifths of the scores map to bad..excellent (reversed for DMOS); BT orders the pair winners."""
    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert (
        levels_from_scores(scores)
        == ["bad"] * 2 + ["poor"] * 2 + ["fair"] * 2 + ["good"] * 2 + ["excellent"] * 2
    )
    assert levels_from_scores(scores, higher_is_better=False)[0] == "excellent"
    assert levels_from_scores([3.0, 3.0, 3.0]) == ["bad"] * 3  # ties share a level
    with pytest.raises(SpecError, match="quantiles"):
        levels_from_scores(scores, (0.5, 0.4, 0.6, 0.8))
    rows = [
        {"image_a": "a", "image_b": "b", "winner": "A"},
        {"image_a": "b", "image_b": "c", "winner": "A", "p_a": 0.9},
        {"image_a": "a", "image_b": "c", "winner": "A"},
        {"image_a": "c", "image_b": "a", "winner": "B", "skipped": True},
    ]
    bt = scores_from_pairs(rows)
    assert bt["a"] > bt["b"] > bt["c"]
    with pytest.raises(SpecError, match="winner must be"):
        scores_from_pairs([{"image_a": "a", "image_b": "b", "winner": "first"}])


def test_targets_and_prompts_are_the_protocols_own(tmp_path: Path) -> None:
    """The perceive-infer judge, answering with our targets, reads them and sends exactly our prompts."""
    image = np.random.default_rng(1).random((40, 48, 3)).astype(np.float32)
    found = (Distortion("blur", "severe", "sigma 2.8"), Distortion("JPEG blocking", "slight", "quality 70"))
    stage1 = perceive_example(image, "a cat on a sofa", found, max_side=32)
    stage2 = infer_example("a cat on a sofa", [(d.label, d.severity) for d in found], "poor")

    def rule(request: ChatRequest) -> object:
        if request.template.startswith("perceive"):
            return stage1.completion
        return with_logprobs({stage2.completion: -0.05, "fair": -3.0})

    backend = ReplayBackend(rule)  # type: ignore[arg-type]
    config = VLMJudgeConfig(
        backend="replay",
        backend_options={"model": "recorded"},
        protocol="perceive-infer",
        max_side=32,
        cache="off",
    )
    verdict = VLMJudge(config, backend=backend).score(image)
    assert verdict.score is not None and verdict.tags[0] == "poor"
    assert "blur (sigma 2.8)" in verdict.tags  # severity >= moderate becomes a tag
    perceive_req, infer_req = backend.requests
    assert perceive_req.messages == stage1.messages  # text and image digest (resized to max_side 32)
    assert infer_req.messages == stage2.messages
    assert "blur (sigma 2.8) (severe); JPEG blocking (quality 70) (slight)" in infer_req.messages[-1].text()


@pytest.fixture(scope="module")
def lr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 32x32 LR images with sidecars made by srjudge.degrade, plus a MOS CSV over them."""
    root = tmp_path_factory.mktemp("tune-data")
    for name in ("astronaut", "coffee"):
        save_png(root / "hr" / f"{name}.png", bundled_photo(name, 64))
    summary = degrade_folder(root / "hr", root / "lr", scale=2, seed=3)
    assert summary.written == 2
    (root / "lr" / "mos.csv").write_text("image,mos\nastronaut.png,4.1\ncoffee.png,2.2\n")
    return root / "lr"


@pytest.fixture(scope="module")
def stage1(tiny_vlm: Path, lr_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    """Stage 1 trained for 3 steps through the library (model kept in memory)."""
    out = tmp_path_factory.mktemp("stage1")
    cfg = TuneConfig(
        base_model=str(tiny_vlm), stage="perceive", data=str(lr_folder), out_dir=str(out),
        lora=LoraSettings(r=4, alpha=8, dropout=0.0), lr=5e-2, max_steps=3, device="cpu", max_side=32,
    )  # fmt: skip
    return train_stage(cfg, build_perceive_examples(cfg), out, keep_model=True)


def test_stage1_moves_lora_and_reloads_with_the_same_scores(stage1: object, tiny_vlm: Path) -> None:
    """LoRA B matrices leave zero; the merged folder scores like the in-memory model (level protocol)."""
    out = stage1.out_dir  # type: ignore[attr-defined]
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # peft initialises B to zero
    assert stage1.steps == 3 and len(stage1.losses) == 3  # type: ignore[attr-defined]
    rec = json.loads((out / RECORD_NAME).read_text())
    assert rec["kind"] == "tune-perceive" and len(rec["metrics"]["train_loss"]) == 3
    assert rec["dataset_digest"] == stage1.dataset_digest  # type: ignore[attr-defined]

    backend = create_backend("hf", {"model": str(out)})
    config = VLMJudgeConfig(backend="hf", backend_options={"model": str(out)}, protocol="level", cache="off")
    image = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    judge = VLMJudge(config, backend=backend)
    from_disk = judge.score(image)
    backend.model = stage1.model.eval()  # type: ignore[attr-defined]  # the unmerged model in memory
    in_memory = judge.score(image)
    assert from_disk.score == pytest.approx(in_memory.score, abs=1e-4)
    assert from_disk.tags[0] == in_memory.tags[0]
    base = VLMJudge(
        VLMJudgeConfig(backend="hf", backend_options={"model": str(tiny_vlm)}, protocol="level", cache="off")
    )
    assert base.score(image).score != pytest.approx(from_disk.score, abs=1e-6)  # training changed the model

    processor = backend.processor
    example = next(iter(json.loads(line) for line in (out / "train_data.jsonl").read_text().splitlines()))
    assert json.loads(example["completion"])["content"] == "an image"
    req = ChatRequest(messages=perceive_example(image, "x", ()).messages)
    assert render_prompt(processor, req.messages) == backend.render(req)


def test_yaml_config_round_trip(tmp_path: Path) -> None:
    """TuneConfig survives YAML; unknown keys and bad stages are clear errors."""
    cfg = TuneConfig(base_model="/m", stage="infer", lora=None, level_quantiles=(0.1, 0.3, 0.6, 0.9))
    save_config_yaml(cfg, tmp_path / "t.yaml")
    assert load_config_yaml(TuneConfig, tmp_path / "t.yaml") == cfg
    (tmp_path / "bad.yaml").write_text("learning_rate: 0.1\n")
    with pytest.raises(SpecError, match="did you mean 'lr'"):
        load_config_yaml(TuneConfig, tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="did you mean 'perceive'"):
        TuneConfig(stage="percieve")


def test_learning_rate_option_is_not_lr(tmp_path: Path) -> None:
    """`--lr` is the LR image in every command; the learning rate is `--learning-rate` (issue 13)."""
    import typing

    import typer

    from srjudge.train.evolve import EvolveConfig

    def commands(command: Any, path: str) -> list[tuple[str, Any]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += commands(sub, f"{path} {name}")
        return found

    checked = 0
    for path, command in commands(typer.main.get_command(app), "srjudge"):
        for param in command.params:
            if "--lr" in getattr(param, "opts", []):
                hint = typing.get_type_hints(command.callback, include_extras=False)[param.name]
                assert Path in (hint, *typing.get_args(hint)), f"{path}: --lr is not the LR image"
                checked += 1
    assert checked >= 2  # score and rank
    runner = CliRunner()
    cfg = tmp_path / "tune.yaml"
    written = runner.invoke(app, ["tune", "--write-config", str(cfg), "--learning-rate", "0.05"])
    assert written.exit_code == 0, written.output
    assert load_config_yaml(TuneConfig, cfg).lr == 0.05
    evolve_cfg = tmp_path / "evolve.yaml"
    written = runner.invoke(app, ["evolve", "--write-config", str(evolve_cfg), "--learning-rate", "2e-6"])
    assert written.exit_code == 0, written.output
    assert load_config_yaml(EvolveConfig, evolve_cfg).grpo.learning_rate == 2e-6
    for command in (["tune"], ["evolve"], ["evolve", "train"]):
        refused = runner.invoke(app, [*command, "--lr", "0.05"])
        assert refused.exit_code == 2 and "No such option: --lr" in refused.output


def test_cli_stage2_from_stage1(stage1: object, lr_folder: Path, tmp_path: Path) -> None:
    """`srjudge tune --stage infer` trains from stage 1's output on MOS levels; it loads as a judge."""
    runner = CliRunner()
    cfg_path = tmp_path / "tune.yaml"
    written = runner.invoke(app, ["tune", "--write-config", str(cfg_path), "--stage", "2", "--lora-r", "4"])
    assert written.exit_code == 0, written.output
    assert load_config_yaml(TuneConfig, cfg_path).lora == LoraSettings(r=4, alpha=8)
    out = tmp_path / "s2"
    args = [
        "tune", "--config", str(cfg_path), "--base", str(stage1.out_dir),  # type: ignore[attr-defined]
        "--data", str(lr_folder / "mos.csv"), "--out", str(out), "--max-steps", "2",
        "--learning-rate", "0.05", "--device", "cpu", "--max-side", "32",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stage infer: 2 examples, 2 steps" in result.output
    rec = json.loads((out / RECORD_NAME).read_text())
    assert rec["kind"] == "tune-infer" and rec["metrics"]["data"]["from_record"] == 2
    completions = [json.loads(x)["completion"] for x in (out / "train_data.jsonl").read_text().splitlines()]
    assert completions == ["excellent", "bad"]  # two MOS values: above / at the 20th percentile
    from srjudge.judges import create_judge

    verdict = create_judge(f"vlm:hf,model={out},protocol=level,cache=off").score(
        np.random.default_rng(3).random((32, 32, 3)).astype(np.float32)
    )
    assert verdict.score is not None
