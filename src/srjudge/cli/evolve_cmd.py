"""``srjudge evolve``: EvoQuality self-evolution of a local VLM judge (pairwise voting, then GRPO)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srjudge.cli.common import app, err, out


@app.command("evolve")
def evolve_cmd(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config (see --write-config); flags override it."),
    ] = None,
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
    lr: Annotated[float | None, typer.Option("--lr", help="GRPO learning rate.")] = None,
    num_generations: Annotated[
        int | None, typer.Option("--num-generations", help="Completions per prompt (GRPO group).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Completions per device and step.")
    ] = None,
    beta: Annotated[float | None, typer.Option("--beta", help="KL coefficient.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    full_finetune: Annotated[
        bool, typer.Option("--full-finetune", help="Train every parameter instead of LoRA adapters.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the pairs, the votes and training.")
    ] = None,
) -> None:
    """Self-evolve a VLM judge without labels: K votes per pair (both orders) -> pseudo-labels -> GRPO."""
    import dataclasses

    from srjudge.train.common import load_config_yaml, save_config_yaml
    from srjudge.train.evolve import EvolveConfig, describe, run_evolve, with_overrides

    config = load_config_yaml(EvolveConfig, config_file) if config_file is not None else EvolveConfig()
    config = with_overrides(
        config,
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
        grpo__max_steps=steps,
        grpo__learning_rate=lr,
        grpo__num_generations=num_generations,
        grpo__batch_size=batch_size,
        grpo__beta=beta,
        grpo__device=device,
    )
    if full_finetune:
        config = dataclasses.replace(config, lora=None)
    if write_config is not None:
        save_config_yaml(config, write_config)
        err.print(f"wrote {write_config}")
        return
    summary = run_evolve(config, log=lambda msg: err.print(msg, highlight=False))
    out.print(f"evolved model: {summary.final_model}")
    out.print(f"log: {Path(summary.out) / 'evolve_log.jsonl'}")
    for result in summary.rounds:
        out.print(describe(result), highlight=False)
