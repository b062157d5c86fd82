"""Helpers shared by the SR backend tests: 8-bit check, tiny RRDBNet checkpoints, small LR inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch  # the [local] extra: missing, these tests fail rather than skip

from srjudge.images.io import quantize_8bit
from srjudge.models.rrdbnet import RRDBConfig, RRDBNet


def _is_8bit(image: np.ndarray) -> bool:
    return bool(np.array_equal(image, quantize_8bit(image)))


# --- ESRGAN-family checkpoints -------------------------------------------------------------------

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def _tiny_state(seed: int, *, num_upsample: int = 2, unshuffle: int = 1) -> dict[str, torch.Tensor]:
    """Seeded random weights with the output bias at 0.5, so outputs sit inside [0, 1] (no clipping)."""
    torch.manual_seed(seed)
    net = RRDBNet(RRDBConfig(**TINY, num_upsample=num_upsample, unshuffle=unshuffle))
    assert net.conv_last.bias is not None
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _save(path: Path, state: dict[str, torch.Tensor], wrap: str | None = None) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({wrap: state} if wrap else state, str(path))
    return path


def _lr(h: int, w: int, seed: int = 0) -> np.ndarray:
    return quantize_8bit(np.random.default_rng(seed).random((h, w, 3)).astype(np.float32))
