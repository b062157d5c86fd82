"""``srjudge testbed``: build the digits-and-letters testbed, and run judges on it.

``srjudge testbed build`` writes the testbed folder; ``srjudge testbed run`` makes SR candidates for
its test LR glyphs (diffusion samples and other backends), has the referee read what each shows, and
measures whether each judge's pick still shows the input's symbol (tables, plots and an HTML page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from srjudge.cli.common import _executor, _load_config, _progress_task, err, out, sub_app
from srjudge.cli.options import BOOTSTRAP, EXECUTOR, JUDGES, SAMPLES

testbed_app = sub_app(
    "testbed",
    "The digits-and-letters testbed: does the SR output a judge picks still show the input's symbol?",
)


def testbed_config(seed: int | None, config_file: Path | None) -> Any:
    """A TestbedConfig from the defaults, the YAML file, then --seed (unknown fields are an error)."""
    import dataclasses

    from srjudge.errors import SpecError
    from srjudge.testbed.items import TestbedConfig

    if config_file is not None and not config_file.is_file():
        raise SpecError(f"--config {config_file}: no such file. Give a YAML file of TestbedConfig fields.")
    try:
        config = _load_config(TestbedConfig, config_file)
        return config if seed is None else dataclasses.replace(config, seed=seed)
    except SpecError as exc:
        named = config_file is None or str(config_file) in str(exc)
        raise SpecError(str(exc) if named else f"--config {config_file}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise SpecError(f"testbed config {config_file or 'defaults'} (--seed {seed}): {exc}") from None


@testbed_app.command("build")
def build_cmd(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Testbed folder to write.")] = Path(
        "srjudge-out/testbed"
    ),
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the testbed (overrides the config).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file of TestbedConfig fields (counts, splits, ...).")
    ] = None,
) -> None:
    """Render glyphs, degrade them to LR inputs and write the testbed folder (resumable)."""
    from srjudge.testbed.build import build_testbed

    cfg = testbed_config(seed, config)
    with _progress_task("build") as update:

        def report(*args: Any) -> None:
            numbers = [a for a in args if isinstance(a, int)]
            label = next((a for a in args if isinstance(a, str)), "build")
            if len(numbers) >= 2:
                update(numbers[0], numbers[1], label)

        manifest = build_testbed(cfg, out_dir, progress=report)
    splits: dict[str, int] = {}
    for item in manifest.items:
        splits[item.split] = splits.get(item.split, 0) + 1
    listing = ", ".join(f"{k}: {v}" for k, v in sorted(splits.items()))
    out.print(f"testbed in {out_dir}: {len(manifest.items)} items ({listing})")


@testbed_app.command("run")
def run_cmd(
    testbed: Annotated[Path, typer.Option("--testbed", "-t", help="Testbed folder (srjudge testbed build).")],
    judges: Annotated[str, JUDGES] = "trust,tws,lr-psnr,readout:classifier",
    backends: Annotated[
        str,
        typer.Option(
            "--backends", "-b", help="SR backends making the candidates (realesrgan is slow on CPU)."
        ),
    ] = "diffusion,bicubic",
    samples: Annotated[int, SAMPLES] = 8,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Candidates fused per judge.")] = 3,
    fusion: Annotated[str, typer.Option("--fusion", help="none, mean, median or weighted.")] = "median",
    split: Annotated[str, typer.Option("--split", help="Testbed split to run on.")] = "test",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N items of the split.")] = None,
    bootstrap: Annotated[int, BOOTSTRAP] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples and of the bootstrap.")] = 0,
    referee: Annotated[
        str, typer.Option("--referee", help="Reader deciding what an output shows.")
    ] = "referee",
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Referee confidence from which a wrong reading is a hallucination."),
    ] = 0.5,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Diffusion sampling steps (default: the checkpoint's).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (candidates are cached here).")
    ] = Path("srjudge-out/testbed-run"),
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Candidates, referee readings, every judge's picks, measures with CIs, plots and index.html."""
    from srjudge.spec import iter_specs
    from srjudge.testbed.experiment import run_experiment
    from srjudge.testbed.report import terminal_table, write_outputs
    from srjudge.testbed.results import ExperimentConfig

    config = ExperimentConfig(
        judges=tuple(iter_specs(judges, option="--judges")),
        backends=tuple(iter_specs(backends, option="--backends")),
        samples=samples,
        top_k=top_k,
        fusion=fusion,
        split=split,
        limit=limit,
        n_boot=bootstrap,
        seed=seed,
        referee=referee,
        threshold=threshold,
        steps=steps,
    )
    with _executor(executor) as pool, _progress_task("testbed") as update:
        result = run_experiment(
            testbed,
            config,
            out_dir,
            progress=lambda stage, done, total: update(done, total, stage),
            executor=pool,
        )
    paths = write_outputs(result, out_dir)
    out.print(terminal_table(result))
    c = result.counts
    err.print(
        f"{c['items']} items, {c['candidates']} candidates ({c['candidates_made']} made, "
        f"{c['candidates_reused']} reused from the cache)"
    )
    out.print(f"{', '.join(sorted(paths))} in {out_dir}")


@testbed_app.command("compare")
def compare_cmd(
    testbed: Annotated[Path, typer.Option("--testbed", "-t", help="Testbed folder (srjudge testbed build).")],
    aligned: Annotated[
        str, typer.Option("--aligned", "-a", help="The aligned model's backend spec: diffusion:OUT/model.")
    ],
    base: Annotated[str, typer.Option("--base", help="The base model's backend spec.")] = "diffusion",
    judges: Annotated[str, JUDGES] = "trust,lr-psnr,readout:classifier",
    samples: Annotated[int, SAMPLES] = 8,
    split: Annotated[str, typer.Option("--split", help="Testbed split to run on.")] = "test",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N items of the split.")] = None,
    bootstrap: Annotated[int, BOOTSTRAP] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples and of the bootstrap.")] = 0,
    referee: Annotated[
        str, typer.Option("--referee", help="Reader deciding what an output shows.")
    ] = "referee",
    steps: Annotated[
        int | None, typer.Option("--steps", help="Diffusion sampling steps (default: the checkpoint's).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (base/ and aligned/ runs, compare.*).")
    ] = Path("srjudge-out/testbed-compare"),
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Base vs aligned SR model: raw-sample hallucination (bicubic: reference), LR-PSNR, diversity, top-1."""
    from srjudge.spec import iter_specs
    from srjudge.testbed.alignment import markdown_table
    from srjudge.testbed.compare import compare_models
    from srjudge.testbed.results import ExperimentConfig

    config = ExperimentConfig(
        judges=tuple(iter_specs(judges, option="--judges")),
        samples=samples,
        split=split,
        limit=limit,
        n_boot=bootstrap,
        seed=seed,
        referee=referee,
        steps=steps,
    )
    with _executor(executor) as pool, _progress_task("compare") as update:
        result = compare_models(
            testbed,
            base,
            aligned,
            config,
            out_dir,
            progress=lambda stage, done, total: update(done, total, stage),
            executor=pool,
        )
    out.print(markdown_table([r for r in result.rows if r.group in ("severe", "all")]))
    out.print(f"compare.md, compare.json, compare.csv, samples.png, index.html in {out_dir}")
