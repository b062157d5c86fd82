"""Conversions between srjudge's canonical images and torch tensors, and device selection."""

from __future__ import annotations

import numpy as np
import torch

from srjudge.errors import ImageError, SpecError, SrjudgeError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_device(name: str) -> torch.device:
    """Parse a device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) and check that it is usable."""
    try:
        device = torch.device(name.strip() or "cpu")
    except (RuntimeError, ValueError):
        raise SpecError(f"Unknown torch device {name!r}: use cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SrjudgeError(
                f"Device {name!r} was asked for but torch sees no CUDA GPU "
                f"(torch {torch.__version__}); use device=cpu."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SrjudgeError(
                f"Device {name!r} does not exist: torch sees {torch.cuda.device_count()} CUDA GPU(s)."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise SrjudgeError(f"Device {name!r} was asked for but MPS is not available; use device=cpu.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise SpecError(f"Unsupported torch device {name!r}: use cpu, cuda, cuda:N or mps.")
    return device


def image_to_tensor(image: np.ndarray, device: torch.device, *, name: str = "image") -> torch.Tensor:
    """H x W x 3 float image in [0, 1] -> 1 x 3 x H x W float32 tensor on ``device``."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"The {name} must be an H x W x 3 RGB array; got shape {array.shape}.")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"The {name} is empty (shape {array.shape}).")
    chw = np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw)[None].to(device)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """Standardise an N x 3 x H x W tensor in [0, 1] with the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def check_min_size(image: np.ndarray, min_side: int, *, metric: str, name: str = "image") -> None:
    """Raise :class:`ImageError` if the image is smaller than the network's receptive field allows."""
    h, w = np.asarray(image).shape[:2]
    if min(h, w) < min_side:
        raise ImageError(
            f"The {name} is {w}x{h} pixels; {metric} needs at least {min_side} pixels on each side."
        )
