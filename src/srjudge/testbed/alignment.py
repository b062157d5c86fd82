"""Base vs aligned SR model on the glyph testbed: what alignment changed, graded by the referee.

Pure measures over sample groups (one group = the N seeded samples of one LR input), so that
``srjudge align``'s own before/after evaluation and ``srjudge testbed compare`` (two testbed runs, base
and aligned backend) report the same quantities, per severity, with 95 % bootstrap intervals over LR
inputs (the same resamples for both models, so the paired difference has its own interval):

* ``wrong``: samples the referee does not read as the true symbol (unreadable counts as wrong): the
  issue's "hallucination rate of raw samples" (23 % at severe for the bundled model);
* ``hallucinated``: samples read confidently (>= threshold) as another symbol (the testbed's measure);
* ``lr_psnr``: PSNR (dB) of the sample downscaled x1/4 (MATLAB bicubic) against the LR input;
* ``spread``: per-LR pixel standard deviation across the samples, averaged (diversity);
* ``distinct``: the number of different referee readings among one LR's samples (diversity of content);
* ``bicubic_wrong`` (a reference, the same for both models): the referee does not read the true symbol
  in the LR upsampled bicubic x4, an output that invents nothing. Raw samples below it read the LR
  better than the referee reads its plain upsampling.

The reward judge never grades: the referee is a separate network and the readout judge's
``classifier`` is not used here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge.bench.bootstrap import Estimate, boot_indices, estimate
from srjudge.errors import SpecError
from srjudge.images.resize import imresize
from srjudge.metrics.noref import upsample_lr
from srjudge.testbed.measures import severity_name

if TYPE_CHECKING:
    from srjudge.readers.base import Reader

MEASURES = ("wrong", "hallucinated", "lr_psnr", "spread", "distinct")
HIGHER_IS_BETTER = {"wrong": False, "hallucinated": False, "lr_psnr": True, "spread": True, "distinct": True}


def lr_psnr(samples_gray: np.ndarray, lr_gray: np.ndarray) -> np.ndarray:
    """(B, H, W) samples and (B, h, w) LR in [0, 1] -> (B,) PSNR (dB) of the bicubic x1/4 downscale vs LR.

    Capped at 60 dB (an exact match)."""
    down = imresize(np.transpose(samples_gray, (1, 2, 0)).astype(np.float64), output_shape=lr_gray.shape[1:])
    if down.ndim == 2:
        down = down[:, :, None]
    mse = ((np.transpose(down, (2, 0, 1)) - lr_gray.astype(np.float64)) ** 2).reshape(len(lr_gray), -1)
    mse_mean = np.maximum(mse.mean(axis=1), 1e-6)
    return np.asarray(10.0 * np.log10(1.0 / mse_mean), dtype=np.float64)


def bicubic_wrong(reader: Reader, lrs: np.ndarray, size: tuple[int, int], truth: Sequence[str]) -> np.ndarray:
    """(G,) 1.0 where ``reader`` misreads ``truth`` in the (G, h, w, 3) LRs upsampled bicubic to ``size``.

    The wrong-symbol rate of an SR output that invents nothing: the reference for a model's raw samples."""
    if len(lrs) != len(truth):
        raise SpecError(f"bicubic_wrong: {len(lrs)} LR inputs but {len(truth)} true symbols")
    up = [upsample_lr(np.asarray(lr, np.float64), size) for lr in lrs]
    readings = reader.read(up)
    return np.asarray([float(r.label != t) for r, t in zip(readings, truth, strict=True)], np.float64)


def pixel_spread(groups: np.ndarray) -> np.ndarray:
    """(G, N, H, W) gray samples -> (G,) per-LR diversity: the per-pixel std across samples, averaged."""
    return np.asarray(np.asarray(groups, np.float64).std(axis=1).mean(axis=(1, 2)), np.float64)


@dataclass(frozen=True)
class SampleGroups:
    """N samples of each of G LR inputs, as the referee read them, with their guard measures.

    ``labels`` (G, N) object array (None = unreadable), ``confidences`` (G, N), ``truth`` (G,),
    ``groups`` (G,) table group names (a severity or a source), ``lr_psnr`` (G, N) dB, ``spread`` (G,).
    """

    item_ids: tuple[str, ...]
    truth: tuple[str, ...]
    groups: tuple[str, ...]
    labels: np.ndarray
    confidences: np.ndarray
    lr_psnr: np.ndarray
    spread: np.ndarray

    def __post_init__(self) -> None:
        g = len(self.item_ids)
        shapes = (self.labels.shape, self.confidences.shape, self.lr_psnr.shape)
        if len(self.truth) != g or len(self.groups) != g or self.spread.shape != (g,):
            raise SpecError(f"SampleGroups: {g} items but truth/groups/spread of other lengths")
        if any(s[0] != g or len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
            raise SpecError(f"SampleGroups: labels, confidences and lr_psnr must be (G, N); got {shapes}")

    def per_item(self, threshold: float = 0.5) -> dict[str, np.ndarray]:
        """(G,) values of every measure (means over each item's samples)."""
        truth = np.asarray(self.truth, dtype=object)[:, None]
        right = self.labels == truth
        confident_wrong = (~right) & (self.labels != None) & (self.confidences >= threshold)  # noqa: E711
        distinct = np.asarray([len({lab for lab in row}) for row in self.labels], np.float64)
        return {
            "wrong": (~right).mean(axis=1).astype(np.float64),
            "hallucinated": confident_wrong.mean(axis=1).astype(np.float64),
            "lr_psnr": self.lr_psnr.mean(axis=1).astype(np.float64),
            "spread": self.spread.astype(np.float64),
            "distinct": distinct,
        }


def sample_groups(
    item_ids: Sequence[str],
    truth: Sequence[str],
    groups: Sequence[str],
    samples_gray: np.ndarray,
    lr_gray: np.ndarray,
    readings: Sequence[Sequence[tuple[str | None, float]]],
) -> SampleGroups:
    """Build :class:`SampleGroups` from (G, N, H, W) gray samples, (G, h, w) gray LRs and readings."""
    s = np.asarray(samples_gray, np.float32)
    if s.ndim != 4 or s.shape[0] != len(item_ids) or lr_gray.shape[0] != len(item_ids):
        raise SpecError(f"sample_groups: samples {s.shape} and LRs {lr_gray.shape} for {len(item_ids)} items")
    g, n = s.shape[:2]
    psnr = lr_psnr(s.reshape(g * n, *s.shape[2:]), np.repeat(lr_gray, n, axis=0)).reshape(g, n)
    labels = np.empty((g, n), dtype=object)
    conf = np.zeros((g, n), np.float64)
    for i, row in enumerate(readings):
        if len(row) != n:
            raise SpecError(f"sample_groups: item {item_ids[i]} has {len(row)} readings for {n} samples")
        for j, (label, c) in enumerate(row):
            labels[i, j] = label
            conf[i, j] = float(c)
    return SampleGroups(tuple(item_ids), tuple(truth), tuple(groups), labels, conf, psnr, pixel_spread(s))


@dataclass(frozen=True)
class ComparisonRow:
    """One measure in one group: base, aligned and aligned - base, each with its interval."""

    group: str
    measure: str
    n: int
    base: Estimate
    aligned: Estimate
    delta: Estimate

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"group": self.group, "measure": self.measure, "n": self.n}
        for key in ("base", "aligned", "delta"):
            e: Estimate = getattr(self, key)
            out[key] = _num(e.value)
            out[f"{key}_low"] = _num(e.low)
            out[f"{key}_high"] = _num(e.high)
        return out


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def group_order(groups: Sequence[str]) -> list[str]:
    """Severities in order (clean .. severe), then other sources, then ``all``."""
    names = [severity_name(i) for i in range(4)]
    present = [n for n in names if n in groups] + sorted(set(groups) - set(names))
    return [*present, "all"]


def compare_groups(
    base: SampleGroups,
    aligned: SampleGroups,
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    extra: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[ComparisonRow]:
    """Per group and measure: base vs aligned with paired bootstrap intervals over the shared items.

    ``extra`` adds per-item measures given as (base values, aligned values), e.g. each judge's top-1
    correctness from two testbed runs (``top1:<judge>``).
    """
    if base.item_ids != aligned.item_ids:
        raise SpecError("compare: the two sets of samples are not of the same LR inputs (item ids differ)")
    b, a = base.per_item(threshold), aligned.per_item(threshold)
    for name, (bv, av) in (extra or {}).items():
        if len(bv) != len(base.item_ids) or len(av) != len(base.item_ids):
            raise SpecError(f"compare: measure {name!r} needs one value per item")
        b[name], a[name] = np.asarray(bv, np.float64), np.asarray(av, np.float64)
    groups = np.asarray(base.groups, dtype=object)
    rows: list[ComparisonRow] = []
    for group in group_order(base.groups):
        members = np.arange(len(groups)) if group == "all" else np.flatnonzero(groups == group)
        if len(members) == 0:
            continue
        idx = boot_indices(len(members), n_boot, seed)
        for measure in b:
            bv, av = b[measure][members], a[measure][members]
            rows.append(
                ComparisonRow(group, measure, len(members), _est(bv, idx), _est(av, idx), _est(av - bv, idx))
            )
    return rows


def _est(values: np.ndarray, idx: np.ndarray) -> Estimate:
    if values.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    boots = values[idx].mean(axis=1) if idx.size else np.empty(0)
    return estimate(float(values.mean()), boots)


def markdown_table(rows: Sequence[ComparisonRow], measures: Sequence[str] | None = None) -> str:
    """A Markdown table: one line per (group, measure), base | aligned | delta with intervals."""
    keep = [r for r in rows if measures is None or r.measure in measures]
    lines = [
        "| group | measure | n | base | aligned | aligned - base |",
        "|---|---|---|---|---|---|",
    ]
    for r in keep:
        digits = 2 if r.measure in ("lr_psnr", "distinct") else 3
        lines.append(
            f"| {r.group} | {r.measure} | {r.n} | {_fmt(r.base, digits)} | {_fmt(r.aligned, digits)} | "
            f"{_fmt(r.delta, digits, signed=True)} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(e: Estimate, digits: int, signed: bool = False) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    sign = "+" if signed else ""
    point = f"{e.value:{sign}.{digits}f}"
    if not (math.isfinite(e.low) and math.isfinite(e.high)):
        return point
    return f"{point} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def samples_figure(
    lrs: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    *,
    truth: Sequence[str],
    before_labels: np.ndarray | None = None,
    after_labels: np.ndarray | None = None,
    zoom: int = 3,
) -> np.ndarray:
    """One picture of K LR inputs: per input, a row of the LR (bicubic-free, nearest x4), then its N
    samples before, then after alignment; wrong readings are framed red, right ones green.

    ``lrs`` (K, h, w, 3); ``before``/``after`` (K, N, H, W, 3) in [0, 1]; labels (K, N) or None.
    A header strip names the three parts. Returns an (rows, cols, 3) float array in [0, 1] (save it
    with :func:`srjudge.images.io.save_png`).
    """
    k, n, h, w = before.shape[:4]
    if after.shape[:2] != (k, n) or lrs.shape[0] != k or len(truth) != k:
        raise SpecError(
            "samples_figure: LRs, before, after and truth must cover the same K inputs and N samples"
        )
    cell = h * zoom + 4
    gap = 8
    width = (1 + 2 * n) * cell + 2 * gap
    canvas = np.ones((k * cell, width, 3), np.float32)

    def put(row: int, col_px: int, image: np.ndarray, frame: tuple[float, float, float] | None) -> None:
        big = np.kron(image[..., :3], np.ones((zoom, zoom, 1), np.float32))
        y, x = row * cell, col_px
        if frame is not None:
            canvas[y : y + cell, x : x + cell] = frame
        canvas[y + 2 : y + 2 + h * zoom, x + 2 : x + 2 + w * zoom] = big

    green, red, gray = (0.1, 0.65, 0.2), (0.85, 0.1, 0.1), (0.6, 0.6, 0.6)
    scale = h // lrs.shape[1]
    for i in range(k):
        lr_big = np.kron(lrs[i][..., :3], np.ones((scale, scale, 1), np.float32))
        put(i, 0, lr_big, gray)
        for j in range(n):
            for part, (images, labels) in enumerate(((before, before_labels), (after, after_labels))):
                frame = None
                if labels is not None:
                    frame = green if labels[i, j] == truth[i] else red
                put(i, cell + gap + part * (n * cell + gap) + j * cell, images[i, j], frame)
    return _with_header(
        np.clip(canvas, 0.0, 1.0),
        [
            (0, "LR"),
            (cell + gap, "before: the base model's samples"),
            (cell + 2 * gap + n * cell, "after: aligned"),
        ],
    )


def _with_header(canvas: np.ndarray, labels: Sequence[tuple[int, str]], height: int = 18) -> np.ndarray:
    """``canvas`` with a white strip on top holding each text at its x offset (PIL's default font)."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (canvas.shape[1], height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for x, text in labels:
        draw.text((x + 2, 3), text, fill=(0, 0, 0))
    head = np.asarray(strip, dtype=np.float32) / 255.0
    return np.concatenate([head, canvas.astype(np.float32)], axis=0)
