"""``srjudge bench``: how well judges agree with people, how stable they are, what they cost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from srjudge.cli.common import _create_judges, _executor, _progress_task, app, err, out
from srjudge.cli.options import BOOTSTRAP, EXECUTOR, JUDGES, OUT_DIR


@app.command("bench")
def bench_cmd(
    dataset: Annotated[
        Path | None,
        typer.Option("--dataset", "-d", help="Dataset CSV/JSONL (or its folder with dataset.json)."),
    ] = None,
    synthetic: Annotated[
        str | None,
        typer.Option("--synthetic", help="Generate and use a SYNTHETIC set: mos, pairwise or best-of-n."),
    ] = None,
    judges: Annotated[str, JUDGES] = "niqe,trust",
    repeats: Annotated[
        int, typer.Option("--repeats", help="Judgements per item (instability needs >= 2).")
    ] = 1,
    bootstrap: Annotated[int, BOOTSTRAP] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and of synthetic data.")] = 0,
    out_dir: Annotated[Path, OUT_DIR] = Path("srjudge-out/bench"),
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Measure judges against human opinion (MOS, pairwise, best-of-N): table, plots and an HTML page."""
    from srjudge.bench.datasets import MOSDataset, load_dataset
    from srjudge.bench.evaluate import GROUPED_COLUMNS, GROUPED_NOTE, run_bench
    from srjudge.bench.synthetic import make_synthetic
    from srjudge.errors import SrjudgeError

    if bootstrap < 0:
        raise SrjudgeError(f"--bootstrap {bootstrap}: give a number of resamples >= 0 (0: no CIs).")
    if (dataset is None) == (synthetic is None):
        raise SrjudgeError("Give exactly one of --dataset PATH or --synthetic mos|pairwise|best-of-n.")
    if synthetic is not None:
        if synthetic not in ("mos", "pairwise", "best-of-n"):
            raise SrjudgeError(f"--synthetic {synthetic!r}: use mos, pairwise or best-of-n.")
        dataset = make_synthetic(out_dir / "data", synthetic, seed=seed)  # type: ignore[arg-type]
        err.print(f"SYNTHETIC {synthetic} dataset generated in {dataset} (not human opinion)")
    assert dataset is not None
    data = load_dataset(dataset)
    the_judges = _create_judges(judges)
    with _executor(executor) as pool, _progress_task("bench") as update:
        rows = run_bench(
            data,
            the_judges,
            out_dir,
            repeats=repeats,
            n_boot=bootstrap,
            seed=seed,
            progress=lambda spec, done, total: update(done, total, spec),
            executor=pool,
        )
    title = f"{data.name}" + (" (SYNTHETIC)" if data.synthetic else "")
    grouped = isinstance(data, MOSDataset) and data.grouped
    _print_table(_table(title, rows, [c for c in _WANTED if not (grouped and c in GROUPED_COLUMNS)]))
    if isinstance(data, MOSDataset) and grouped:
        title = f"Agreement within groups ({len(set(data.groups))} groups in the dataset)"
        _print_table(_table(title, rows, ("judge", *GROUPED_COLUMNS)))
        out.print(GROUPED_NOTE, style="dim")
    out.print(f"table.md, table.csv, table.json, plots and index.html in {out_dir}")


_WANTED = (
    "judge",
    "n",
    "pairs",
    "groups",
    "abstained",
    "SRCC",
    "PLCC",
    "RMSE",
    "fit",
    "accuracy",
    "position_consistency",
    "top1_agreement",
    "vote_share",
    "seconds",
    "images_per_s",
)


def _cell(value: object) -> str:
    """A table cell; an estimate ``0.812 [0.700, 0.900]`` puts its CI on a second line."""
    if value is None:
        return "-"
    text = str(value)
    return text.replace(" [", "\n[", 1) if text[:1] in "+-0123456789" and " [" in text else text


def _print_table(table: Table) -> None:
    """Print at the table's natural width when the output is not a terminal (a file or a pipe has no
    width to fit), so that no column is squeezed; a terminal gets the table fitted to its width."""
    from rich.measure import Measurement

    if out.is_terminal:
        out.print(table)
        return
    natural = Measurement.get(out, out.options.update_width(1000), table).maximum
    width = out.width
    out.width = max(width, natural)  # Console.print never prints wider than the console
    try:
        out.print(table)
    finally:
        out.width = width


def _table(title: str, rows: list[dict[str, Any]], wanted: Sequence[str]) -> Table:
    """The ``wanted`` columns that some row fills; numbers never wrap, judge specs fold."""
    columns = [c for c in wanted if any(row.get(c) is not None for row in rows)]
    table = Table(title=title)
    for col in columns:
        if col == "judge":
            table.add_column(col, overflow="fold", min_width=8)
        else:
            table.add_column(col, no_wrap=True, justify="right" if col != "fit" else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table
