"""Colour conversions used by SR metrics, with the constants the reference implementations use."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# ITU-R BT.601 luma as in MATLAB rgb2ycbcr, the convention of SR papers (PSNR-Y, SSIM-Y).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
# MATLAB rgb2gray (NTSC luma, the Y of YIQ): used by NIQE and BRISQUE reference code.
_GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=np.float64)


def rgb_to_y(image: np.ndarray) -> npt.NDArray[np.float64]:
    """BT.601 luma in [16/255, 235/255] for an RGB image in [0, 1] (MATLAB ``rgb2ycbcr`` Y)."""
    return (image[..., :3].astype(np.float64) @ _Y_WEIGHTS) + 16.0 / 255.0


def rgb_to_gray(image: np.ndarray) -> npt.NDArray[np.float64]:
    """MATLAB ``rgb2gray`` for an RGB image in [0, 1]; result in [0, 1], float64."""
    return image[..., :3].astype(np.float64) @ _GRAY_WEIGHTS


def rgb_to_gray_uint8(image: np.ndarray) -> npt.NDArray[np.float64]:
    """MATLAB ``rgb2gray`` on the 8-bit image, rounded as MATLAB does; values in [0, 255], float64."""
    rgb8 = np.round(np.clip(image[..., :3].astype(np.float64), 0.0, 1.0) * 255.0)
    return np.round(rgb8 @ _GRAY_WEIGHTS)


def rgb_to_lab(image: np.ndarray) -> npt.NDArray[np.float64]:
    """CIE L*a*b* (D65) of an sRGB image in [0, 1]."""
    from skimage.color import rgb2lab

    return np.asarray(rgb2lab(np.clip(image[..., :3], 0.0, 1.0).astype(np.float64)), dtype=np.float64)
