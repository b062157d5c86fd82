"""Load a local vision-language model with transformers, and save a trained one as a plain model folder.

Shared by training (``srjudge tune``, ``evolve``, ``reward train``) and the reward model, which loads
its backbone this way. Everything is offline: weights come from a local folder (or the local Hugging
Face cache), and a saved model is a plain folder that ``vlm:hf,model=<folder>`` loads like any other
checkpoint. torch, transformers and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from srjudge.config import TRAIN_INSTALL_HINT
from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.models.hf_folder import load_processor, resolve_model_path

__all__ = ["load_vlm_for_training", "resolve_train_device", "save_trained_vlm"]

#: Files of a model folder that describe the processor, tokenizer and chat template (copied when missing).
_PROCESSOR_FILES = (
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "tokenizer.model",
)


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------


def _require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"training needs torch and transformers ({exc.name} is missing): {TRAIN_INSTALL_HINT}"
        ) from None
    return torch


def resolve_train_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible else ``cpu``; ``cpu``/``cuda``/``cuda:N`` are checked."""
    torch = _require_torch()
    d = device.strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return d
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not torch.cuda.is_available():
            raise SpecError(
                f"device={device!r} but torch {torch.__version__} sees no CUDA device; use cpu or auto"
            )
        return d
    raise SpecError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
"""Spellings of a torch dtype a user may write -> its torch name."""


def _resolve_dtype(dtype: str, device: str) -> Any:
    torch = _require_torch()
    key = dtype.strip().lower().removeprefix("torch.")
    names = DTYPE_NAMES
    if key == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if key not in names:
        raise SpecError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    return getattr(torch, names[key])


def load_vlm_for_training(
    model_path: str | Path, *, device: str = "auto", dtype: str = "auto"
) -> tuple[Any, Any]:
    """(model, processor): ``AutoModelForImageTextToText`` and its processor from a LOCAL folder, offline.

    ``device``: ``auto`` leaves the model on the CPU for the trainer (``accelerate``) to place it on
    the GPU of its process; ``cpu``/``cuda``/``cuda:N`` move it there. ``dtype``: ``auto`` is float32
    on CPU and bfloat16 on a GPU that supports it (else float32). Raises :class:`MissingWeightsError`
    naming the folder and what is missing.
    """
    _require_torch()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    folder = resolve_model_path(str(model_path))
    target = resolve_train_device(device)
    torch_dtype = _resolve_dtype(dtype, target)
    processor = load_processor(folder)
    from transformers import AutoModelForImageTextToText

    try:
        model: Any = AutoModelForImageTextToText.from_pretrained(
            str(folder), local_files_only=True, dtype=torch_dtype
        )
    except (OSError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MissingWeightsError(
            f"cannot load an image-text-to-text model from {folder}: {type(exc).__name__}: {first}. "
            "The folder needs config.json, the weights (*.safetensors) and the processor/tokenizer files."
        ) from None
    if device.strip().lower() != "auto":
        model = model.to(target)
    tok = processor.tokenizer
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    model.config.use_cache = False
    return model, processor


# ----------------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------------


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def _base_folder(model: Any) -> Path | None:
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or getattr(model, "name_or_path", "")
    path = Path(str(name)) if name else None
    return path if path is not None and path.is_dir() else None


def _save_processor(processor: Any, out_dir: Path) -> None:
    """Save the processor so that ``load_processor(out_dir)`` rebuilds it.

    A genuine transformers processor saves itself. The image-only subclass built by
    ``load_processor`` (no video processor, no torchvision) is saved as its parts, with the
    processor class renamed to the transformers class it derives from, so the folder declares a class
    transformers knows.
    """
    cls = type(processor)
    if cls.__module__.startswith("transformers."):
        processor.save_pretrained(str(out_dir))
        return
    base_name = next(
        (c.__name__ for c in cls.__mro__[1:] if c.__module__.startswith("transformers.models.")), None
    )
    processor.tokenizer.save_pretrained(str(out_dir))
    processor.image_processor.save_pretrained(str(out_dir))
    template = getattr(processor, "chat_template", None) or getattr(
        processor.tokenizer, "chat_template", None
    )
    if isinstance(template, str) and not (out_dir / "chat_template.jinja").is_file():
        (out_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
    for name in ("preprocessor_config.json", "tokenizer_config.json", "processor_config.json"):
        f = out_dir / name
        if not f.is_file():
            continue
        data = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "processor_class" in data:
            if base_name:
                data["processor_class"] = base_name
            else:
                data.pop("processor_class")
            f.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_trained_vlm(
    model: Any, processor: Any, out_dir: Path, *, merge: bool = True, base_path: Path | None = None
) -> Path:
    """Save so that ``vlm:hf,model=<out_dir>`` loads it like any model; returns ``out_dir``.

    A LoRA model: the raw adapter goes to ``out_dir/'adapter'`` and, with ``merge`` (the default), the
    adapters are merged into a full model (``merge_and_unload``, on a copy: ``model`` keeps its
    adapters) saved in ``out_dir``. A plain model (full fine-tuning) is saved as is. The processor,
    tokenizer and chat template are saved alongside; processor files of the base folder (``base_path``,
    else the model's ``name_or_path``) that are still missing are copied. ``merge=False`` saves only
    the adapter and the processor (not loadable by the hf backend on its own).
    """
    import copy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inner = model
    if _is_peft(model):
        model.save_pretrained(str(out_dir / "adapter"))
        base = base_path or _base_folder(model.get_base_model())
        inner = copy.deepcopy(model).merge_and_unload() if merge else None
    else:
        base = base_path or _base_folder(model)
    if inner is not None:
        inner.config.use_cache = True
        inner.save_pretrained(str(out_dir))
    _save_processor(processor, out_dir)
    if base is not None and base.resolve() != out_dir.resolve():
        for name in _PROCESSOR_FILES:
            src = base / name
            if src.is_file() and not (out_dir / name).exists():
                shutil.copy2(src, out_dir / name)
    return out_dir
