"""Benchmark plots as small PNG files (150 dpi): judge-vs-MOS scatter with its fit, bars with CI whiskers.

matplotlib is imported lazily (the ``bench`` extra) and only through its object-oriented API with the
Agg canvas: no pyplot, no global backend switch, no display needed.
"""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from srjudge.bench.fitting import LogisticFit
from srjudge.errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 150
_INSTALL_HINT = "pip install 'srjudge[bench]'"
_POINT = "#2f6fdf"
_CURVE = "#c0392b"
_BAR = "#5b7fbf"


def new_figure(width: float, height: float) -> Figure:
    """A new Agg-backed figure, or MissingDependencyError when matplotlib is not installed."""
    try:
        figure_mod = importlib.import_module("matplotlib.figure")
        agg = importlib.import_module("matplotlib.backends.backend_agg")
    except ImportError as exc:
        raise MissingDependencyError(
            f"benchmark plots need matplotlib, which is not installed ({exc}). Install it: {_INSTALL_HINT}."
        ) from None
    fig: Figure = figure_mod.Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    agg.FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path | str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    # An adaptive 128-colour palette keeps dense scatters well under 150 KB with no visible loss.
    with Image.open(buf) as img:
        img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def short_label(text: str, limit: int = 28) -> str:
    """Shortened to ``limit`` characters, with ``$`` escaped so that names are never read as mathtext."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def scatter_with_fit(
    pred: ArrayLike,
    mos: ArrayLike,
    fit: LogisticFit | None,
    *,
    title: str,
    path: Path | str,
    xlabel: str = "judge score (0-100, higher is better)",
    ylabel: str = "human score (MOS)",
    higher_is_better: bool = True,
) -> Path:
    """Judge scores against human scores, with the fitted mapping drawn over them; returns ``path``.

    With ``higher_is_better=False`` (DMOS) the mapping was fitted onto the negated human scores
    (:mod:`srjudge.bench.fitting`' convention) and is drawn negated, over the DMOS values as given.
    """
    x = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"predictions and human scores differ in length: {x.size} vs {y.size}")
    fig = new_figure(6.0, 4.5)
    ax = fig.add_subplot()
    size = 14.0 if x.size <= 300 else 6.0
    alpha = 0.8 if x.size <= 300 else max(0.15, min(0.6, 150.0 / x.size))
    ax.scatter(x, y, s=size, alpha=alpha, color=_POINT, edgecolors="none", label=f"items (n={x.size})")
    if fit is not None and x.size:
        grid = np.linspace(float(x.min()), float(x.max()), 300)
        curve = fit(grid) if higher_is_better else -fit(grid)
        name = "linear fit" if fit.kind == "linear" else f"{fit.kind} logistic fit"
        ax.plot(grid, curve, color=_CURVE, linewidth=2.0, label=f"{name} (monotone)")
    ax.set_title(short_label(title, 70), fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.grid(True, color="#dde2ea", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="best", fontsize=9, frameon=False)
    return save_figure(fig, path)


def bars_with_ci(
    names: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    ylabel: str,
    path: Path | str,
) -> Path:
    """One bar per judge with its 95 % CI as whiskers (NaN bounds: no whisker); returns ``path``."""
    if not (len(names) == len(values) == len(lows) == len(highs)):
        raise ValueError("names, values, lows and highs must have the same length")
    v = np.asarray(values, dtype=np.float64)
    lo = np.asarray(lows, dtype=np.float64)
    hi = np.asarray(highs, dtype=np.float64)
    below = np.where(np.isfinite(lo), np.maximum(v - lo, 0.0), 0.0)
    above = np.where(np.isfinite(hi), np.maximum(hi - v, 0.0), 0.0)
    labels = [short_label(str(n)) for n in names]
    width = min(12.0, max(4.5, 1.0 + 0.7 * len(names)))
    fig = new_figure(width, 4.5)
    ax = fig.add_subplot()
    pos = np.arange(len(names))
    heights = np.where(np.isfinite(v), v, 0.0)
    ax.bar(pos, heights, color=_BAR, width=0.65)
    ax.errorbar(pos, heights, yerr=np.vstack([below, above]), fmt="none", ecolor="#1d2330", capsize=4, lw=1.2)
    tops = np.maximum(heights + above, 0.0)
    for p, value, top in zip(pos, v, tops, strict=True):
        text = "n/a" if not math.isfinite(value) else f"{value:.3f}"
        ax.annotate(text, (p, top), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    ax.margins(y=0.12)
    ax.set_xticks(
        pos, labels, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.tick_params(axis="x", labelsize=9)
    ax.set_title(short_label(title, 70), fontsize=11)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.grid(True, axis="y", color="#dde2ea", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.axhline(0.0, color="#5b6475", linewidth=0.8)
    return save_figure(fig, path)
