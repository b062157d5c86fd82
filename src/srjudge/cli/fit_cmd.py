"""``srjudge fit``: calibrate a judge to your own raters (grouped cross-validation, a judge file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from srjudge import atomic
from srjudge.cli.common import _create_judges, _progress_task, app, err, out
from srjudge.cli.options import BOOTSTRAP


@app.command("fit")
def fit_cmd(
    dataset: Annotated[
        Path, typer.Argument(help="Human-opinion dataset (any bench format: CSV/JSONL or folder).")
    ],
    judges: Annotated[
        str,
        typer.Option(
            "--judges",
            "-j",
            help="Input judges; their scores and components are the features. "
            "';' between specs that contain commas.",
        ),
    ] = "trust;natural-detail;niqe;brisque;lr-psnr",
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Judge file to write (JSON).")] = Path(
        "srjudge-out/fitted.json"
    ),
    folds: Annotated[int, typer.Option("--folds", help="Grouped cross-validation folds.")] = 5,
    l2: Annotated[float, typer.Option("--l2", help="L2 penalty on the standardised weights.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fold split and the bootstrap.")] = 0,
    bootstrap: Annotated[int, BOOTSTRAP] = 1000,
    cache: Annotated[
        Path,
        typer.Option("--cache", help="Folder of streamed judge features: a re-run scores nothing twice."),
    ] = Path("srjudge-out/fit-features"),
) -> None:
    """Fit a small regularised model over judges' outputs to your raters; writes a `fitted:PATH` judge."""
    from srjudge.bench.datasets import load_dataset
    from srjudge.errors import SrjudgeError
    from srjudge.provenance import file_sha256
    from srjudge.train.fit import cv_report, extract_features, fit_judge, judge_file

    if folds < 2:
        raise SrjudgeError(f"--folds must be at least 2; got {folds}.")
    if out_path.exists() and out_path.is_dir():
        raise SrjudgeError(f"--out {out_path} is a folder; give the path of the JSON file to write.")
    data = load_dataset(dataset)
    the_judges = _create_judges(judges)
    with _progress_task("scoring") as update:
        table = extract_features(
            data,
            the_judges,
            progress=lambda done, total: update(done, total),
            cache_dir=cache,
        )
    result = fit_judge(table, [j.spec for j in the_judges], folds=folds, seed=seed, l2=l2)
    result.cv = cv_report(table, result, [j.spec for j in the_judges], n_boot=bootstrap, seed=seed)
    digest = file_sha256(data.path)
    doc = judge_file(result, dataset=data, digest=digest, folds=folds, seed=seed, l2=l2)
    atomic.write_json(out_path, doc)
    first = next(iter(result.cv.values()))
    grid = Table(title=f"{data.name}: {first['measure']} ({folds}-fold grouped CV, 95 % CI over groups)")
    for column in ("judge", first["measure"], "groups", "pairs"):
        grid.add_column(column)
    for name, row in result.cv.items():
        grid.add_row(
            name,
            f"{row['value']:.3f} [{row['low']:.3f}, {row['high']:.3f}]",
            str(row.get("groups", "-")),
            str(row.get("pairs", "-")),
        )
    out.print(grid)
    if result.dropped_images:
        err.print(f"{result.dropped_images} images left out: an input judge gave no value for them.")
    weights = ", ".join(
        f"{n} {w:+.2f}" for n, w in zip(result.model.names, result.model.weights, strict=True)
    )
    out.print(f"{result.model.kind} over {len(result.model.names)} features: {weights}")
    out.print(f"Judge file: {out_path}  (use it as --judge 'fitted:{out_path}')")
