"""Benchmark: build the DEFAULT glyph testbed and run the offline judges on it, on 2 CPU cores.

Stages timed: ``srjudge testbed build`` (default TestbedConfig), then ``srjudge testbed run`` with the
default settings (``diffusion`` x 8 samples + ``bicubic`` per test LR; judges trust, tws, lr-psnr,
readout:classifier; top-3 median fusion; 1,000 bootstrap resamples): candidates, referee readings,
each judge, measures, and the report (tables, plots, page). Target (issue 8): build + run < 15 min.

Run: .venv/bin/python benchmarks/bench_testbed.py [--out DIR] [--limit N] [--threads 2]
A second run on the same --out reuses the testbed, candidates, readings and picks (it then times
the resume path, not the work); pass a fresh folder (the default is a new temporary one) for a cold run.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

JUDGES = ("trust", "tws", "lr-psnr", "readout:classifier")
TARGET_S = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test items (smoke runs)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch, BLAS)")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    from srjudge.testbed.build import TestbedConfig, build_testbed
    from srjudge.testbed.experiment import ExperimentConfig, run_experiment
    from srjudge.testbed.report import write_outputs

    root = args.out or Path(tempfile.mkdtemp(prefix="srjudge-testbed-bench-"))
    stages: list[tuple[str, float]] = []

    start = time.perf_counter()
    manifest = build_testbed(TestbedConfig(), root / "testbed")
    stages.append(("build testbed (default config)", time.perf_counter() - start))
    n_test = sum(1 for it in manifest.items if it.split == "test")

    config = ExperimentConfig(judges=JUDGES, samples=args.samples, limit=args.limit)
    start = time.perf_counter()
    result = run_experiment(root / "testbed", config, root / "run")
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    write_outputs(result, root / "run")
    report_s = time.perf_counter() - start

    t = result.timings
    stages += [
        ("run: setup (testbed, judges, models)", t.get("setup", 0.0)),
        (f"run: candidates ({result.counts['candidates_made']} made)", t.get("candidates", 0.0)),
        ("run: referee readings + candidate TWS", t.get("readings", 0.0)),
        ("run: judges (+ fused readings/TWS)", t.get("judges", 0.0)),
    ]
    stages += [(f"    of which {j.spec} ranking", j.seconds) for j in result.judges if j.status == "ok"]
    stages += [
        ("run: measures (bootstrap)", t.get("measures", 0.0)),
        ("report (tables, plots, page)", report_s),
    ]
    total = stages[0][1] + run_s + report_s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    width = max(len(name) for name, _ in stages) + 8
    print(
        f"testbed: {len(manifest.items)} items, {n_test} test LR inputs; "
        f"run on {result.counts['items']} items"
    )
    print(f"candidates: {result.counts['candidates']} ({args.samples} diffusion samples + bicubic per item)")
    print(f"threads: {args.threads}; work folder: {root}")
    print(f"{'stage':<{width}}{'seconds':>10}")
    for name, seconds in stages:
        print(f"{name:<{width}}{seconds:>10.1f}")
    n_run = result.counts["items"]
    if n_run < n_test:  # a --limit smoke run: scale the per-item stages up to every test item
        per_item = run_s - t.get("setup", 0.0) - t.get("measures", 0.0)
        total = stages[0][1] + t.get("setup", 0.0) + per_item * n_test / n_run + report_s
        print(f"{'total measured (limited run)':<{width}}{stages[0][1] + run_s + report_s:>10.1f}")
        label = f"extrapolated to all {n_test} test items"
    else:
        label = "total build + run + report"
    verdict = "OK" if total < TARGET_S else "MISSED"
    print(f"{label:<{width}}{total:>10.1f}  (target < {TARGET_S} s: {verdict})")
    print(f"peak memory {peak:.0f} MiB")
    for m in result.rows:
        if m.severity == "all":
            print(f"  {m.name:<22} top-1 accuracy {m.top1_accuracy}  ({m.note or m.kind})")


if __name__ == "__main__":
    main()
