"""``srjudge bench``: how well judges agree with people, how stable they are, what they cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from srjudge.cli.common import _progress, app, err, out


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
    judges: Annotated[
        str,
        typer.Option(
            "--judges", "-j", help="Comma-separated judge specs; ';' between specs that contain commas."
        ),
    ] = "niqe,trust",
    repeats: Annotated[
        int, typer.Option("--repeats", help="Judgements per item (instability needs >= 2).")
    ] = 1,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the 95 % CIs.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and of synthetic data.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("srjudge-out/bench"),
) -> None:
    """Measure judges against human opinion (MOS, pairwise, best-of-N): table, plots and an HTML page."""
    from srjudge.bench.datasets import load_dataset, make_synthetic
    from srjudge.bench.evaluate import run_bench
    from srjudge.errors import SrjudgeError
    from srjudge.judges import create_judge

    if (dataset is None) == (synthetic is None):
        raise SrjudgeError("Give exactly one of --dataset PATH or --synthetic mos|pairwise|best-of-n.")
    if synthetic is not None:
        if synthetic not in ("mos", "pairwise", "best-of-n"):
            raise SrjudgeError(f"--synthetic {synthetic!r}: use mos, pairwise or best-of-n.")
        dataset = make_synthetic(out_dir / "data", synthetic, seed=seed)  # type: ignore[arg-type]
        err.print(f"SYNTHETIC {synthetic} dataset generated in {dataset} (not human opinion)")
    assert dataset is not None
    data = load_dataset(dataset)
    specs = [s.strip() for s in (judges.split(";") if ";" in judges else judges.split(",")) if s.strip()]
    the_judges = [create_judge(s) for s in specs]
    with _progress() as progress:
        task = progress.add_task("bench", total=None)
        rows = run_bench(
            data,
            the_judges,
            out_dir,
            repeats=repeats,
            n_boot=bootstrap,
            seed=seed,
            progress=lambda spec, done, total: progress.update(
                task, description=spec, completed=done, total=total
            ),
        )
    table = Table(title=f"{data.name}" + (" (SYNTHETIC)" if data.synthetic else ""))
    wanted = (
        "judge",
        "n",
        "pairs",
        "groups",
        "abstained",
        "SRCC",
        "PLCC",
        "RMSE",
        "accuracy",
        "position_consistency",
        "top1_agreement",
        "vote_share",
        "seconds",
        "images_per_s",
    )
    columns = [c for c in wanted if c in rows[0]]
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    out.print(table)
    out.print(f"table.md, table.csv, table.json, plots and index.html in {out_dir}")
