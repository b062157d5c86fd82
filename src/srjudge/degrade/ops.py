"""The degradation operations and the executor that applies a recorded list of steps.

Sampling (in :mod:`srjudge.degrade.pipelines`) and execution are separate on purpose: a degradation is
"sample a complete record, then execute it", and a replay executes the same record with the same code,
so the two cannot drift apart. No operation here draws from a shared random generator; noise draws from
its own generator seeded by the ``noise_seed`` stored in its step.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from srjudge.degrade.kernels import make_kernel
from srjudge.images.resize import imresize

RESIZE_MODES: dict[str, int] = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
}
"""Resize modes the random pipelines choose among, with the OpenCV interpolation used for each."""


def _jpeg_encoder() -> str:
    """``opencv-<version>`` plus the JPEG library OpenCV was built with, when its build info says."""
    name = f"opencv-{cv2.__version__}"
    match = re.search(r"^\s*JPEG:\s*(?:build-)?(\S+)\s*\(ver ([^)]+)\)", cv2.getBuildInformation(), re.M)
    return f"{name}/{match.group(1)}-{match.group(2)}" if match else name


JPEG_ENCODER = _jpeg_encoder()
"""The JPEG encoder recorded in every JPEG step (OpenCV and its libjpeg build; 4:2:0 chroma subsampling)."""

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class EncoderMismatchWarning(UserWarning):
    """A record is replayed with another JPEG encoder than made it; bytes may differ slightly."""


def quantise(image: np.ndarray) -> npt.NDArray[np.uint8]:
    """Float image to 8-bit with rounding and clipping, as a saved PNG would hold it."""
    out: npt.NDArray[np.uint8] = np.round(np.clip(image, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    return out


def blur(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Filter with the kernel the step describes (mirror border, as the reference uses reflect padding)."""
    if params["kernel"] in ("none", "pulse"):
        return image
    kernel = make_kernel(params).astype(np.float32)
    # filter2D correlates; all kernels here are point-symmetric, so this equals convolution.
    return np.asarray(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101), dtype=np.float32)


def resize(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Resize to the recorded ``size`` [height, width] with the recorded ``mode``."""
    h, w = (int(v) for v in params["size"])
    if (h, w) == image.shape[:2]:
        return image
    out = cv2.resize(image, (w, h), interpolation=RESIZE_MODES[params["mode"]])
    return np.asarray(out, dtype=np.float32).reshape(h, w, image.shape[2])


def add_noise(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Additive Gaussian or signal-dependent Poisson noise, colour or gray, then clip to [0, 1].

    Gaussian: ``sigma`` in 0..255 units. Poisson: photon counts with 255 counts at white, the resulting
    noise multiplied by ``scale``. Gray noise is one noise field shared by the three channels (for Poisson,
    drawn on the luma image).
    """
    rng = np.random.default_rng(int(params["noise_seed"]))
    h, w, c = image.shape
    gray = bool(params["gray"])
    if params["type"] == "gaussian":
        shape = (h, w, 1) if gray else (h, w, c)
        noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(float(params["sigma"]) / 255.0)
    elif params["type"] == "poisson":
        clean = np.clip(image, 0.0, 1.0)
        if gray:
            clean = (clean @ _LUMA)[:, :, None]
        counts = rng.poisson(clean.astype(np.float64) * 255.0)
        noise = ((counts / 255.0 - clean) * float(params["scale"])).astype(np.float32)
    else:
        raise ValueError(f"unknown noise type {params['type']!r}")
    noisy: npt.NDArray[np.float32] = np.clip(image + noise, 0.0, 1.0).astype(np.float32, copy=False)
    return noisy


def jpeg(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Round-trip through a real JPEG encoder at the recorded quality (8-bit, 4:2:0)."""
    bgr = np.ascontiguousarray(quantise(image)[:, :, ::-1])
    flags = [
        cv2.IMWRITE_JPEG_QUALITY,
        int(params["quality"]),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, buf = cv2.imencode(".jpg", bgr, flags)
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode its own JPEG")
    return decoded[:, :, ::-1].astype(np.float32) / np.float32(255.0)


def crop(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Keep the recorded window (``top``, ``left``, ``size``)."""
    top, left = int(params["top"]), int(params["left"])
    h, w = (int(v) for v in params["size"])
    return image[top : top + h, left : left + w]


def bicubic(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """MATLAB-compatible antialiased bicubic resize to the recorded ``size``."""
    h, w = (int(v) for v in params["size"])
    return imresize(image, output_shape=(h, w)).astype(np.float32)


def _noop(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    return image


def _quantise_step(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    return quantise(image).astype(np.float32) / np.float32(255.0)


OPS = {
    "crop": crop,
    "blur": blur,
    "resize": resize,
    "noise": add_noise,
    "jpeg": jpeg,
    "bicubic": bicubic,
    "choice": _noop,
    "quantise": _quantise_step,
}
"""Operation name to function; a ``choice`` step only records a decision (such as the final order)."""


def apply_steps(image: np.ndarray, steps: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Execute recorded steps in order on a float32 H x W x 3 image."""
    out = np.ascontiguousarray(image, dtype=np.float32)
    warned = False
    for step in steps:
        op = step["op"]
        if op not in OPS:
            raise ValueError(f"unknown degradation op {op!r} in step {step.get('name')!r}")
        if op == "jpeg" and step.get("encoder", JPEG_ENCODER) != JPEG_ENCODER and not warned:
            warnings.warn(
                f"replaying a record made with JPEG encoder {step['encoder']} using {JPEG_ENCODER}; "
                "the output may differ slightly.",
                EncoderMismatchWarning,
                stacklevel=3,
            )
            warned = True
        out = np.ascontiguousarray(OPS[op](out, step))
    return out
