"""Benchmark: ``score --judge trust`` on 2,000 candidates with ``--executor local``, ``processes:2`` and
``ray`` (a local instance, 2 workers), side by side in one run; Ray's and the process pool's per-item
overhead; the driver's peak memory against the number of items.

Candidates: 128x128 SR outputs (bicubic x4 of 32x32 LR crops, with seeded noise) of 20 LR inputs,
100 candidates each, each scored against its LR, as ``srjudge score DIR --judge trust --lr LR_DIR``
does. Each executor is warmed up first (workers started, the judge built once per worker), then
timed on all candidates; the records must equal the local ones exactly. Targets (issue 18):
``processes:2`` and ``ray`` reach >= 1.7x the local throughput on a 2-core machine; Ray's per-item
overhead < 5 ms; driver memory flat in the number of items. The load average and the cores that two
CPU-bound processes actually get (2.0 on an idle 2-core machine) are printed with the figures:
another job on the machine takes cores away from the parallel executors, not from ``local``.

Run: .venv/bin/python benchmarks/bench_executor.py [--items 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.execute import Executor, create_executor
from srjudge.images.io import quantize_8bit, save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.judges import create_judge
from srjudge.judges.per_worker import judge_handle
from srjudge.select.files import ScoreItem, ScoreWork

EXECUTORS = ("local", "processes:2", "ray:workers=2")
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket")


def make_candidates(root: Path, n: int, per_input: int = 100) -> list[ScoreItem]:
    rng = np.random.default_rng(0)
    items: list[ScoreItem] = []
    inputs = max(1, n // per_input)
    for k in range(inputs):
        photo = bundled_photo(PHOTOS[k % len(PHOTOS)], size=256)
        y, x = rng.integers(0, 128, size=2)
        hr = photo[y : y + 128, x : x + 128]
        lr = quantize_8bit(imresize(hr, 0.25))
        lr_path = root / "lr" / f"in{k:03d}.png"
        save_png(lr_path, lr)
        base = imresize(lr, 4.0)
        for j in range(min(per_input, n - len(items))):
            noise = rng.normal(0.0, 0.005 * (j % 10), base.shape)
            path = root / "sr" / f"in{k:03d}_{j:03d}.png"
            save_png(path, np.clip(base + noise, 0.0, 1.0))
            items.append(ScoreItem(str(path), str(lr_path)))
    return items


def timed(executor: Executor, work: Any, items: list[ScoreItem]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    values = [outcome.unwrap() for outcome in executor.map(work, items)]
    return time.perf_counter() - start, values


def identity(item: Any) -> Any:
    return item


def streamed(n: int) -> Iterator[int]:
    yield from range(n)


def burn(n: int) -> tuple[float, float]:
    """A CPU-bound loop: (wall seconds, CPU seconds)."""
    wall, cpu, x = time.perf_counter(), time.process_time(), 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - wall, time.process_time() - cpu


def parallel_capacity(workers: int = 2, n: int = 10_000_000) -> float:
    """How many cores ``workers`` CPU-bound processes get together right now (2.0 on an idle 2-core
    machine; less when other jobs compete): the sum of their CPU time over their wall time."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        runs = pool.map(burn, [n] * workers)
    return sum(cpu / wall for wall, cpu in runs)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--overhead-items", type=int, default=2000)
    parser.add_argument("--memory-items", default="1000,10000,50000")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    capacity_before = parallel_capacity()
    root = Path(tempfile.mkdtemp(prefix="srjudge-bench-executor-"))
    items = make_candidates(root, args.items)
    judge = create_judge("trust")
    work = ScoreWork(judge_handle(judge))
    results: dict[str, Any] = {"items": len(items), "cpus": os.cpu_count(), "executors": {}}
    reference: list[Any] | None = None
    for spec in EXECUTORS:
        started = time.perf_counter()
        with create_executor(spec) as executor:
            warm = items[: 4 * executor.workers]
            list(executor.map(work, warm))  # workers up, the judge built once per worker
            ready = time.perf_counter() - started
            seconds, records = timed(executor, work, items)
            dicts = [r.to_dict() for r in records]
            identical = reference is None or dicts == reference
            reference = reference or dicts
            overhead: dict[str, float] = {}
            if spec != "local":
                noop_items = list(range(args.overhead_items))
                noop_s = timed(executor, identity, noop_items)[0]  # type: ignore[arg-type]
                overhead = {"noop_ms_per_item": 1000 * noop_s / len(noop_items)}
            memory: dict[str, float] = {}
            if spec != "local":
                for n in (int(x) for x in args.memory_items.split(",")):
                    gc.collect()
                    start = time.perf_counter()
                    count = sum(1 for _ in executor.map(identity, streamed(n)))
                    assert count == n
                    memory[str(n)] = round(peak_rss_mib(), 1)
                    memory[f"{n}_s"] = round(time.perf_counter() - start, 2)
        results["executors"][spec] = {
            "workers": executor.workers,
            "startup_s": round(ready, 2),
            "seconds": round(seconds, 2),
            "items_per_s": round(len(items) / seconds, 1),
            "ms_per_item": round(1000 * seconds / len(items), 3),
            "identical_to_local": identical,
            **{k: round(v, 3) for k, v in overhead.items()},
            **({"peak_driver_rss_mib_after_n_items": memory} if memory else {}),
        }
        print(spec, json.dumps(results["executors"][spec]), flush=True)
    local_rate = results["executors"]["local"]["items_per_s"]
    for spec in EXECUTORS[1:]:
        entry = results["executors"][spec]
        entry["speedup"] = round(entry["items_per_s"] / local_rate, 2)
    results["load_average_before"] = [round(x, 2) for x in load_before]
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["parallel_capacity_cores"] = [round(capacity_before, 2), round(parallel_capacity(), 2)]
    print()
    print(f"score --judge trust, {len(items)} candidates (128x128, 20 LR inputs), {os.cpu_count()} cores")
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    print(
        "cores two CPU-bound processes got together (2.0 = an idle 2-core machine), before and after: "
        f"{results['parallel_capacity_cores']}"
    )
    print(f"{'executor':16} {'items/s':>8} {'speedup':>8} {'startup s':>10} {'no-op ms/item':>14} identical")
    for spec, entry in results["executors"].items():
        speed = entry.get("speedup", 1.0)
        noop = entry.get("noop_ms_per_item")
        print(
            f"{spec:16} {entry['items_per_s']:8.1f} {speed:7.2f}x {entry['startup_s']:10.1f} "
            f"{'-' if noop is None else f'{noop:.2f}':>14} {entry['identical_to_local']}"
        )
    for spec in EXECUTORS[1:]:
        speed = results["executors"][spec]["speedup"]
        print(f"target {spec}: >= 1.7x local: {'OK' if speed >= 1.7 else 'MISSED'} ({speed:.2f}x)")
    noop = results["executors"]["ray:workers=2"]["noop_ms_per_item"]
    print(f"target ray per-item overhead < 5 ms: {'OK' if noop < 5 else 'MISSED'} ({noop:.2f} ms)")
    for spec in EXECUTORS[1:]:
        print(
            f"peak driver RSS (MiB) after streaming N items, {spec}: "
            f"{results['executors'][spec]['peak_driver_rss_mib_after_n_items']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
