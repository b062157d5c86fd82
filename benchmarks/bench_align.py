"""Benchmark: align the bundled testbed diffusion model with a judge's reward, then compare it with the
base model on the default testbed's held-out test fonts, on 2 CPU cores.

Stages: ``srjudge align`` with the given config (default: AlignConfig(); reward readout:classifier;
no val evaluation here), timed (target, issue 17: at most 30 minutes on 2 CPU cores); then
``srjudge testbed compare`` (default testbed, 8 samples per LR, judges readout:classifier, lr-psnr,
trust): per severity, the raw samples' wrong-symbol rate (target at severe: from 23 % to at most 12 %),
LR-PSNR (at most 0.5 dB worse), diversity (at least half kept), each judge's top-1 (readout at
least the base oracle, 0.898 at severe), and the referee's wrong-symbol rate on the bicubic x4
upsample of each LR (the reference: an output that invents nothing).

Run: .venv/bin/python benchmarks/bench_align.py --out DIR [--config align.yaml] [--method raft|grpo|dpo]
A second run on the same --out resumes the alignment and reuses the comparison's candidates.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time
from pathlib import Path

TARGET_S = 30 * 60
JUDGES = "readout:classifier,lr-psnr,trust"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="work folder (alignment run, testbed, comparison)"
    )
    parser.add_argument("--config", type=Path, default=None, help="AlignConfig YAML (default: the defaults)")
    parser.add_argument("--method", default=None, help="override the config's method (raft, grpo or dpo)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N test items (smoke runs)")
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from srjudge.testbed.alignment import markdown_table
    from srjudge.testbed.build import TestbedConfig, build_testbed
    from srjudge.testbed.compare import compare_models
    from srjudge.testbed.results import ExperimentConfig
    from srjudge.train.align_run import load_align_config, run_alignment

    config = load_align_config(args.config)
    if args.method:
        config = dataclasses.replace(config, method=args.method)
    config = dataclasses.replace(config, threads=args.threads)
    run_dir = args.out / f"align-{config.method}"
    load0 = os.getloadavg()
    start = time.perf_counter()
    run = run_alignment("diffusion", run_dir, config, log=print)
    wall = time.perf_counter() - start
    resumed = run.result.resumed_from
    how = f"resumed at round {resumed}" if resumed else "cold"
    print(
        f"alignment ({config.method}, {config.rounds} rounds, {how}): {run.result.seconds:.0f} s training, "
        f"{wall:.0f} s wall; target {TARGET_S} s; load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    if args.skip_compare:
        return
    build_testbed(TestbedConfig(), args.out / "testbed")
    exp = ExperimentConfig(judges=tuple(JUDGES.split(",")), limit=args.limit, baselines=False)
    start = time.perf_counter()
    result = compare_models(
        args.out / "testbed",
        "diffusion",
        f"diffusion:{run.model_dir}",
        exp,
        args.out / f"compare-{config.method}",
    )
    print(f"comparison: {time.perf_counter() - start:.0f} s")
    keep = (
        "wrong",
        "hallucinated",
        "lr_psnr",
        "spread",
        "distinct",
        "oracle",
        "bicubic_wrong",
        *(f"top1:{j}" for j in JUDGES.split(",")),
    )
    print(markdown_table(result.rows, keep))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
