"""``srjudge testbed compare``: the same testbed run with a base and an aligned SR model, side by side.

Runs the experiment (:func:`srjudge.testbed.experiment.run_experiment`, cached and resumable) once per
model into ``OUT/base`` and ``OUT/aligned`` with that model as the only backend (the paper's setting:
candidates = its N samples), then measures, per severity and with paired bootstrap intervals
(:mod:`srjudge.testbed.alignment`): the raw samples' wrong-symbol and hallucination rates, their
LR-PSNR and diversity, the oracle, each judge's top-1 accuracy, and the wrong-symbol rate of the
bicubic x4 upsample (the reference: an output that invents nothing). Writes ``compare.md/.json/.csv``,
``samples.png`` (the same inputs' samples before and after) and ``index.html``.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge import atomic
from srjudge.errors import SpecError
from srjudge.images.io import load_image, save_png
from srjudge.testbed.alignment import (
    ComparisonRow,
    SampleGroups,
    bicubic_wrong,
    compare_groups,
    markdown_table,
    sample_groups,
    samples_figure,
)
from srjudge.testbed.candidates import Progress
from srjudge.testbed.measures import group_of
from srjudge.testbed.results import ExperimentConfig, ExperimentResult

if TYPE_CHECKING:
    from srjudge.execute import Executor

RUNS = ("base", "aligned")


@dataclass(frozen=True)
class ModelComparison:
    """Both runs and the comparison rows (``top1:<judge>`` and ``oracle`` rows from the picks)."""

    base: ExperimentResult
    aligned: ExperimentResult
    rows: tuple[ComparisonRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.settings(),
            "aligned": self.aligned.settings(),
            "rows": [r.to_dict() for r in self.rows],
        }


def _groups(result: ExperimentResult) -> tuple[SampleGroups, np.ndarray, np.ndarray]:
    """The run's sample groups, plus (G, N, H, W, 3) candidate images and (G, h, w, 3) LRs."""
    from srjudge.sr.conditional_diffusion import to_gray

    facts = result.facts
    images, lrs = [], []
    for f in facts:
        record = result.records[f.item_id]
        if record.lr_path is None:
            raise SpecError(f"compare: item {f.item_id} has no LR file in the testbed")
        images.append(np.stack([load_image(p) for p in record.candidate_files]))
        lrs.append(load_image(record.lr_path))
    counts = {len(x) for x in images}
    if len(counts) != 1:
        raise SpecError(f"compare: items have different numbers of candidates ({sorted(counts)})")
    stack, lr = np.stack(images), np.stack(lrs)
    g = len(facts)
    groups = sample_groups(
        [f.item_id for f in facts],
        [f.truth for f in facts],
        [group_of(f) for f in facts],
        to_gray(stack),
        to_gray(lr),
        [list(zip(f.labels, f.confidences, strict=True)) for f in facts],
    )
    assert stack.shape[0] == g
    return groups, stack, lr


def _pick_correct(result: ExperimentResult, spec: str) -> np.ndarray:
    picks = result.picks[spec]
    return np.asarray([float(picks[f.item_id].label == f.truth) for f in result.facts], np.float64)


def _oracle(groups: SampleGroups) -> np.ndarray:
    truth = np.asarray(groups.truth, dtype=object)[:, None]
    return np.asarray((groups.labels == truth).any(axis=1), np.float64)


def compare_models(
    testbed: Path | str,
    base: str,
    aligned: str,
    config: ExperimentConfig,
    out_dir: Path | str,
    *,
    progress: Progress | None = None,
    figure_inputs: int = 8,
    executor: Executor | None = None,
) -> ModelComparison:
    """Run the testbed with each model as the only backend and compare them (see the module docstring)."""
    from srjudge.readers import create_reader
    from srjudge.testbed.experiment import run_experiment
    from srjudge.testbed.report import write_outputs

    if base == aligned:
        raise SpecError(f"compare: --base and --aligned are the same model ({base!r})")
    out = Path(out_dir)
    results: dict[str, ExperimentResult] = {}
    for name, spec in zip(RUNS, (base, aligned), strict=True):
        cfg = dataclasses.replace(config, backends=(spec,))
        results[name] = run_experiment(testbed, cfg, out / name, progress=progress, executor=executor)
        write_outputs(results[name], out / name)
    (gb, img_b, lrs), (ga, img_a, _) = _groups(results["base"]), _groups(results["aligned"])
    ran = [j.spec for j in results["base"].judges if j.status == "ok"]
    reference = bicubic_wrong(create_reader(config.referee), lrs, img_b.shape[2:4], gb.truth)
    extra = {"oracle": (_oracle(gb), _oracle(ga)), "bicubic_wrong": (reference, reference)}
    extra.update(
        {f"top1:{s}": (_pick_correct(results["base"], s), _pick_correct(results["aligned"], s)) for s in ran}
    )
    rows = tuple(
        compare_groups(
            gb, ga, threshold=config.threshold, n_boot=config.n_boot, seed=config.seed, extra=extra
        )
    )
    comparison = ModelComparison(results["base"], results["aligned"], rows)
    _write(comparison, out, gb, ga, img_b, img_a, lrs, base, aligned, figure_inputs)
    return comparison


def _write(
    c: ModelComparison,
    out: Path,
    gb: SampleGroups,
    ga: SampleGroups,
    img_b: np.ndarray,
    img_a: np.ndarray,
    lrs: np.ndarray,
    base: str,
    aligned: str,
    k: int,
) -> None:
    from srjudge.bench.page import to_csv

    atomic.write_json(out / "compare.json", c.to_dict())
    to_csv([r.to_dict() for r in c.rows], None, out / "compare.csv")
    head = (
        f"Base `{base}` vs aligned `{aligned}` on the testbed's {c.base.config.split} split "
        f"({len(gb.item_ids)} LR inputs, {img_b.shape[1]} samples each, graded by `{c.base.config.referee}`; "
        "95 % paired bootstrap intervals over inputs).\n\n"
    )
    table = markdown_table(c.rows)
    atomic.write_text(out / "compare.md", head + table)
    wrong_b, wrong_a = gb.per_item()["wrong"], ga.per_item()["wrong"]
    order = sorted(range(len(wrong_b)), key=lambda i: (-abs(wrong_b[i] - wrong_a[i]), i))[:k]
    pick = sorted(order)
    if pick:
        fig = samples_figure(
            lrs[pick], img_b[pick], img_a[pick], truth=[gb.truth[i] for i in pick],
            before_labels=gb.labels[pick], after_labels=ga.labels[pick],
        )  # fmt: skip
        save_png(out / "samples.png", fig)
    atomic.write_text(out / "index.html", _page(head, c.rows, [gb.item_ids[i] for i in pick]))


def _page(head: str, rows: Sequence[ComparisonRow], items: Sequence[str]) -> str:
    cells = []
    for r in rows:
        d = r.to_dict()
        cells.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(d[k]))}</td>" for k in ("group", "measure", "n"))
            + "".join(
                f"<td>{_cell(d[k], d[k + '_low'], d[k + '_high'])}</td>" for k in ("base", "aligned", "delta")
            )
            + "</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>srjudge: base vs aligned SR model</title>"
        "<style>body{font-family:sans-serif;margin:24px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "img{image-rendering:pixelated;max-width:100%}</style></head><body>"
        "<h1>Base vs aligned SR model on the testbed</h1>"
        f"<p>{html.escape(head.strip())}</p>"
        "<h2>The same inputs' samples</h2><p>Per row: the LR input (nearest x4), the base model's samples, "
        "then the aligned model's, same seeds; green frame = the referee reads the true symbol, red = "
        f"another or none. Inputs: {html.escape(', '.join(items))}.</p><img src='samples.png' alt='samples'>"
        "<h2>Measures</h2><table><tr><th>group</th><th>measure</th><th>n</th><th>base</th><th>aligned</th>"
        f"<th>aligned - base</th></tr>{''.join(cells)}</table>"
        "<p>Per-run pages: <a href='base/index.html'>base</a>, <a href='aligned/index.html'>aligned</a>.</p>"
        "</body></html>"
    )


def _cell(value: Any, low: Any, high: Any) -> str:
    if value is None:
        return "n/a"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"
