"""``srjudge run`` and ``srjudge report``: the main job in one resumable run folder, and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from srjudge.cli.common import _progress, app, err, out
from srjudge.cli.options import FUSE, JUDGE, SCALE, TOP_K


@app.command("run")
def run_cmd(
    inputs: Annotated[list[str], typer.Argument(help="A YAML config, or LR images / folders / globs.")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder.")] = None,
    backends: Annotated[
        str | None, typer.Option("--sr", "-b", help="SR backends, ',' or ';' separated.")
    ] = None,
    judge: Annotated[str | None, JUDGE] = None,
    scale: Annotated[int | None, SCALE] = None,
    samples: Annotated[int | None, typer.Option("--samples", help="Samples per stochastic backend.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="First sample seed.")] = None,
    top_k: Annotated[int | None, TOP_K] = None,
    fuse: Annotated[str | None, FUSE] = None,
    tau: Annotated[float | None, typer.Option("--tau", help="Audit: accept at this score (0-100).")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="Audit: bounded retries.")] = None,
    hr: Annotated[
        Path | None, typer.Option("--hr", help="HR folder paired by name: shown in the report, never judged.")
    ] = None,
) -> None:
    """Generate candidates, select the most trustworthy, audit the choice, and write the report."""
    from srjudge.run import RunConfig, load_run_config, run_job
    from srjudge.spec import iter_specs

    flags: dict[str, Any] = {
        "out": str(out_dir) if out_dir else None,
        "backends": tuple(iter_specs(backends, option="--sr")) if backends else None,
        "judge": judge,
        "scale": scale,
        "samples": samples,
        "seed": seed,
        "top_k": top_k,
        "fuse": fuse,
        "tau": tau,
        "retries": retries,
        "hr": str(hr) if hr else None,
    }
    if len(inputs) == 1 and Path(inputs[0]).suffix.lower() in (".yaml", ".yml"):
        config = load_run_config(Path(inputs[0]), **flags)
    else:
        config = RunConfig(inputs=tuple(inputs), **{k: v for k, v in flags.items() if v is not None})
    with _progress() as progress:
        tasks: dict[str, object] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done)  # type: ignore[arg-type]

        summary = run_job(config, log=lambda m: err.print(m), progress=step)
    for name in summary.items:
        if name in summary.chosen:
            out.print(f"{name}: {summary.chosen[name]} (audit: {summary.decisions.get(name, '-')})")
    for name, reason in summary.failed:
        err.print(f"[red]failed:[/] {name}: {reason}")
    out.print(f"Open the report: {summary.report}")
    if summary.failed:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `srjudge run`.")],
    hr: Annotated[
        Path | None, typer.Option("--hr", help="HR folder paired by name (overrides the run's).")
    ] = None,
) -> None:
    """(Re)build a run's HTML report from its records alone."""
    from srjudge.run import build_report

    out.print(f"Open the report: {build_report(run_dir, hr_dir=hr)}")
