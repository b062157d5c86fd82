"""``srjudge evolve``: EvoQuality self-evolution of a local VLM judge (pairwise voting, then GRPO).

``srjudge evolve --config C`` runs every round in one process. A round's two stages also run on
their own: ``srjudge evolve vote`` (offline, one process) and ``srjudge evolve train`` (online;
safe under ``accelerate launch --num_processes N -m srjudge.cli.main evolve train ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from srjudge.cli.common import _executor, _load_config, _progress_task, _write_config, err, out, sub_app
from srjudge.cli.options import CONFIG, DEVICE, EXECUTOR
from srjudge.errors import SpecError

evolve_app = sub_app(
    "evolve",
    "Self-evolve a VLM judge without labels: K votes per pair (both orders) -> pseudo-labels -> GRPO.",
    no_args_is_help=False,
)


def _load(config_file: Path | None, full_finetune: bool, **overrides: Any) -> Any:
    """The config file (or the defaults) with the given flags applied."""
    import dataclasses

    from srjudge.train.evolve import EvolveConfig, with_overrides

    config = with_overrides(_load_config(EvolveConfig, config_file), **overrides)
    if full_finetune:
        config = dataclasses.replace(config, lora=None)
    return config


def _grpo(
    steps: int | None,
    learning_rate: float | None,
    num_generations: int | None,
    batch_size: int | None,
    beta: float | None,
    device: str | None,
) -> dict[str, Any]:
    """The GRPO flags as overrides of the config's ``grpo`` section (``--steps`` is ``max_steps``)."""
    return {
        "grpo__max_steps": steps,
        "grpo__learning_rate": learning_rate,
        "grpo__num_generations": num_generations,
        "grpo__batch_size": batch_size,
        "grpo__beta": beta,
        "grpo__device": device,
    }


# Flags of the all-rounds command that its sub-commands share.
_Device = Annotated[str | None, DEVICE]
_LearningRate = Annotated[float | None, typer.Option("--learning-rate", help="GRPO learning rate.")]
_NumGenerations = Annotated[
    int | None, typer.Option("--num-generations", help="Completions per prompt (GRPO group).")
]
_BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Completions per device and step.")]
_Beta = Annotated[float | None, typer.Option("--beta", help="KL coefficient.")]
_FullFinetune = Annotated[
    bool, typer.Option("--full-finetune", help="Train every parameter instead of LoRA adapters.")
]


@evolve_app.callback(invoke_without_command=True)
def evolve_cmd(
    ctx: typer.Context,
    config_file: Annotated[Path | None, CONFIG] = None,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config", help="Write the configuration (defaults, plus any flags) to this YAML."
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", "-m", help="Local VLM folder to evolve (e.g. Qwen2.5-VL-3B)."),
    ] = None,
    images: Annotated[
        str | None,
        typer.Option(
            "--images", "-i", help="Unlabeled images: a folder, or the select layout (lr.png + candidates)."
        ),
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", "-o", help="Output folder (round-N/ inside).")
    ] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", help="Rounds of voting and training.")] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", "-k", help="Votes per pair and order (K).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature of the votes.")
    ] = None,
    min_share: Annotated[
        float | None, typer.Option("--min-share", help="Vote share a pseudo-label needs (default 0.75).")
    ] = None,
    max_pairs: Annotated[
        int | None, typer.Option("--max-pairs", help="At most this many pairs (seeded sample).")
    ] = None,
    first_judge: Annotated[
        str | None,
        typer.Option("--first-judge", help="Judge spec that votes in round 1 instead of the base model."),
    ] = None,
    labelled: Annotated[
        str | None, typer.Option("--labelled", help="Bench dataset with human scores: SRCC/PLCC per round.")
    ] = None,
    bench_protocol: Annotated[
        str | None,
        typer.Option("--bench-protocol", help="Protocol the bench measures with: level or pairwise."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="GRPO steps per round (else grpo.epochs).")
    ] = None,
    learning_rate: _LearningRate = None,
    num_generations: _NumGenerations = None,
    batch_size: _BatchSize = None,
    beta: _Beta = None,
    device: _Device = None,
    full_finetune: _FullFinetune = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the pairs, the votes and training.")
    ] = None,
) -> None:
    """Self-evolve a VLM judge without labels: K votes per pair (both orders) -> pseudo-labels -> GRPO.

    Without a sub-command: every round in one process. `vote` and `train` run one round's stages
    on their own (`train` under `accelerate launch` for several GPUs).
    """
    if ctx.invoked_subcommand is not None:
        given = sorted(k for k, v in ctx.params.items() if v not in (None, False))
        if given:
            raise SpecError(
                f"options before `evolve {ctx.invoked_subcommand}` belong to the all-rounds command "
                f"({', '.join('--' + g.replace('_', '-') for g in given)}); put them after "
                f"`{ctx.invoked_subcommand}`."
            )
        return
    from srjudge.train.evolve import describe, run_evolve

    config = _load(
        config_file,
        full_finetune,
        base_model=base_model,
        images=images,
        out=out_dir,
        rounds=rounds,
        samples=samples,
        temperature=temperature,
        min_share=min_share,
        max_pairs=max_pairs,
        first_judge=first_judge,
        labelled=labelled,
        bench_protocol=bench_protocol,
        seed=seed,
        **_grpo(steps, learning_rate, num_generations, batch_size, beta, device),
    )
    if write_config is not None:
        _write_config(config, write_config)
        return
    summary = run_evolve(config, log=lambda msg: err.print(msg, highlight=False, markup=False))
    out.print(f"evolved model: {summary.final_model}")
    out.print(f"log: {Path(summary.out) / 'evolve_log.jsonl'}")
    for result in summary.rounds:
        out.print(describe(result), highlight=False)


_Config = Annotated[
    Path, typer.Option("--config", "-c", help="The run's YAML config (srjudge evolve --write-config).")
]
_Round = Annotated[int | None, typer.Option("--round", "-r", help="Round number r (1-based).")]
_Seed = Annotated[int | None, typer.Option("--seed", help="Override the config's seed.")]
_BaseModel = Annotated[
    str | None,
    typer.Option("--base-model", "-m", help="Override the config's base_model (local VLM folder)."),
]


@evolve_app.command("vote")
def vote_cmd(
    config_file: _Config,
    round_number: Annotated[int, typer.Option("--round", "-r", help="Round number r (1-based).")] = 1,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            "-j",
            help="Judge spec that votes (e.g. vlm:openai,base_url=...,protocol=pairwise); default: round "
            "1 the base model (or first_judge), round r OUT/round-(r-1)/model.",
        ),
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", "-o", help="Override the run folder (round-r/ inside).")
    ] = None,
    base_model: _BaseModel = None,
    images: Annotated[str | None, typer.Option("--images", "-i", help="Override the images folder.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", "-k", help="Votes per pair and order.")] = None,
    min_share: Annotated[float | None, typer.Option("--min-share", help="Vote share a label needs.")] = None,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", help="At most this many pairs.")] = None,
    device: _Device = None,
    seed: _Seed = None,
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Offline stage of one round: vote every pair into OUT/round-r/pseudo_labels.jsonl.

    --executor processes:N or ray[:ADDRESS] votes on N workers (each loads the voter once); the file is
    the same as with one process."""
    from srjudge.train.evolve import vote_round

    config = _load(
        config_file,
        False,
        out=out_dir,
        base_model=base_model,
        images=images,
        samples=samples,
        min_share=min_share,
        max_pairs=max_pairs,
        seed=seed,
        grpo__device=device,
    )
    say = lambda msg: err.print(msg, highlight=False, markup=False)  # noqa: E731
    if executor == "local":
        result = vote_round(config, round_number, voter=judge, log=say)
    else:
        with _executor(executor) as pool, _progress_task("voting") as update:
            result = vote_round(
                config,
                round_number,
                voter=judge,
                log=say,
                executor=pool,
                progress=lambda done, total: update(done, total),
            )
    s = result.summary
    out.print(f"pseudo-labels: {result.path} ({s.labelled}/{s.pairs} labelled, {s.skipped} skipped)")


@evolve_app.command("train")
def train_cmd(
    config_file: _Config,
    labels: Annotated[
        Path, typer.Option("--labels", "-l", help="The round's pseudo_labels.jsonl (from `evolve vote`).")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="The round folder for model/ and the record (default: the labels' folder)."
        ),
    ] = None,
    round_number: _Round = None,
    from_model: Annotated[
        str | None,
        typer.Option(
            "--from-model",
            help="Model to train (default: round 1 the base model, round r the sibling round-(r-1)/model).",
        ),
    ] = None,
    base_model: _BaseModel = None,
    steps: Annotated[int | None, typer.Option("--steps", help="GRPO steps (else grpo.epochs).")] = None,
    learning_rate: _LearningRate = None,
    num_generations: _NumGenerations = None,
    batch_size: _BatchSize = None,
    beta: _Beta = None,
    device: _Device = None,
    full_finetune: _FullFinetune = False,
    labelled: Annotated[
        str | None, typer.Option("--labelled", help="Bench dataset to measure the trained model on.")
    ] = None,
    seed: _Seed = None,
) -> None:
    """Online stage of one round: GRPO on a pseudo-label file (runs under `accelerate launch`)."""
    from srjudge.train.evolve import describe, train_stage

    config = _load(
        config_file,
        full_finetune,
        base_model=base_model,
        labelled=labelled,
        seed=seed,
        **_grpo(steps, learning_rate, num_generations, batch_size, beta, device),
    )
    result = train_stage(
        config,
        labels,
        out_dir=out_dir,
        round_number=round_number,
        from_model=from_model,
        log=lambda msg: err.print(msg, highlight=False, markup=False),
    )
    if result is not None:  # process 0 only
        out.print(f"model: {result.model}")
        out.print(describe(result), highlight=False)
