"""``srjudge serve`` as a real subprocess on a free loopback port, used through the official SDK.

Every protocol runs through the ``openai`` backend against the served tiny model; raw HTTP checks
the OpenAI-compatible schema, the judge endpoints, the bearer token and 4xx answers to bad input.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from srjudge.judges import create_judge
from srjudge.judges.vlm import VLMJudge
from srjudge.vlm.images import data_uri
from tests.serve.helpers import TOKEN, _auth, _chat, _images


def _remote_judge(
    server: str, tiny_vlm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **opts: str
) -> VLMJudge:
    monkeypatch.setenv("SRJUDGE_SERVE_TOKEN", TOKEN)
    spec = (
        f"vlm:openai,model={tiny_vlm},base_url={server}/v1,api_key_env=SRJUDGE_SERVE_TOKEN,"
        f"cache={tmp_path / 'c.sqlite'}" + "".join(f",{k}={v}" for k, v in opts.items())
    )
    judge = create_judge(spec)
    assert isinstance(judge, VLMJudge)
    return judge


def test_openai_compatible_chat_completion_with_logprobs(server: str, tiny_vlm: Path) -> None:
    body = {
        "model": str(tiny_vlm),
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": data_uri(_images(1)[0])}},
                    {"type": "text", "text": "Rate it: excellent, good, fair, poor or bad."},
                ],
            },
        ],
        "max_tokens": 4,
        "logprobs": True,
        "top_logprobs": 5,
    }
    response = httpx.post(server + "/v1/chat/completions", json=body, headers=_auth(), timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "chat.completion" and data["choices"][0]["message"]["role"] == "assistant"
    positions = data["choices"][0]["logprobs"]["content"]
    assert 1 <= len(positions) <= 4 and all(len(p["top_logprobs"]) == 5 for p in positions)
    assert sum(np.exp(t["logprob"]) for t in positions[0]["top_logprobs"]) <= 1.0 + 1e-6
    assert data["usage"]["prompt_tokens"] > 0
    models = httpx.get(server + "/v1/models", headers=_auth()).json()
    assert models["data"][0]["id"] == str(tiny_vlm)
    schema = httpx.get(server + "/openapi.json", headers=_auth()).json()
    assert {"/v1/chat/completions", "/judge/score", "/judge/compare", "/judge/rank"} <= set(schema["paths"])


def test_level_protocol_through_the_sdk(
    server: str, tiny_vlm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A random model's top-20 first tokens hold no level word: the verdicts abstain and say why,
    # after one retry each (never a default score).
    judge = _remote_judge(server, tiny_vlm, tmp_path, monkeypatch, retries="1")
    verdicts = judge.score_many(_images(2))
    assert all(v.abstained and "among the top tokens" in (v.abstain_reason or "") for v in verdicts)
    assert judge.summary()["calls"] == 4 and judge.summary()["prompt_tokens"] > 0


def test_served_logprobs_equal_in_process_logprobs(
    server: str, tiny_vlm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srjudge.vlm.backends import create_backend
    from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams

    monkeypatch.setenv("SRJUDGE_SERVE_TOKEN", TOKEN)
    request = ChatRequest(
        (ChatMessage.user(_images(1)[0], "How good is this image?"),),
        GenerationParams(max_tokens=2, top_logprobs=5),
    )
    local = create_backend("hf", {"model": str(tiny_vlm)}).complete([request])[0]
    remote = create_backend(
        "openai", {"model": str(tiny_vlm), "base_url": server + "/v1", "api_key_env": "SRJUDGE_SERVE_TOKEN"}
    ).complete([request])[0]
    assert remote.text == local.text
    assert remote.logprobs is not None and local.logprobs is not None
    for r, lo in zip(remote.logprobs, local.logprobs, strict=True):
        assert r.token == lo.token and set(r.top) == set(lo.top)
        assert all(abs(r.top[t] - lo.top[t]) < 1e-4 for t in lo.top)


@pytest.mark.parametrize("protocol", ["audit", "lr-conditioned", "readout", "perceive-infer", "pairwise"])
def test_every_protocol_through_the_sdk(
    server: str, tiny_vlm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    judge = _remote_judge(server, tiny_vlm, tmp_path, monkeypatch, protocol=protocol, retries="0")
    images = _images(2)
    lr = _images(1, 16)[0]
    verdicts = judge.score_many(images, lr=lr)
    # Seeded random weights write neither JSON nor a preference word: every verdict abstains with
    # the protocol's reason after its one attempt, and the calls are accounted for.
    assert len(verdicts) == 2
    assert all(v.abstained and "1 attempt(s) failed" in (v.abstain_reason or "") for v in verdicts)
    expected_calls = {"pairwise": 2, "readout": 3}.get(protocol, 2)  # readout also reads the LR input
    assert judge.summary()["calls"] == expected_calls


def test_judge_endpoints(server: str) -> None:
    uris = [data_uri(img) for img in _images(3)]
    scored = httpx.post(server + "/judge/score", json={"images": uris[:2]}, headers=_auth(), timeout=60)
    assert scored.status_code == 200, scored.text
    assert len(scored.json()["verdicts"]) == 2 and scored.json()["summary"]["calls"] == 2
    ranked = httpx.post(server + "/judge/rank", json={"images": uris}, headers=_auth(), timeout=60).json()
    assert sorted(item["index"] for item in ranked["ranking"]) == [0, 1, 2]
    compared = httpx.post(
        server + "/judge/compare",
        json={"a": uris[0], "b": uris[1], "retries": 0},
        headers=_auth(),
        timeout=60,
    ).json()
    assert compared["winner"] in ("A", "B", "tie")


@pytest.mark.parametrize(
    "path,body,status,message",
    [
        ("/judge/score", {"images": ["https://example.com/a.png"]}, 400, "only data: URIs"),
        ("/judge/score", {"images": ["data:image/png;base64,AAAA"]}, 400, "not a decodable"),
        ("/judge/score", {"images": []}, 422, ""),
        ("/judge/score", {"images": ["x"], "protocol": "nope"}, 400, "unknown protocol"),
        ("/v1/chat/completions", {"messages": []}, 422, ""),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "stream": True},
            400,
            "stream",
        ),
    ],
)
def test_bad_requests_get_4xx(
    server: str, path: str, body: dict[str, object], status: int, message: str
) -> None:
    response = httpx.post(server + path, json=body, headers=_auth(), timeout=30)
    assert response.status_code == status, response.text
    assert message in response.text


def test_token_and_size_limits(server: str) -> None:
    assert httpx.get(server + "/health").status_code == 200  # health needs no token
    assert httpx.get(server + "/v1/models").status_code == 401
    assert httpx.get(server + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    big = {"images": ["data:image/png;base64," + "A" * (2 * 1024 * 1024)]}
    response = httpx.post(server + "/judge/score", json=big, headers=_auth(), timeout=30)
    assert response.status_code == 413 and "above" in response.text
    malformed = httpx.post(
        server + "/v1/chat/completions",
        content=b"{not json",
        headers={**_auth(), "content-type": "application/json"},
    )
    assert malformed.status_code == 422
    # The server is still up after all of that.
    assert httpx.get(server + "/health").status_code == 200


# ---------------------------------------------------------------- loopback load (issue 14)
def _server_pid(url: str) -> int:
    """The pid of the ``srjudge serve`` child of this process listening on ``url``'s port."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serve" in args and port.encode() in args:
            return int(entry.name)
    raise RuntimeError(f"no srjudge serve child of this process on port {port}")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _load_mix(tiny_vlm: Path) -> list[tuple[str, dict[str, object], int]]:
    """Small requests the tiny model answers quickly: (path, body, expected status)."""
    uris = [data_uri(img) for img in _images(4, 32)]
    image_chat = {
        "model": str(tiny_vlm),
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": uris[0]}},
                    {"type": "text", "text": "Rate it: excellent, good, fair, poor or bad."},
                ],
            }
        ],
        "max_tokens": 1,
        "logprobs": True,
        "top_logprobs": 5,
    }
    return [
        ("/judge/score", {"images": [uris[1]], "protocol": "level", "retries": 0}, 200),
        ("/v1/chat/completions", image_chat, 200),
        ("/v1/chat/completions", {**_chat("Is this image good?"), "max_tokens": 2}, 200),
        ("/judge/score", {"images": uris[2:4], "protocol": "level", "retries": 0}, 200),
        ("/v1/chat/completions", {**_chat("hi"), "max_tokens": 1, "seed": 7, "temperature": 0.7}, 200),
        # Deliberately bad: refused before the model with their documented status.
        ("/v1/chat/completions", {**_chat("hi"), "stream": True}, 400),
        ("/judge/score", {"images": []}, 422),
    ]


def test_loopback_load_keeps_answering_and_memory_bounded(server: str, tiny_vlm: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    total, clients, warmup, time_limit = 400, 8, 20, 120.0
    mix = _load_mix(tiny_vlm)
    pid = _server_pid(server)
    rss_start = _rss_mb(pid)

    with httpx.Client(headers=_auth(), timeout=60) as client:
        for i in range(warmup):
            path, body, status = mix[i % len(mix)]
            response = client.post(server + path, json=body)
            assert response.status_code == status, response.text
    rss_warm = _rss_mb(pid)

    next_index = iter(range(total))
    take = threading.Lock()
    deadline = time.monotonic() + time_limit
    failures: list[str] = []
    latencies: list[float] = []

    def worker() -> None:
        # One keep-alive connection per client, like a real SDK client.
        with httpx.Client(headers=_auth(), timeout=60) as client:
            while time.monotonic() < deadline:
                with take:
                    i = next(next_index, None)
                if i is None:
                    return
                path, body, status = mix[i % len(mix)]
                began = time.monotonic()
                try:
                    response = client.post(server + path, json=body)
                except httpx.HTTPError as exc:
                    failures.append(f"#{i} {path}: {type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.monotonic() - began)
                if response.status_code != status:
                    failures.append(f"#{i} {path}: {response.status_code} != {status}: {response.text[:200]}")

    began = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    elapsed = time.monotonic() - began
    rss_end = _rss_mb(pid)
    done = len(latencies) + len(failures)
    latencies.sort()
    print(
        f"\nload: {done}/{total} requests, {clients} clients, {elapsed:.1f} s, {done / elapsed:.1f} req/s, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
        f"server RSS {rss_start:.0f} MB at start, {rss_warm:.0f} MB after {warmup} warm-up requests, "
        f"{rss_end:.0f} MB after the load ({rss_end - rss_warm:+.0f} MB)"
    )
    assert not failures, "\n".join(failures[:10])
    # Bounded in time: a slow machine stops at the deadline instead of running on; it must still
    # have got through a good share of the requests.
    assert done == total or (time.monotonic() >= deadline and done >= total // 4), done
    # After warm-up the server holds the model, torch's allocator pools and uvicorn's threads; the
    # load adds only transient per-request buffers (a 32x32 image, a few tokens), so RSS should stay
    # flat apart from allocator noise (a few MB; malloc arenas for the up to 40 worker threads can
    # add tens of MB). A leak of even 0.5 MB per request would add 200 MB over 400 requests, so
    # +150 MB holds with margin for the noise yet catches a per-request leak of that size.
    assert rss_end - rss_warm < 150, (rss_warm, rss_end)
    assert httpx.get(server + "/health").status_code == 200
