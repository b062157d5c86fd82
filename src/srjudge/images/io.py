"""Image file I/O: the only place that opens image files.

Loads PNG, JPEG, BMP, TIFF and WebP (8- and 16-bit; gray, RGB, RGBA) into the canonical form,
float32 RGB in [0, 1], H x W x 3, with EXIF orientation applied. Saves lossless PNG.
Every failure raises :class:`~srjudge.errors.ImageError` naming the file and the problem.
"""

from __future__ import annotations

import glob
import io
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from srjudge import atomic
from srjudge.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 100_000_000
"""Decompression-bomb guard: images above this many pixels are refused (configurable)."""


class AlphaDroppedWarning(UserWarning):
    """An RGBA or LA image was loaded and its alpha channel was dropped."""


_ORIENT_OPS = {
    2: "fliplr",
    3: "rot180",
    4: "flipud",
    5: "transpose",
    6: "rot270",
    7: "transverse",
    8: "rot90",
}


def _apply_orientation(data: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation on an array, matching ``PIL.ImageOps.exif_transpose``."""
    op = _ORIENT_OPS.get(orientation)
    if op == "fliplr":
        return data[:, ::-1]
    if op == "rot180":
        return data[::-1, ::-1]
    if op == "flipud":
        return data[::-1]
    if op == "transpose":
        return np.swapaxes(data, 0, 1)
    if op == "rot270":
        return np.rot90(data, k=-1)
    if op == "transverse":
        return np.rot90(np.swapaxes(data, 0, 1), k=2)
    if op == "rot90":
        return np.rot90(data, k=1)
    return data


def _warn_alpha(path: Path) -> None:
    warnings.warn(
        f"{path}: alpha channel dropped (srjudge judges RGB only).", AlphaDroppedWarning, stacklevel=4
    )


def _read_16bit(path: Path) -> np.ndarray | None:
    """16-bit PNG/TIFF (which PIL truncates to 8 bits for colour) read with OpenCV; None if not 16-bit."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16:
        return None
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    elif data.shape[2] == 4:
        _warn_alpha(path)
        data = data[:, :, 2::-1]
    elif data.shape[2] == 3:
        data = data[:, :, ::-1]
    else:
        return None
    return data.astype(np.float32) / np.float32(65535.0)


def _pil_to_float_rgb(pil: Image.Image, path: Path) -> np.ndarray:
    if pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info):
        _warn_alpha(path)
    if pil.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        raw = np.asarray(pil, dtype=np.float64)
        gray = np.clip(raw / 65535.0, 0.0, 1.0).astype(np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if pil.mode == "F":
        gray = np.clip(np.asarray(pil, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(pil.convert("RGB"), dtype=np.float32) / np.float32(255.0)


_PILLOW_LIMIT_LOCK = threading.Lock()


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file into float32 RGB in [0, 1], H x W x 3."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file. Check the path.")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image file.")
    if p.stat().st_size == 0:
        raise ImageError(f"{p}: the file is empty (0 bytes).")
    try:
        # srjudge's own limit (max_pixels, checked below with a clear message) governs, not Pillow's
        # fixed ~89.5 MP default, so that --max-pixels can raise it for trusted large images.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _PILLOW_LIMIT_LOCK:  # Pillow's limit is a global: lifted only around the header read,
                default_limit = Image.MAX_IMAGE_PIXELS  # which is all Image.open does; the check on
                Image.MAX_IMAGE_PIXELS = None  # max_pixels below comes before any decoding
                try:
                    pil_image = Image.open(p)
                finally:
                    Image.MAX_IMAGE_PIXELS = default_limit
            with pil_image as pil:
                width, height = pil.size
                if width == 0 or height == 0:
                    raise ImageError(f"{p}: the image has zero size ({width}x{height}).")
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageError(
                        f"{p}: {width}x{height} = {width * height:,} pixels is above the limit of "
                        f"{max_pixels:,} (decompression-bomb guard). Raise the limit (--max-pixels) "
                        "if the image is trusted."
                    )
                orientation = int(pil.getexif().get(0x0112, 1))
                pil.load()
                sixteen = _read_16bit(p) if pil.format in ("PNG", "TIFF") else None
                if sixteen is not None:
                    image = _apply_orientation(sixteen, orientation)
                else:
                    image = _pil_to_float_rgb(ImageOps.exif_transpose(pil), p)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            f"{p}: not an image file that srjudge can read (supported: {', '.join(IMAGE_SUFFIXES)})."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{p}: refused as a possible decompression bomb ({exc}).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{p}: the file is damaged or truncated ({exc}). Re-export or re-download it."
        ) from None
    return np.ascontiguousarray(image, dtype=np.float32)


def to_uint8(image: np.ndarray) -> npt.NDArray[np.uint8]:
    """Canonical float image to 8-bit with rounding (values outside [0, 1] are clipped)."""
    out: npt.NDArray[np.uint8] = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


def quantize_8bit(image: np.ndarray) -> np.ndarray:
    """Round to the 256 levels of an 8-bit PNG, kept as float32 in [0, 1] (as saving then loading gives)."""
    return (to_uint8(image).astype(np.float32) / np.float32(255.0)).astype(np.float32)


def save_png(path: str | os.PathLike[str], image: np.ndarray, *, bits: int = 8) -> Path:
    """Save a canonical float image as lossless PNG (8- or 16-bit), creating parent folders."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageError(f"{p}: srjudge saves lossless PNG only; use a .png file name.")
    p.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name (not an image suffix, so no folder scan picks it up) and renamed:
    # an interrupted save leaves the old file or none, never a cut PNG that a resume would keep.
    if bits == 8:
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
        data = buffer.getvalue()
    elif bits == 16:
        import cv2

        sixteen = np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(sixteen[:, :, ::-1]))
        if not ok:
            raise ImageError(f"{p}: could not encode the image as 16-bit PNG.")
        data = encoded.tobytes()
    else:
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return atomic.write_bytes(p, data)


def expand_image_paths(items: Iterable[str | os.PathLike[str]], *, recursive: bool = False) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns to a de-duplicated list of image paths.

    A name that matches nothing is an error, so that a typo is not silently skipped.
    """
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageError(f"{p}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)}).")
            out.extend(found)
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise ImageError(f"{text}: the pattern matches no files.")
            out.extend(matches)
        elif p.exists():
            out.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder. Check the path.")
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
