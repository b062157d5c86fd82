"""Testbed experiment outputs: terminal table, ``table.md|json|csv``, plots and a static ``index.html``.

The page follows the house style of :mod:`srjudge.report.html` and :mod:`srjudge.bench.page`: inline CSS,
no JavaScript, no external assets (images are PNG data URIs), a Content-Security-Policy forbidding
network access, and every text HTML-escaped (judge specs and labels come from users and models).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srjudge.bench.bootstrap import Estimate
from srjudge.bench.page import PAGE_CSS, html_page, plot_figure, table_html, to_csv, to_markdown
from srjudge.bench.page import escape_html as _e
from srjudge.images.io import load_image, to_uint8
from srjudge.testbed.measures import (
    CandidateMeasures,
    ItemFacts,
    Measures,
    Pick,
    by_severity,
    group_of,
    outcome,
)
from srjudge.testbed.results import ExperimentResult
from srjudge.testbed.severity import SEVERITIES
from srjudge.testbed.work import fused_image

VIEW_PX = 96
"""Images on the page are nearest-upscaled to this size (LR 8 px x12, candidates 32 px x3)."""

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("top1_acc", "share of items whose top-1 pick the referee reads as the true symbol"),
    ("fused_acc", "the same for the fusion of the judge's top-k candidates"),
    (
        "halluc",
        "share of items whose pick the referee confidently (>= threshold) reads as a DIFFERENT symbol",
    ),
    ("fused_halluc", "the same for the fused top-k"),
    ("pick_tws", "mean Trustworthiness Score (0-100, `tws` judge) of the picks"),
    ("abstained", "items where the judge abstained on every candidate (counted as not correct)"),
    ("random", "exact expectation of a uniformly random pick (mean over each item's candidates)"),
    ("oracle", "share of items where at least one candidate is correct"),
    ("[lo, hi]", "95 % percentile bootstrap interval over items (seeded, paired across judges)"),
)


# ---------------------------------------------------------------------------------------------------
# Tables


def _ci(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _est(e: Estimate | None) -> str:
    return "—" if e is None else _ci(e.value, e.low, e.high)


def summary_rows(result: ExperimentResult, severity: str = "all") -> list[dict[str, Any]]:
    """One row per judge and baseline at one severity, CI columns as text (terminal and Markdown)."""
    info = {j.spec: j for j in result.judges}
    rows = []
    for m in result.rows:
        if m.severity != severity:
            continue
        j = info.get(m.name)
        status = j.status if j is not None else "ok"
        ok = status == "ok"
        rows.append(
            {
                "judge": m.name,
                "kind": m.kind,
                "n": m.n if ok else None,
                "abstained": m.abstained if ok else None,
                "top1_acc": _est(m.top1_accuracy) if ok else status,
                "fused_acc": _est(m.fused_accuracy),
                "halluc": _est(m.hallucination) if ok else "—",
                "fused_halluc": _est(m.fused_hallucination),
                "pick_tws": _est(m.tws),
                "seconds": round(j.seconds, 2) if j is not None and ok else None,
            }
        )
    return rows


def severity_rows(result: ExperimentResult, measure: str = "top1_accuracy") -> list[dict[str, Any]]:
    """One row per judge: ``measure`` (with CI) in each severity column, then ``all``."""
    order: dict[str, dict[str, Any]] = {}
    for m in result.rows:
        row = order.setdefault(m.name, {"judge": m.name})
        est: Estimate | None = getattr(m, measure)
        row[m.severity] = (m.note if m.note in ("needs weights",) else _est(est)) if m.n or m.note else "—"
    return list(order.values())


def candidate_rows(result: ExperimentResult) -> list[dict[str, Any]]:
    """Per backend and severity: candidate accuracy and the wrong-symbol rate (the testbed's premise)."""
    return [
        {
            "backend": c.backend,
            "severity": c.severity,
            "items": c.n_items,
            "candidates": c.n_candidates,
            "accuracy": _est(c.accuracy),
            "wrong_symbol": _est(c.wrong_symbol),
            "items_with_wrong": _est(c.items_with_wrong),
            "items_disagreeing": _est(c.items_disagreeing),
        }
        for c in result.candidates
    ]


def settings_text(result: ExperimentResult) -> dict[str, str]:
    """The settings as short strings (page header, Markdown)."""
    s = result.settings()
    tb = s["testbed"]
    return {
        "testbed": f"{tb.get('folder')} (digest {tb.get('digest', '?')}, seed {tb.get('seed', '?')})",
        "split / items": f"{s['split']} / {s['items']}" + (f" (limit {s['limit']})" if s["limit"] else ""),
        "backends": ", ".join(s["backends"]) + f" (stochastic ones: {s['samples']} samples each)",
        "top-k / fusion": f"{s['top_k']} / {s['fusion']}",
        "referee": f"{s['referee'].get('spec')} (confident at >= {s['threshold']})",
        "seeds": f"run seed {s['seed']}; bootstrap {s['bootstrap']} resamples, seed {s['seed']}",
        "judges": "; ".join(f"{j.spec} [{j.status}]" for j in result.judges),
        "srjudge": str(s["srjudge"]),
    }


def _point(e: Estimate | None, digits: int = 3) -> str:
    return "—" if e is None or not math.isfinite(e.value) else f"{e.value:.{digits}f}"


def _band(e: Estimate | None) -> str:
    if e is None or not (math.isfinite(e.low) and math.isfinite(e.high)):
        return "—"
    return f"{e.low:.2f}-{e.high:.2f}"


def terminal_table(result: ExperimentResult) -> Any:
    """The summary (all severities) as a compact rich Table (the full CIs are in table.md)."""
    from rich.table import Table

    info = {j.spec: j for j in result.judges}
    table = Table(title=f"testbed: does the pick still show the input's symbol? ({len(result.facts)} items)")
    baselines = ", ".join(dict.fromkeys(m.name for m in result.rows if m.kind == "baseline"))
    table.caption = f"baselines: {baselines}; full intervals and per-severity tables in table.md"
    cols = ("judge", "n", "abst", "top1", "95% CI", "fused", "halluc", "TWS", "s")
    for col in cols:
        table.add_column(col, overflow="fold", justify="left" if col == "judge" else "right")
    for m in result.rows:
        if m.severity != "all":
            continue
        j = info.get(m.name)
        if j is not None and j.status != "ok":
            table.add_row(m.name, "—", "—", j.status, "", "", "", "", "")
            continue
        table.add_row(
            m.name,
            str(m.n),
            str(m.abstained),
            _point(m.top1_accuracy),
            _band(m.top1_accuracy),
            _point(m.fused_accuracy),
            _point(m.hallucination),
            _point(m.tws, 1),
            f"{j.seconds:.1f}" if j is not None else "—",
        )
    return table


def markdown(result: ExperimentResult) -> str:
    parts = [
        "# Testbed experiment\n",
        "\n".join(f"- **{k}**: {v}" for k, v in settings_text(result).items()) + "\n",
        "## All severities\n",
        to_markdown(summary_rows(result)),
        "## Top-1 accuracy by severity\n",
        to_markdown(severity_rows(result, "top1_accuracy")),
        "## Hallucination rate by severity\n",
        to_markdown(severity_rows(result, "hallucination")),
        "## Candidates by backend\n",
        to_markdown(candidate_rows(result)),
        "## Columns\n",
        "\n".join(f"- `{k}`: {v}" for k, v in DEFINITIONS) + "\n",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------
# Plots


def _series(result: ExperimentResult, measure: str) -> tuple[list[str], dict[str, list[Estimate | None]]]:
    present = {m.severity for m in result.rows if m.n}
    levels = [s for s in SEVERITIES if s in present] + sorted(present - set(SEVERITIES) - {"all"})
    series: dict[str, list[Estimate | None]] = {}
    for m in result.rows:
        if m.n == 0 or m.severity not in levels:
            continue
        series.setdefault(m.name, [None] * len(levels))[levels.index(m.severity)] = getattr(m, measure)
    return levels, series


def plot_vs_severity(result: ExperimentResult, measure: str, ylabel: str, path: Path) -> Path:
    """One line per judge over severity with its 95 % CI as a band; baselines dashed."""
    from srjudge.bench.plots import new_figure, save_figure, short_label

    levels, series = _series(result, measure)
    ordinal = sum(1 for level in levels if level in SEVERITIES)
    fig = new_figure(7.0, 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(levels))
    kinds = {m.name: m.kind for m in result.rows}
    colours = [
        "#2f6fdf", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#2c3e50", "#b7950b", "#7f8c8d",
    ]  # fmt: skip
    for n, (name, values) in enumerate(series.items()):
        v = np.array([math.nan if e is None else e.value for e in values], dtype=np.float64)
        lo = np.array([math.nan if e is None else e.low for e in values], dtype=np.float64)
        hi = np.array([math.nan if e is None else e.high for e in values], dtype=np.float64)
        if not np.isfinite(v).any():
            continue
        colour = colours[n % len(colours)]
        baseline = kinds.get(name) == "baseline"
        style = "--" if baseline else "-"
        ax.plot(
            x[:ordinal],
            v[:ordinal],
            marker="o",
            ms=4,
            lw=1.6,
            color=colour,
            ls=style,
            label=short_label(name),
        )
        if ordinal < len(levels):  # other sources (sklearn digits): points with whiskers, not on the line
            ax.errorbar(
                x[ordinal:] + 0.04 * (n - len(series) / 2),
                v[ordinal:],
                yerr=np.vstack([np.nan_to_num(v - lo)[ordinal:], np.nan_to_num(hi - v)[ordinal:]]),
                fmt="o",
                ms=4,
                color=colour,
                capsize=2,
                lw=1.0,
            )
        if np.isfinite(lo).any():
            ax.fill_between(x[:ordinal], lo[:ordinal], hi[:ordinal], color=colour, alpha=0.12, linewidth=0)
    if ordinal < len(levels):
        ax.axvline(ordinal - 0.5, color="#5b6475", lw=0.8, ls=":")
    ax.set_xticks(x, levels)
    note = " (sklearn digits: as scanned)" if ordinal < len(levels) else ""
    ax.set_xlabel(f"severity of the LR degradation{note}", fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, color="#dde2ea", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(short_label(f"{ylabel} vs severity (95 % bootstrap bands)", 70), fontsize=11)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------
# The page


_CSS = (
    PAGE_CSS
    + """
:root{--ok:#1e7d3a;--bad:#b3261e;--unc:#8a6d00}
main{max-width:1280px}
h3{font-size:15px;margin:0 0 6px}
.plots{grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}
figcaption{color:var(--muted);font-size:12.5px;overflow-wrap:anywhere}
.item{border-top:1px solid var(--line);padding:12px 0}
.item:first-of-type{border-top:0}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.card{width:112px;border:1px solid var(--line);border-radius:8px;padding:6px;background:#fff;font-size:12px}
.card img{display:block;width:96px;height:96px;image-rendering:pixelated;border:1px solid var(--line)}
.card.picked{border:2px solid #2f6fdf;padding:5px}
.lr{background:#f0f3f8}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}.unc{color:var(--unc)}
.pick{display:inline-block;background:#e6efff;color:#1b4fa8;border-radius:4px;padding:0 4px;
margin:2px 2px 0 0;font-size:11px;overflow-wrap:anywhere}
.muted{color:var(--muted)}
pre.msg{white-space:pre-wrap;font-size:12px;margin:4px 0;overflow-wrap:anywhere}
.legend span{margin-right:14px}
"""
)


def _png_uri(image: np.ndarray, size: int | None = None) -> str:
    """A PNG data URI, nearest-upscaled to ``size`` px when given; otherwise at its own resolution (the
    page shows it at 96 px with ``image-rendering: pixelated``, which keeps the page small)."""
    h = image.shape[0]
    factor = max(1, (size or h) // h)
    big = np.repeat(np.repeat(to_uint8(image), factor, axis=0), factor, axis=1)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _reading_html(label: str | None, conf: float, truth: str, threshold: float) -> str:
    kind = outcome(label, conf, truth, threshold)
    css = {"correct": "ok", "hallucinated": "bad", "unclear": "unc"}[kind]
    text = "unreadable" if label is None else f"reads {label} ({conf:.2f})"
    return f'<span class="{css}">{_e(text)}</span>'


def choose_examples(result: ExperimentResult, per_severity: int = 3) -> list[ItemFacts]:
    """A few items per severity: first those where the judges' picks disagree, then agreeing ones.

    Disagreement = how many different symbols the running judges' picks show (abstention counts as one).
    Deterministic: ties broken by item id.
    """
    specs = [j.spec for j in result.judges if j.status == "ok"]

    def spread(f: ItemFacts) -> int:
        shown = set()
        for spec in specs:
            p = result.picks[spec][f.item_id]
            shown.add("<abstain>" if p.abstained else str(p.label))
        return len(shown)

    chosen: list[ItemFacts] = []
    for _, members in by_severity(result.facts)[:-1]:
        group = sorted(members, key=lambda f: (-spread(f), f.item_id))
        disagree = [f for f in group if spread(f) > 1][: max(1, per_severity - 1)]
        agree = [f for f in group if spread(f) <= 1]
        chosen += (disagree + agree)[:per_severity]
    return chosen


def _item_html(result: ExperimentResult, f: ItemFacts) -> str:
    record = result.records[f.item_id]
    images = [load_image(p) for p in record.candidate_files]
    threshold = result.config.threshold
    specs = [j.spec for j in result.judges if j.status == "ok"]
    picked: dict[int, list[str]] = {}
    for spec in specs:
        p = result.picks[spec][f.item_id]
        if p.index is not None:
            picked.setdefault(p.index, []).append(spec)
    cards = []
    if record.lr_path is not None and Path(record.lr_path).is_file():
        lr = load_image(record.lr_path)
        cards.append(
            f'<div class="card lr"><img src="{_png_uri(lr, VIEW_PX)}" alt="LR input">'
            f"<b>LR input</b><br>true: <b>{_e(f.truth)}</b><br>"
            f'<span class="muted">{lr.shape[1]}x{lr.shape[0]} px</span></div>'
        )
    for i, image in enumerate(images):
        who = "".join(f'<span class="pick">{_e(s)}</span>' for s in picked.get(i, []))
        css = "card picked" if i in picked else "card"
        tws = f.tws[i] if f.tws else None
        cards.append(
            f'<div class="{css}"><img src="{_png_uri(image)}" alt="candidate {i}">'
            f"#{i} {_e(f.backends[i])}<br>{_reading_html(f.labels[i], f.confidences[i], f.truth, threshold)}"
            + (f'<br><span class="muted">TWS {tws:.1f}</span>' if tws is not None else "")
            + (f"<br>{who}" if who else "")
            + "</div>"
        )
    fused_cards = []
    for spec in specs:
        choice: Pick = result.picks[spec][f.item_id]
        if choice.abstained or not choice.topk:
            fused_cards.append(
                f'<div class="card"><b>{_e(spec)}</b><br><span class="unc">abstained</span></div>'
            )
            continue
        fused = fused_image(images, choice.topk, choice.scores or [None] * len(images), result.config.fusion)
        fused_cards.append(
            f'<div class="card"><img src="{_png_uri(fused)}" alt="fused by {_e(spec)}">'
            f'<span class="pick">{_e(spec)}</span><br>top-{len(choice.topk)} {_e(list(choice.topk))}<br>'
            f"{_reading_html(choice.fused_label, choice.fused_confidence, f.truth, threshold)}</div>"
        )
    sev = group_of(f)
    return (
        f'<div class="item"><h3>{_e(f.item_id)} · true {_e(f.truth)} · {_e(sev)} · {_e(f.source)}</h3>'
        f'<div class="row">{"".join(cards)}</div>'
        f'<p class="note" style="margin:8px 0 4px">Fused top-{result.config.top_k} '
        f"({_e(result.config.fusion)}) per judge:</p>"
        f'<div class="row">{"".join(fused_cards)}</div></div>'
    )


def render_page(result: ExperimentResult, plots: Sequence[Path], examples: Sequence[ItemFacts]) -> str:
    settings = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in settings_text(result).items())
    definitions = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in DEFINITIONS)
    needs = [j for j in result.judges if j.status != "ok"]
    needs_html = "".join(
        f'<li><b>{_e(j.spec)}</b>: {_e(j.status)}.<pre class="msg">{_e(j.message)}</pre></li>' for j in needs
    )
    figures = "".join(plot_figure(p) for p in plots)
    legend = (
        '<p class="legend note"><span class="ok">reads the true symbol</span>'
        '<span class="bad">confidently reads another symbol (hallucination)</span>'
        '<span class="unc">unclear / unreadable</span>'
        '<span><span class="pick">judge</span> picked this candidate (blue frame)</span></p>'
    )
    items = "".join(_item_html(result, f) for f in examples)
    body = (
        "<header><h1>Testbed: does the picked SR output still show the input's symbol?</h1>"
        '<p class="note">Diffusion samples and other backends upscale ambiguous LR glyphs; an independent '
        "referee reader says what each output shows; each judge picks one (and fuses its top-k).</p>"
        f'<table class="kv">{settings}</table></header>'
        f"<section><h2>All severities</h2>{table_html(summary_rows(result), numeric_text=True)}"
        + (f'<ul class="note">{needs_html}</ul>' if needs_html else "")
        + "</section>"
        "<section><h2>Top-1 accuracy by severity</h2>"
        f"{table_html(severity_rows(result, 'top1_accuracy'), numeric_text=True)}"
        "</section>"
        "<section><h2>Hallucination rate by severity</h2>"
        f"{table_html(severity_rows(result, 'hallucination'), numeric_text=True)}"
        "</section>"
        "<section><h2>Candidates by backend</h2>"
        f"{table_html(candidate_rows(result), numeric_text=True)}</section>"
        + (f'<section><h2>Plots</h2><div class="plots">{figures}</div></section>' if figures else "")
        + f"<section><h2>Examples</h2>{legend}{items}</section>"
        f'<section><h2>Columns</h2><table class="kv">{definitions}</table></section>'
    )
    return html_page("srjudge testbed experiment", body, css=_CSS)


def write_outputs(result: ExperimentResult, out_dir: Path | str, *, per_severity: int = 3) -> dict[str, Path]:
    """Write table.md|json|csv, candidates.csv, plots/*.png and index.html; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["table.md"] = out / "table.md"
    paths["table.md"].write_text(markdown(result), encoding="utf-8")
    paths["table.json"] = out / "table.json"
    paths["table.json"].write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    paths["table.csv"] = to_csv([m.to_row() for m in result.rows], None, out / "table.csv")
    paths["candidates.csv"] = to_csv([c.to_row() for c in result.candidates], None, out / "candidates.csv")
    plots = [
        plot_vs_severity(result, "top1_accuracy", "top-1 semantic accuracy", out / "plots" / "accuracy.png"),
        plot_vs_severity(
            result, "fused_accuracy", "fused top-k accuracy", out / "plots" / "fused_accuracy.png"
        ),
        plot_vs_severity(result, "hallucination", "hallucination rate", out / "plots" / "hallucination.png"),
    ]
    for p in plots:
        paths[f"plots/{p.name}"] = p
    page = out / "index.html"
    page.write_text(render_page(result, plots, choose_examples(result, per_severity)), encoding="utf-8")
    paths["index.html"] = page
    return paths


__all__ = [
    "CandidateMeasures",
    "Measures",
    "candidate_rows",
    "choose_examples",
    "markdown",
    "render_page",
    "severity_rows",
    "summary_rows",
    "terminal_table",
    "write_outputs",
]
