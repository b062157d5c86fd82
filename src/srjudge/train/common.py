"""Shared training plumbing: load a local VLM for training, LoRA, saving, YAML configs, training records.

Everything here is offline: weights come from a local folder (or the local Hugging Face cache), and a
saved model is a plain folder that ``vlm:hf,model=<folder>`` loads like any other checkpoint. torch,
transformers and peft are imported inside the functions that need them, so importing this module is light.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import platform
import shutil
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from srjudge import atomic
from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError

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
    "write_training_record",
]

T = TypeVar("T")

#: The name of the JSON record every training command writes into its output folder.
RECORD_NAME = "srjudge_training.json"
TRAIN_INSTALL_HINT = (
    "pip install 'srjudge[train]' (torch must be exactly torch==2.13.0: "
    "a looser pin pulls a multi-GB CUDA build)"
)
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


def _resolve_dtype(dtype: str, device: str) -> Any:
    torch = _require_torch()
    key = dtype.strip().lower().removeprefix("torch.")
    names = {
        "float32": "float32",
        "fp32": "float32",
        "bfloat16": "bfloat16",
        "bf16": "bfloat16",
        "float16": "float16",
        "fp16": "float16",
    }
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
    from srjudge.vlm.backends.hf_backend import load_processor, resolve_model_path

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
    """Save the processor so that ``hf_backend.load_processor(out_dir)`` rebuilds it.

    A genuine transformers processor saves itself. The image-only subclass built by
    ``hf_backend.load_processor`` (no video processor, no torchvision) is saved as its parts, with the
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


# ----------------------------------------------------------------------------------------------------------
# YAML configs
# ----------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as plain JSON/YAML data: nested dataclasses as mappings, tuples as lists, paths as str."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"config_to_dict expects a dataclass instance, got {type(config).__name__}")
    out = _plain(config)
    assert isinstance(out, dict)
    return out


def save_config_yaml(config: Any, path: Path) -> None:
    """Write a dataclass config as YAML (keys in field order, tuples as lists, paths as strings)."""
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise MissingDependencyError(f"YAML configs need pyyaml: {TRAIN_INSTALL_HINT}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)
    path.write_text(text, encoding="utf-8")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` (from YAML) as type ``tp``; :class:`SpecError` naming ``where`` when it does not fit."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise SpecError(f"{where}: null is not allowed here (expected {_type_name(tp)})")
        errors: list[str] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except SpecError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise SpecError(errors[0])
        raise SpecError(f"{where}: {value!r} fits none of {_type_name(tp)}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise SpecError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _from_mapping(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise SpecError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True)))
    if origin is list:
        if not isinstance(value, list | tuple):
            raise SpecError(f"{where}: expected a list, got {value!r}")
        (arg,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise SpecError(f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SpecError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise SpecError(f"{where}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, str):
            return Path(value)
        raise SpecError(f"{where}: expected a path string, got {value!r}")
    return value


#: Common spellings of config keys from other tools (peft, transformers) -> the field they mean.
_KEY_HINTS = {
    "rank": "r",
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "learning_rate": "lr",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
}


def _from_mapping(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        parts = []
        for key in unknown:
            hint = _KEY_HINTS.get(str(key).lower())
            close = [hint] if hint in fields else []
            close = close or difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SpecError(f"{where}: unknown key(s) {', '.join(parts)}; valid keys: {', '.join(fields)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}: {k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from None


def load_config_yaml(cls: type[T], path: Path) -> T:
    """Read a YAML file into the dataclass ``cls``; keys left out keep their defaults.

    Unknown keys raise :class:`SpecError` with a did-you-mean; nested dataclass fields (e.g.
    ``lora: LoraSettings | None``) are built from mappings, ``null`` where the type allows it.
    """
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise MissingDependencyError(f"YAML configs need pyyaml: {TRAIN_INSTALL_HINT}") from None
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"config file {path} does not exist; write a default one with --write-config {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError(f"{path}: expected a mapping of {cls.__name__} keys at the top level")
    return _from_mapping(cls, data, str(path))


# ----------------------------------------------------------------------------------------------------------
# JSONL files written row by row
# ----------------------------------------------------------------------------------------------------------


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
        config_data = _plain(config)
    record = {
        "kind": kind,
        "srjudge_version": __version__,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base_model,
        "dataset_digest": dataset_digest,
        "config": config_data,
        "metrics": _plain(dict(metrics)),
        "versions": {
            "python": platform.python_version(),
            **{name: _version(name) for name in ("torch", "transformers", "trl", "peft", "accelerate")},
        },
        "command": command_name(sys.argv),
    }
    path = out_dir / RECORD_NAME
    return atomic.write_json(path, record)
