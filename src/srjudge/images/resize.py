"""MATLAB-compatible ``imresize``: bicubic, antialiased when shrinking; written from the documented algorithm.

SR papers and the reference NIQE/BRISQUE code downsample with MATLAB ``imresize``; OpenCV and PIL
differ from it (no antialias kernel widening, other boundary handling), which moves metric values.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import sparse


def _cubic(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Keys cubic convolution kernel with a = -0.5, as MATLAB uses."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=64)
def _weights(in_len: int, out_len: int, scale: float, antialias: bool) -> sparse.csr_matrix:
    """Sparse (out_len x in_len) interpolation matrix for one axis."""
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if shrink else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric (mirror) boundary, 1-based indices as in MATLAB.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    rows = np.repeat(np.arange(out_len), taps)
    # Duplicate (row, col) pairs from mirrored taps are summed by the COO -> CSR conversion.
    return sparse.coo_matrix((w.ravel(), (rows, cols.ravel())), shape=(out_len, in_len)).tocsr()


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    antialias: bool = True,
) -> npt.NDArray[np.float64]:
    """Resize a 2-D or H x W x C array like MATLAB ``imresize(im, scale, 'bicubic')``.

    Give either ``scale`` (output size = ceil(input size x scale)) or ``output_shape`` (H, W).
    Returns float64 without clipping or rounding, as MATLAB does for double input.
    """
    if scale is not None and output_shape is None:
        h, w = image.shape[:2]
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
        scale_h = scale_w = float(scale)
    elif output_shape is not None and scale is None:
        h, w = image.shape[:2]
        out_h, out_w = output_shape
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        scale_h, scale_w = out_h / h, out_w / w
    else:
        raise ValueError("give exactly one of scale or output_shape")
    data = image.astype(np.float64, copy=False)
    # MATLAB resizes the dimension with the smaller scale first.
    order = (0, 1) if scale_h <= scale_w else (1, 0)
    for axis in order:
        if axis == 0:
            rows = data.shape[0]
            flat = _weights(h, out_h, scale_h, antialias) @ data.reshape(rows, -1)
            data = np.asarray(flat).reshape(out_h, *data.shape[1:])
        else:
            moved = np.ascontiguousarray(np.swapaxes(data, 0, 1))
            flat = _weights(w, out_w, scale_w, antialias) @ moved.reshape(moved.shape[0], -1)
            data = np.swapaxes(np.asarray(flat).reshape(out_w, *moved.shape[1:]), 0, 1)
    return np.ascontiguousarray(data)
