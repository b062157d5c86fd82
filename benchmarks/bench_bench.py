"""Benchmark: ``srjudge bench``'s own overhead on 10,000 MOS rows with a precomputed judge.

The judge's scores are already in its score file (as after a first run), so this times loading
and validating the dataset, the statistics (SRCC/KRCC/PLCC/RMSE, monotone logistic fit, 1,000
bootstrap resamples; with ``--groups G`` also the within-group measures over G groups, 1,000 group
resamples), the tables, the plots and the page. Target (issue 6): under 10 s and under 1 GiB.

Run: .venv/bin/python benchmarks/bench_bench.py [--groups 500]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from srjudge.bench.datasets import load_dataset
from srjudge.bench.evaluate import run_bench
from srjudge.bench.run import _slug
from srjudge.judges import create_judge

ROWS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=0, help="give the rows this many groups (0: none)")
    groups = parser.parse_args().groups
    root = Path(tempfile.mkdtemp(prefix="srjudge-bench-"))
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, ROWS)
    with (root / "mos.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mos"] + (["group"] if groups else []))
        for i in range(ROWS):
            (root / "img" / f"{i}.png").touch()  # existence is all the loader checks
            writer.writerow([f"img/{i}.png", f"{mos[i]:.4f}"] + ([f"g{i % groups}"] if groups else []))
    judge = create_judge("niqe")
    out = root / "out"
    scores = out / "scores" / f"{_slug(judge.spec)}.jsonl"
    scores.parent.mkdir(parents=True)
    config_hash = judge.provenance().config_hash
    predicted = 25 * (mos - 1) + rng.normal(0, 10, ROWS)
    with scores.open("w") as handle:
        for i in range(ROWS):
            key = f"{root / 'img' / f'{i}.png'}#0"
            handle.write(
                json.dumps({"key": key, "config_hash": config_hash, "score": float(predicted[i])}) + "\n"
            )

    start = time.perf_counter()
    data = load_dataset(root / "mos.csv")
    loaded = time.perf_counter()
    [row] = run_bench(data, [judge], out, n_boot=1000)
    done = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert row["reused_scores"] == ROWS, "the precomputed scores were not reused"
    total = done - start
    print(
        f"{ROWS} MOS rows: load+validate {loaded - start:.2f} s, statistics+outputs {done - loaded:.2f} s, "
        f"total {total:.2f} s (target < 10 s: {'OK' if total < 10 else 'MISSED'})"
    )
    print(
        f"peak memory {peak_mib:.0f} MiB (target < 1024 MiB: {'OK' if peak_mib < 1024 else 'MISSED'}); "
        f"SRCC {row['SRCC']}, PLCC {row['PLCC']} ({row['fit']} fit)"
    )
    if groups:
        print(f"{row['groups']} groups, {row['pairs_within']} pairs: within-group SRCC {row['SRCC_within']}")


if __name__ == "__main__":
    main()
