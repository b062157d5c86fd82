"""Training side of the LR-conditioned reward model: a fresh model on a local base VLM, with LoRA.

The network itself (backbone and scalar head, its inputs, saving and loading a trained folder,
scoring) is :class:`srjudge.models.reward_net.LRConditionedRewardModel`, which the ``reward`` judge
loads; training builds a new one here and trains it with :mod:`srjudge.train.reward_train`.
"""

from __future__ import annotations

from pathlib import Path

from srjudge.models.reward_net import DEFAULT_MAX_SIDE, LRConditionedRewardModel
from srjudge.train.common import LoraSettings, apply_lora, load_vlm_for_training

__all__ = ["reward_model_from_base"]


def reward_model_from_base(
    model_path: str | Path,
    *,
    lora: LoraSettings | None = None,
    full_finetune: bool = False,
    device: str = "auto",
    dtype: str = "auto",
    max_side: int = DEFAULT_MAX_SIDE,
    seed: int = 0,
) -> LRConditionedRewardModel:
    """A fresh reward model on a local base VLM: LoRA (``lora``, default settings when None) on the
    backbone unless ``full_finetune``; the head always trains."""
    backbone, processor = load_vlm_for_training(model_path, device=device, dtype=dtype)
    if full_finetune:
        backbone = apply_lora(backbone, None)
    else:
        backbone = apply_lora(backbone, lora if lora is not None else LoraSettings())
    return LRConditionedRewardModel(
        backbone, processor, base_model=str(model_path), max_side=max_side, seed=seed
    )
