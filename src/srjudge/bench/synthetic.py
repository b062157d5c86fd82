"""Small, clearly labelled SYNTHETIC bench datasets made from scikit-image's bundled photos.

The "opinion" is a known monotone function of a degradation strength: a sanity check for the bench,
not a measure of agreement with people. The degradations are :mod:`srjudge.degrade`'s ops (MATLAB
bicubic, Gaussian blur, Gaussian noise with its own recorded seed, OpenCV JPEG, 8-bit quantisation).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from srjudge import atomic
from srjudge.bench.dataset_files import DATASET_JSON, FORMAT_ALIASES, FORMATS
from srjudge.degrade.ops import apply_steps
from srjudge.degrade.record import Step
from srjudge.degrade.steps import bicubic_step, blur_step, gaussian_noise_step, jpeg_step, quantise_step
from srjudge.errors import SrjudgeError

SYNTHETIC_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "cat", "horse", "coins")
SyntheticKind = Literal["mos", "pairwise", "best-of-n"]
_HR_SIZE = 128
_SCALE = 4


def _noise(sigma: float, rng: np.random.Generator) -> Step:
    """Colour Gaussian noise of std ``sigma`` (0..1 units), its seed drawn from ``rng``."""
    return gaussian_noise_step(255.0 * sigma, int(rng.integers(0, 2**63 - 1)), gray=False)


def _downscale(hr: np.ndarray) -> np.ndarray:
    """MATLAB-bicubic x4 downscale, at 8-bit levels."""
    h, w = hr.shape[:2]
    return apply_steps(hr, [bicubic_step((h // _SCALE, w // _SCALE)), quantise_step()])


def _degraded_lr(clean_lr: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Blur sigma 1.5*s, Gaussian noise std 0.06*s, JPEG quality 95 - 70*s, on the LR."""
    steps = [blur_step(1.5 * strength)] if strength > 0 else []
    steps += [_noise(0.06 * strength, rng), quantise_step(), jpeg_step(round(95 - 70 * strength))]
    return apply_steps(clean_lr, steps)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def _write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    atomic.write_text(out_dir / DATASET_JSON, json.dumps(meta, indent=2) + "\n")


def make_synthetic(
    out_dir: str | os.PathLike[str],
    kind: SyntheticKind,
    *,
    seed: int = 0,
    n_photos: int = 4,
    levels: int = 5,
    grouped: bool = False,
) -> Path:
    """Write a small SYNTHETIC dataset (not human opinion) of ``kind`` under ``out_dir``; return its CSV.

    The "opinion" is a known monotone function of a degradation strength in [0, 1]; the rule is
    written to dataset.json's "description". The same seed writes the same bytes. ``grouped`` (mos
    only) adds a ``group`` column naming each image's photo.
    """
    from srjudge.images.io import quantize_8bit, save_png
    from srjudge.images.samples import bundled_photo
    from srjudge.sr.classical import bicubic, nearest, unsharp

    fmt = FORMAT_ALIASES.get(str(kind).lower())
    if fmt is None:
        raise SrjudgeError(f"synthetic dataset kind {kind!r} is not one of {', '.join(FORMATS)}.")
    if grouped and fmt != "mos":
        raise SrjudgeError(f"grouped=True applies to synthetic mos datasets, not {fmt}.")
    if not 1 <= n_photos <= len(SYNTHETIC_PHOTOS):
        raise SrjudgeError(f"n_photos must be 1..{len(SYNTHETIC_PHOTOS)}, got {n_photos}.")
    if levels < 1:
        raise SrjudgeError(f"levels must be at least 1, got {levels}.")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = SYNTHETIC_PHOTOS[:n_photos]
    strengths = [level / (levels + 1) for level in range(1, levels + 1)]
    name = f"synthetic-{fmt} (generated from scikit-image photos; not human opinion)"

    def save(rel: str, image: np.ndarray) -> Path:
        return save_png(root / rel, image)

    def photo_inputs(photo: str) -> tuple[np.ndarray, np.ndarray, Path]:
        """A photo's HR crop, its clean LR and the saved LR file."""
        hr = bundled_photo(photo, _HR_SIZE)
        clean = _downscale(hr)
        return hr, clean, save(f"lr/{photo}.png", clean)

    rows: list[list[Any]] = []
    if fmt == "mos":
        for photo in photos:
            hr, clean, lr_clean = photo_inputs(photo)
            ref = save(f"hr/{photo}.png", hr)
            entries: list[tuple[str, float, Path, np.ndarray]] = []
            for level, s in enumerate(strengths, 1):
                # Every output of one photo shares the clean LR as its input (as in SR quality datasets);
                # the degradation stands for what a poor SR system loses or adds.
                lr = _degraded_lr(clean, s, rng)
                entries.append((f"sr/{photo}_L{level}.png", s, lr_clean, bicubic(lr, _SCALE)))
            entries.append((f"sr/{photo}_nearest.png", 0.7, lr_clean, nearest(clean, _SCALE)))
            entries.append(
                (f"sr/{photo}_oversharp.png", 0.5, lr_clean, unsharp(bicubic(clean, _SCALE), 2.5, 2.0))
            )
            for rel, s, lr_path, image in entries:
                img = save(rel, image)
                score = float(np.clip(5.0 - 4.0 * s + rng.normal(0.0, 0.1), 1.0, 5.0))
                rows.append(
                    [_rel(img, root), f"{score:.3f}", _rel(ref, root), _rel(lr_path, root)]
                    + ([photo] if grouped else [])
                )
        file_name, header = "mos.csv", ["image", "mos", "ref", "lr"] + (["group"] if grouped else [])
        meta: dict[str, Any] = {"format": "mos", "score": "mos", "higher_is_better": True}
        description = (
            "SYNTHETIC, not human opinion. Per photo (128x128 crop of a scikit-image photo), the LR is a "
            "MATLAB-bicubic x4 downscale; level L in 1..levels has strength s = L/(levels+1) and its image "
            "is a bicubic x4 upscale of the LR after Gaussian blur sigma 1.5*s, Gaussian noise std 0.06*s "
            "and JPEG quality 95-70*s. Variants: nearest-neighbour x4 of the clean LR (s = 0.7) and "
            "bicubic x4 over-sharpened by unsharp masking (amount 2.5, sigma 2; s = 0.5). "
            "MOS = clip(5 - 4*s + N(0, 0.1), 1, 5), seeded. Every image of a photo lists the clean LR as "
            "its input." + (" The group column names the photo." if grouped else "")
        )
    elif fmt == "pairwise":
        for photo in photos:
            _, clean, lr_clean = photo_inputs(photo)
            images: list[tuple[Path, float]] = []
            for level, s in enumerate(strengths, 1):
                images.append(
                    (save(f"sr/{photo}_L{level}.png", bicubic(_degraded_lr(clean, s, rng), _SCALE)), s)
                )
            # Two re-draws at existing strengths (different noise): equal strength, so a tie.
            for level in sorted({1, (levels + 1) // 2}):
                s = strengths[level - 1]
                redraw = bicubic(_degraded_lr(clean, s, rng), _SCALE)
                images.append((save(f"sr/{photo}_L{level}b.png", redraw), s))
            for i in range(len(images)):
                for j in range(i + 1, len(images)):
                    (pa, sa), (pb, sb) = images[i], images[j]
                    if rng.random() < 0.5:
                        (pa, sa), (pb, sb) = (pb, sb), (pa, sa)
                    if abs(sa - sb) < 1e-9:
                        va, vb, vt = 3, 3, 4
                    else:
                        win = min(10, 6 + round(8 * abs(sa - sb)) + int(rng.integers(0, 2)))
                        rest = 10 - win
                        lose, vt = rest - rest // 2, rest // 2
                        va, vb = (win, lose) if sa < sb else (lose, win)
                    rows.append([_rel(pa, root), _rel(pb, root), va, vb, vt, _rel(lr_clean, root)])
        file_name, header = "pairwise.csv", ["a", "b", "votes_a", "votes_b", "votes_tie", "lr"]
        meta = {"format": "pairwise"}
        description = (
            "SYNTHETIC, not human opinion. Per photo, images as in synthetic-mos: bicubic x4 of the LR "
            "degraded at strength s = L/(levels+1) (blur sigma 1.5*s, noise std 0.06*s, JPEG 95-70*s), plus "
            "re-draws at two strengths. Every pair within a photo (order shuffled) gets 10 votes: the lower "
            "strength wins with 6 + round(8*|sa - sb|) + U{0,1} votes (at most 10), the rest split between "
            "the loser and tie; equal strengths get 3 / 3 / 4 tie votes (a tie)."
        )
    else:
        cand_strengths = {"truthlike": 0.0, "bicubic": 0.25, "blurred": 0.5, "nearest": 0.65, "noisy": 0.8}
        for photo in photos:
            hr, clean, lr_path = photo_inputs(photo)
            up = bicubic(clean, _SCALE)
            made = {
                "truthlike": quantize_8bit(0.7 * hr + 0.3 * up),
                "bicubic": up,
                "blurred": apply_steps(up, [blur_step(1.5), quantise_step()]),
                "nearest": nearest(clean, _SCALE),
                "noisy": apply_steps(up, [_noise(0.08, rng), quantise_step()]),
            }
            order = [str(k) for k in rng.permutation(list(made))]
            for key in order:
                path = save(f"candidates/{photo}_{key}.png", made[key])
                votes = round(10 * (1.0 - cand_strengths[key]))
                rows.append([photo, _rel(lr_path, root), _rel(path, root), votes])
        file_name, header = "best_of_n.csv", ["group", "lr", "candidate", "votes"]
        meta = {"format": "best-of-n"}
        description = (
            "SYNTHETIC, not human opinion. Per photo: LR = MATLAB-bicubic x4 downscale of a 128x128 crop; "
            "5 candidates in seeded random order with strengths truth-like 0.7*HR + 0.3*bicubic (0.0), "
            "bicubic x4 (0.25), bicubic blurred sigma 1.5 (0.5), nearest-neighbour x4 (0.65), bicubic + "
            "Gaussian noise std 0.08 (0.8); votes = round(10 * (1 - strength)), strictly decreasing."
        )
    csv_path = root / file_name
    _write_csv(csv_path, header, rows)
    meta.update(name=name, synthetic=True, description=description, file=csv_path.name)
    _write_meta(root, meta)
    return csv_path
