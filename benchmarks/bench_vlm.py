"""Benchmark: VLM judge calls per second through ``srjudge serve`` versus in-process, and cache-hit cost.

Uses the tiny random-weight Qwen2-VL of the tests (built locally, no download), so it measures
srjudge's own overhead (HTTP, JSON, image encoding, scheduling), not a real model's speed.
Target (issue 4): the HTTP path keeps at least 80 % of in-process throughput at concurrency 4;
a cache hit costs under 1 ms per verdict. Each throughput is the median of ``--runs`` runs of
``--calls`` calls (issue 18: at least 500 calls, median of 3 runs), the two paths measured in
alternation so that a change in the machine's load affects both alike.

Run: .venv/bin/python benchmarks/bench_vlm.py [--calls 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # after stdlib: tests/select
from srjudge.judges.vlm import VLMJudge, VLMJudgeConfig
from srjudge.vlm.backends import create_backend
from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams
from vlm_tiny import build_tiny_qwen2vl

CONCURRENCY = 4


def requests(n: int) -> list[ChatRequest]:
    rng = np.random.default_rng(0)
    params = GenerationParams(max_tokens=8, top_logprobs=5)
    return [
        ChatRequest(
            (ChatMessage.user(rng.random((64, 64, 3)).astype(np.float32), "Rate this image."),), params
        )
        for _ in range(n)
    ]


def throughput(call: object, reqs: list[ChatRequest]) -> float:
    assert callable(call)
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(call, reqs))
    return len(reqs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="srjudge-bench-"))
    model = build_tiny_qwen2vl(work / "tiny")
    reqs = requests(args.calls)

    local = create_backend("hf", {"model": str(model)})
    lock = threading.Lock()

    def in_process(request: ChatRequest) -> object:
        with lock:  # one model, one device: calls are serialised, as in serve
            return local.complete([request])[0]

    throughput(in_process, reqs[:4])  # warm-up

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "srjudge.cli.main", "serve", "--model", str(model), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        remote = create_backend(
            "openai", {"model": str(model), "base_url": base + "/v1", "concurrency": str(CONCURRENCY)}
        )

        def over_http(request: ChatRequest) -> object:
            return remote.complete([request])[0]

        throughput(over_http, reqs[:4])
        local_rates, http_rates = [], []
        for _ in range(args.runs):  # alternated: a load change hits both paths
            local_rates.append(throughput(in_process, reqs))
            http_rates.append(throughput(over_http, reqs))
    finally:
        server.terminate()
        server.wait(timeout=30)

    local_rate, http_rate = statistics.median(local_rates), statistics.median(http_rates)
    ratio = http_rate / local_rate
    runs = f"median of {args.runs} runs of {len(reqs)} calls"
    load_after = os.getloadavg()
    print(
        f"load average before {[round(x, 2) for x in load_before]}, after {[round(x, 2) for x in load_after]}"
    )
    print(
        f"in-process hf backend : {local_rate:6.1f} calls/s ({runs}; concurrency {CONCURRENCY}, tiny model; "
        f"runs {', '.join(f'{r:.1f}' for r in local_rates)})"
    )
    print(
        f"srjudge serve + openai: {http_rate:6.1f} calls/s -> {100 * ratio:.0f} % of in-process "
        f"(target >= 80 %: {'OK' if ratio >= 0.8 else 'MISSED'}; "
        f"runs {', '.join(f'{r:.1f}' for r in http_rates)})"
    )

    judge = VLMJudge(
        VLMJudgeConfig(backend="hf", backend_options={"model": str(model)}, cache=str(work / "cache.sqlite")),
        backend=local,
    )
    images = [np.random.default_rng(i).random((256, 256, 3)).astype(np.float32) for i in range(50)]
    judge.score_many(images)  # fill the cache
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        judge.score_many(images)
    per_verdict_ms = 1000 * (time.perf_counter() - start) / (repeats * len(images))
    assert judge.stats.calls == len(images)
    print(
        f"cache hit: {per_verdict_ms:.3f} ms per verdict (256x256 image, level protocol; "
        f"target < 1 ms: {'OK' if per_verdict_ms < 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
