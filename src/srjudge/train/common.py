"""Shared training plumbing: LoRA, the learning-rate schedule, training records; YAML configs and VLM
loading/saving re-exported.

LoRA (:class:`LoraSettings`, :func:`apply_lora`), the warm-up + cosine schedule of the small networks
(:func:`warmup_cosine_lr`) and the training record (:func:`write_training_record`) live here. YAML
configs come from :mod:`srjudge.config`; loading a local VLM for training and saving a trained one (a
plain folder that ``vlm:hf,model=<folder>`` loads like any other checkpoint) come from
:mod:`srjudge.models.hf_vlm`, which the reward model shares; both are re-exported here for the training
code. Everything is offline, and torch, transformers and peft are imported inside the functions that
need them, so importing this module is light.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from srjudge import atomic
from srjudge.config import TRAIN_INSTALL_HINT, config_to_dict, load_config_yaml, plain_data, save_config_yaml
from srjudge.errors import MissingDependencyError, SpecError
from srjudge.models.hf_vlm import load_vlm_for_training, resolve_train_device, save_trained_vlm

__all__ = [
    "RECORD_NAME",
    "TRAIN_INSTALL_HINT",
    "LoraSettings",
    "apply_lora",
    "command_name",
    "config_to_dict",
    "load_config_yaml",
    "load_vlm_for_training",
    "resolve_train_device",
    "save_config_yaml",
    "save_trained_vlm",
    "trainable_parameter_count",
    "warmup_cosine_lr",
    "write_training_record",
]

#: The name of the JSON record every training command writes into its output folder.
RECORD_NAME = "srjudge_training.json"


@dataclasses.dataclass(frozen=True)
class LoraSettings:
    """peft LoRA settings; a config field holding ``None`` instead means full fine-tuning.

    The default targets are the language model's attention projections (in Qwen2-VL / Qwen2.5-VL the
    vision tower's attention is named ``qkv``/``proj``, so the vision encoder stays frozen).
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self) -> None:
        if self.r < 1:
            raise SpecError(f"lora.r must be a positive integer, got {self.r}")
        if self.alpha <= 0:
            raise SpecError(f"lora.alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise SpecError("lora.target_modules must name at least one module, e.g. [q_proj, v_proj]")


# ----------------------------------------------------------------------------------------------------------
# LoRA
# ----------------------------------------------------------------------------------------------------------


def apply_lora(model: Any, lora: LoraSettings | None) -> Any:
    """Wrap ``model`` with peft LoRA adapters (only they train), or return it as is for full fine-tuning.

    Raises :class:`SpecError` when no module of the model matches ``lora.target_modules``.
    """
    if lora is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MissingDependencyError(f"LoRA needs peft: {TRAIN_INSTALL_HINT}") from None
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in leaf_names]
    if len(missing) == len(lora.target_modules):
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"}
        )
        raise SpecError(
            f"lora.target_modules {list(lora.target_modules)} match no module of {type(model).__name__}; "
            f"its linear layers are named: {', '.join(linear)}"
        )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_parameter_count(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(int(p.numel()) for p in model.parameters() if p.requires_grad)
    total = sum(int(p.numel()) for p in model.parameters())
    return trainable, total


def warmup_cosine_lr(
    step: int, total_steps: int, *, lr: float, warmup_steps: int, min_lr_ratio: float = 0.0
) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up over ``warmup_steps``, then cosine decay
    from ``lr`` to ``lr * min_lr_ratio`` at ``total_steps``."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def command_name(argv: Sequence[str]) -> str:
    """The program name and its subcommand words: no option nor value that could hold a secret."""
    if not argv:
        return ""
    words = [Path(argv[0]).name]
    for word in argv[1:]:
        if word.startswith("-"):
            break
        words.append(word)
    return " ".join(words)


def write_training_record(
    out_dir: Path,
    *,
    kind: str,
    config: Any,
    base_model: str,
    dataset_digest: str,
    metrics: Mapping[str, Any],
) -> Path:
    """Write ``out_dir/'srjudge_training.json'`` (atomically) and return its path.

    The record holds the kind of training, the config (a dataclass or a mapping), the base model, the
    dataset digest, the metrics, the time (UTC), and the srjudge, python, torch, transformers, trl,
    peft and accelerate versions.
    """
    from srjudge import __version__

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config_data: Any = config_to_dict(config)
    else:
        config_data = plain_data(config)
    record = {
        "kind": kind,
        "srjudge_version": __version__,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base_model,
        "dataset_digest": dataset_digest,
        "config": config_data,
        "metrics": plain_data(dict(metrics)),
        "versions": {
            "python": platform.python_version(),
            **{name: _version(name) for name in ("torch", "transformers", "trl", "peft", "accelerate")},
        },
        "command": command_name(sys.argv),
    }
    path = out_dir / RECORD_NAME
    return atomic.write_json(path, record)
