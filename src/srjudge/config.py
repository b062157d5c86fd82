"""Dataclass configs as YAML: read strictly (typed values, did-you-mean on unknown keys), write plainly.

``load_config_yaml(cls, path)`` reads a YAML file into the dataclass ``cls`` (keys left out keep their
defaults; nested dataclasses come from mappings); ``save_config_yaml`` writes one back. The run config,
the testbed and the training commands all use these. pyyaml is imported when a file is read or written.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from srjudge.errors import MissingDependencyError, SpecError

__all__ = [
    "TRAIN_INSTALL_HINT",
    "config_to_dict",
    "load_config_yaml",
    "plain_data",
    "save_config_yaml",
]

T = TypeVar("T")

#: How to install the training extra (torch, transformers, peft, pyyaml), named by every error about it.
TRAIN_INSTALL_HINT = (
    "pip install 'srjudge[train]' (torch must be exactly torch==2.13.0: "
    "a looser pin pulls a multi-GB CUDA build)"
)


def plain_data(value: Any) -> Any:
    """``value`` as plain JSON/YAML data: dataclasses and mappings as dicts, tuples as lists, paths as str."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain_data(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as plain JSON/YAML data: nested dataclasses as mappings, tuples as lists, paths as str."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"config_to_dict expects a dataclass instance, got {type(config).__name__}")
    return {f.name: plain_data(getattr(config, f.name)) for f in dataclasses.fields(config)}


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
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        fits, convert, expected = scalar
        if fits(value):
            return convert(value)
        raise SpecError(f"{where}: expected {expected}, got {value!r}")
    return value


def _is_number(value: Any) -> bool:
    """An int or float (not a bool), or a string that reads as one (YAML 1.1 reads 1e-4 as a string)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


#: Scalar field types: (does a YAML value fit, convert it, what the error says was expected).
_SCALARS: dict[Any, tuple[Callable[[Any], bool], Callable[[Any], Any], str]] = {
    bool: (lambda v: isinstance(v, bool), lambda v: v, "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), lambda v: v, "an integer"),
    float: (_is_number, float, "a number"),
    str: (lambda v: isinstance(v, str), lambda v: v, "a string"),
    Path: (lambda v: isinstance(v, str), Path, "a path string"),
}


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
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"a config class must be a dataclass, got {cls!r}")
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
