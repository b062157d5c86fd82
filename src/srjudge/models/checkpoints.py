"""Reading weight files and checking their keys, with errors that name the file and the keys."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from srjudge.errors import MissingDependencyError, MissingWeightsError

StateDict = dict[str, torch.Tensor]

_WRAPPER_KEYS = ("state_dict", "model", "params", "params_ema")
_SHOW = 5


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_state_dict_file(path: str | os.PathLike[str], *, what: str, hint: str = "") -> StateDict:
    """Read a ``.pth``/``.pt`` (``torch.load``, weights only) or ``.safetensors`` file into a flat state dict.

    A dict wrapped under ``state_dict``/``model``/``params``/``params_ema`` is unwrapped and a common
    ``module.`` prefix (DataParallel) is stripped. Any failure raises :class:`MissingWeightsError`
    naming ``what`` and the file, followed by ``hint``.
    """
    file = Path(path).expanduser()
    tail = f" {hint}" if hint else ""
    if not file.is_file():
        kind = "is a folder, not a file" if file.is_dir() else "does not exist"
        raise MissingWeightsError(f"The {what} file {str(file)!r} {kind}.{tail}")
    try:
        if file.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise MissingDependencyError(
                    f"Reading {file} needs the safetensors package: pip install safetensors "
                    "(or save the weights as a .pth file)."
                ) from None
            raw: object = load_file(str(file), device="cpu")
        else:
            raw = torch.load(str(file), map_location="cpu", weights_only=True)
    except MissingDependencyError:
        raise
    except Exception as exc:
        raise MissingWeightsError(
            f"Could not read the {what} file {str(file)!r} as PyTorch weights ({_first_line(exc)}).{tail}"
        ) from None
    for _ in range(2):
        if isinstance(raw, Mapping) and len(raw) == 1:
            ((key, inner),) = raw.items()
            if key in _WRAPPER_KEYS and isinstance(inner, Mapping):
                raw = inner
    if not isinstance(raw, Mapping) or not raw:
        raise MissingWeightsError(
            f"The {what} file {str(file)!r} holds a {type(raw).__name__}, not a state dict "
            f"(a mapping of parameter names to tensors).{tail}"
        )
    state: StateDict = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise MissingWeightsError(
                f"The {what} file {str(file)!r} is not a plain state dict: entry {key!r} is a "
                f"{type(value).__name__}, not a tensor.{tail}"
            )
        state[key] = value
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _listing(keys: Iterable[str]) -> str:
    items = sorted(keys)
    shown = ", ".join(items[:_SHOW])
    more = f" (and {len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return shown + more


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    *,
    path: str | os.PathLike[str],
    what: str,
    ignore_prefixes: tuple[str, ...] = (),
    hint: str = "",
) -> StateDict:
    """Return the entries of ``state`` named in ``expected``; missing, unexpected or misshapen keys raise.

    Keys starting with one of ``ignore_prefixes`` (e.g. torchvision's ``classifier.``) are dropped quietly.
    The error names the file, the first missing and unexpected keys and any shape mismatches.
    """
    present = {k for k in state if not k.startswith(ignore_prefixes)}
    missing = set(expected) - present
    unexpected = present - set(expected)
    wrong = [
        f"{k} is {tuple(state[k].shape)}, expected {expected[k]}"
        for k in sorted(present & set(expected))
        if tuple(state[k].shape) != tuple(expected[k])
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
        if wrong:
            more = f" (and {len(wrong) - _SHOW} more)" if len(wrong) > _SHOW else ""
            parts.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:_SHOW])}{more}")
        tail = f" {hint}" if hint else ""
        raise MissingWeightsError(
            f"The {what} file {str(Path(path))!r} does not fit: {'; '.join(parts)}.{tail}"
        )
    return {k: state[k] for k in expected}
