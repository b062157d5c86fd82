"""``srjudge serve`` as a real subprocess on a free loopback port, used through the official SDK.

Every protocol runs through the ``openai`` backend against the served tiny model; raw HTTP checks
the OpenAI-compatible schema, the judge endpoints, the bearer token and 4xx answers to bad input.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from srjudge.judges import create_judge
from srjudge.judges.vlm import VLMJudge
from srjudge.vlm.images import data_uri

TOKEN = "serve-test-token-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "SRJUDGE_SERVE_TOKEN": TOKEN}
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "srjudge.cli.main",
                "serve",
                "--model",
                str(tiny_vlm),
                "--port",
                str(port),
                "--token-env",
                "SRJUDGE_SERVE_TOKEN",
                "--max-body-mb",
                "1",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"srjudge serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _images(n: int, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]


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
