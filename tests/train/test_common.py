"""Training plumbing on the tiny random-weight Qwen2-VL: loading, LoRA, merged saving, YAML, records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.judges import create_judge
from srjudge.provenance import file_sha256
from srjudge.train.common import (
    RECORD_NAME,
    LoraSettings,
    apply_lora,
    load_config_yaml,
    load_vlm_for_training,
    save_config_yaml,
    save_trained_vlm,
    trainable_parameter_count,
    write_training_record,
)


@dataclass(frozen=True)
class _Cfg:
    model: str = "m"
    lr: float = 1e-4
    steps: int = 3
    tags: tuple[str, ...] = ("a", "b")
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    out: Path = Path("out")


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)


def _text_logits(model: torch.nn.Module, processor: object) -> torch.Tensor:
    ids = processor.tokenizer("The quality of the image is good.", return_tensors="pt")  # type: ignore[attr-defined]
    with torch.no_grad():
        return model(**ids).logits.float()


def test_lora_merged_save_loads_as_a_judge(tiny_vlm: Path, tmp_path: Path) -> None:
    """LoRA wraps only the target projections; the merged folder reloads with the same logits and judges."""
    model, processor = load_vlm_for_training(tiny_vlm, device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    _, total = trainable_parameter_count(model)
    peft_model = apply_lora(model, LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable, total_after = trainable_parameter_count(peft_model)
    lora_names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert lora_names and all("lora_" in n for n in lora_names)
    assert any("q_proj.lora_A" in n for n in lora_names) and not any("visual" in n for n in lora_names)
    assert 0 < trainable < total < total_after
    # lora_B starts at zero (a no-op); give it weights so that merging has something to merge
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft_model.eval()
    expected = _text_logits(peft_model, processor)
    base_logits = _text_logits(peft_model.get_base_model(), processor)  # same modules: adapters active
    assert torch.equal(base_logits, expected)

    out = save_trained_vlm(peft_model, processor, tmp_path / "merged")
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "config.json").is_file() and (out / "chat_template.jinja").is_file()
    assert any("lora_" in n for n, _ in peft_model.named_parameters())  # the caller's model keeps adapters

    reloaded, reproc = load_vlm_for_training(out, device="cpu")
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    torch.testing.assert_close(_text_logits(reloaded.eval(), reproc), expected, atol=1e-4, rtol=1e-4)
    original, _ = load_vlm_for_training(tiny_vlm, device="cpu")
    assert not torch.allclose(_text_logits(original.eval(), processor), expected, atol=1e-3)

    judge = create_judge(f"vlm:hf,model={out},protocol=level,cache={tmp_path / 'c.sqlite'}")
    verdict = judge.score(_image())
    assert verdict.score is not None and 0.0 <= verdict.score <= 100.0


def test_full_finetuning_keeps_every_parameter_trainable(tiny_vlm: Path, tmp_path: Path) -> None:
    """lora=None means full fine-tuning: the model itself, all parameters trainable, saved without adapter."""
    model, processor = load_vlm_for_training(tiny_vlm, device="cpu")
    same = apply_lora(model, None)
    assert same is model
    trainable, total = trainable_parameter_count(model)
    assert trainable == total
    out = save_trained_vlm(model, processor, tmp_path / "full")
    assert not (out / "adapter").exists() and (out / "model.safetensors").is_file()


def test_bad_lora_targets_and_missing_folder_are_clear(tiny_vlm: Path, tmp_path: Path) -> None:
    """Targets that match nothing, and a missing model folder, fail naming the problem."""
    model, _ = load_vlm_for_training(tiny_vlm, device="cpu")
    with pytest.raises(SpecError, match=r"match no module.*q_proj"):
        apply_lora(model, LoraSettings(target_modules=("nope",)))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_vlm_for_training(tmp_path / "absent", device="cpu")
    with pytest.raises(SpecError, match=r"lora\.r"):
        LoraSettings(r=0)


def test_yaml_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    """A config survives YAML (tuples, paths, nested LoRA or null); unknown keys get a did-you-mean."""
    cfg = _Cfg(lr=3e-5, tags=("x",), lora=LoraSettings(r=8, target_modules=("q_proj",)), out=Path("/a/b"))
    path = tmp_path / "c.yaml"
    save_config_yaml(cfg, path)
    text = path.read_text()
    assert "target_modules:\n  - q_proj" in text or "target_modules:\n- q_proj" in text
    assert load_config_yaml(_Cfg, path) == cfg
    full = _Cfg(lora=None)
    save_config_yaml(full, path)
    assert "lora: null" in path.read_text()
    assert load_config_yaml(_Cfg, path) == full

    path.write_text("lr: 1e-4\nstep: 4\n")
    with pytest.raises(SpecError, match=r"unknown key\(s\) 'step' \(did you mean 'steps'\?\)"):
        load_config_yaml(_Cfg, path)
    path.write_text("lora:\n  rank: 4\n")
    with pytest.raises(SpecError, match="did you mean 'r'"):
        load_config_yaml(_Cfg, path)
    path.write_text("steps: many\n")
    with pytest.raises(SpecError, match="steps: expected an integer"):
        load_config_yaml(_Cfg, path)
    path.write_text("lr: 1e-4\n")  # YAML 1.1 reads this as a string; a float field takes it
    assert load_config_yaml(_Cfg, path).lr == pytest.approx(1e-4)


def test_training_record_and_digest(tmp_path: Path) -> None:
    """The record holds the config, digest, metrics and library versions; the digest is sha256."""
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"abc")
    digest = file_sha256(data)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path = write_training_record(
        tmp_path / "out",
        kind="tune",
        config=_Cfg(),
        base_model="m",
        dataset_digest=digest,
        metrics={"loss": [1.0, 0.5]},
    )
    assert path.name == RECORD_NAME
    rec = json.loads(path.read_text())
    assert rec["kind"] == "tune" and rec["dataset_digest"] == digest and rec["metrics"]["loss"] == [1.0, 0.5]
    assert rec["config"]["tags"] == ["a", "b"] and rec["config"]["lora"]["r"] == 16
    assert rec["versions"]["torch"] and rec["versions"]["trl"] and rec["versions"]["peft"]
