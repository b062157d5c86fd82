"""CLIP image embeddings from a local model folder (never a model hub).

The folder is what ``save_pretrained`` writes for a transformers ``CLIPModel`` (``model_type: clip``) or
``CLIPVisionModelWithProjection`` (``model_type: clip_vision_model``): ``config.json``, the weights
(``model.safetensors`` or ``pytorch_model.bin``) and ``preprocessor_config.json`` for the
``CLIPImageProcessor``. Everything is loaded with ``local_files_only=True``. This module imports
torch and transformers only when a model is loaded, so a missing extra surfaces as
:class:`~srjudge.errors.MissingDependencyError`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from srjudge.errors import ImageError, MissingWeightsError
from srjudge.models._deps import require_transformers

_CLIP_TYPES = ("clip", "clip_vision_model")
_FOLDER_HINT = (
    "Give a local folder written by transformers' save_pretrained for a CLIP model (config.json, "
    "model.safetensors, preprocessor_config.json), e.g. a copy of openai/clip-vit-base-patch32 made on a "
    "machine with internet access; srjudge never downloads models."
)


@dataclass(frozen=True)
class ClipImageEncoder:
    """A loaded CLIP vision tower, its projection and image processor."""

    path: Path
    model: Any
    processor: Any
    device: Any
    dim: int
    full_model: bool

    def embed(self, images: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """L2-normalised embeddings (N x D float32) of H x W x 3 images in [0, 1]."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        pixels = [_to_uint8(image, i) for i, image in enumerate(images)]
        if not pixels:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        chunks: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                batch = self.processor(images=pixels[start : start + batch_size], return_tensors="pt")
                values = batch["pixel_values"].to(self.device, torch.float32)
                if self.full_model:
                    pooled = self.model.vision_model(pixel_values=values).pooler_output
                    embeds = self.model.visual_projection(pooled)
                else:
                    embeds = self.model(pixel_values=values).image_embeds
                embeds = torch.nn.functional.normalize(embeds.float(), dim=-1)
                chunks.append(embeds.cpu().numpy())
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)


def _to_uint8(image: np.ndarray, index: int) -> npt.NDArray[np.uint8]:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"Image {index} for CLIP must be an H x W x 3 RGB array; got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array
    out: npt.NDArray[np.uint8] = np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return out


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


_CACHE: dict[tuple[str, str], ClipImageEncoder] = {}
_LOCK = threading.Lock()


def _model_type(folder: Path) -> str:
    config = folder / "config.json"
    if not config.is_file():
        raise MissingWeightsError(f"CLIP model folder {str(folder)!r} has no config.json. {_FOLDER_HINT}")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(f"Could not read {config}: {exc}. {_FOLDER_HINT}") from None
    model_type = str(data.get("model_type", "")) if isinstance(data, dict) else ""
    if model_type not in _CLIP_TYPES:
        raise MissingWeightsError(
            f"{config} describes a {model_type or 'unknown'!r} model, not CLIP "
            f"(model_type must be one of {', '.join(_CLIP_TYPES)}). {_FOLDER_HINT}"
        )
    return model_type


def _processor_class(transformers: Any) -> Any:
    """The PIL/numpy CLIP image processor (transformers 5 names it ``CLIPImageProcessorPil``)."""
    clip_module = transformers.models.clip
    pil = getattr(clip_module, "CLIPImageProcessorPil", None)
    return pil if pil is not None else transformers.CLIPImageProcessor


def load_clip(model_dir: str | os.PathLike[str], *, device: str = "cpu") -> ClipImageEncoder:
    """Load (once per resolved folder and device) the CLIP image encoder saved in ``model_dir``."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise MissingWeightsError(f"CLIP model folder {str(folder)!r} does not exist. {_FOLDER_HINT}")
    transformers = require_transformers("CLIP embeddings")
    import torch

    from srjudge.models.tensors import resolve_device

    target = resolve_device(device)
    key = (str(folder.resolve()), str(target))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        model_type = _model_type(folder)
        full = model_type == "clip"
        cls = transformers.CLIPModel if full else transformers.CLIPVisionModelWithProjection
        try:
            model = cls.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise MissingWeightsError(
                f"Could not load the CLIP model in {str(folder)!r} ({_first_line(exc)}). {_FOLDER_HINT}"
            ) from None
        try:
            processor = _processor_class(transformers).from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise MissingWeightsError(
                f"Could not load the CLIP image processor in {str(folder)!r} from preprocessor_config.json "
                f"({_first_line(exc)}). {_FOLDER_HINT}"
            ) from None
        model = model.to(device=target, dtype=torch.float32).eval()
        model.requires_grad_(False)
        config = model.config
        dim = int(getattr(config, "projection_dim", 0) or 0)
        encoder = ClipImageEncoder(folder, model, processor, target, dim, full)
        _CACHE[key] = encoder
        return encoder


def clear_clip_cache() -> None:
    """Forget every loaded CLIP model (frees their memory once no one else holds them)."""
    with _LOCK:
        _CACHE.clear()


def clip_image_embeddings(
    images: Sequence[np.ndarray],
    model_dir: str | os.PathLike[str],
    *,
    device: str = "cpu",
    batch_size: int = 32,
) -> np.ndarray:
    """L2-normalised CLIP image embeddings, N x D float32, of H x W x 3 images in [0, 1].

    The model in ``model_dir`` is loaded once per folder (and device) and reused by later calls.
    """
    return load_clip(model_dir, device=device).embed(images, batch_size=batch_size)
