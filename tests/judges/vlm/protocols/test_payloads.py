"""The exact JSON body the openai backend sends for each VLM protocol (golden payloads).

A mock transport records what the official SDK sends and answers with a recorded reply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from srjudge.judges.vlm import PROTOCOLS, VLMJudge, VLMJudgeConfig
from srjudge.judges.vlm.qa_summary import qa_summary
from srjudge.vlm.backends.openai_backend import OpenAIBackend
from srjudge.vlm.images import data_uri
from srjudge.vlm.prompts import PROMPTS

IMG_A = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
IMG_B = np.random.default_rng(2).random((8, 8, 3)).astype(np.float32)
LR = np.random.default_rng(3).random((2, 2, 3)).astype(np.float32)

REPLIES = {
    "level": "good",
    "audit": '{"score": 70, "tags": [], "reason": "fine", "confidence": 0.5}',
    "pairwise": "first",
    "lr-conditioned": '{"fidelity": 80, "realism": 60, "reason": "ok", "confidence": 0.5}',
    "readout": '{"text": "3", "confidence": 0.9}',
    "perceive": '{"content": "noise", "distortions": []}',
    "infer": "fair",
}


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(body["messages"])
    if "Describe this image" in text:
        content = REPLIES["perceive"]
    elif "An image was described" in text:
        content = REPLIES["infer"]
    else:
        content = REPLIES[_current[0]]
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


_current = ["level"]


def _run(protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setenv("SRJUDGE_TEST_KEY", "sk-test")
    _current[0] = protocol
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json=_reply(body))

    backend = OpenAIBackend.from_options(
        {
            "model": "judge-model",
            "base_url": "https://api.openai.com/v1",
            "api_key_env": "SRJUDGE_TEST_KEY",
            "concurrency": "1",
            "_http_client": httpx.Client(transport=httpx.MockTransport(handler)),
        }
    )
    config = VLMJudgeConfig(
        backend="openai", backend_options={"model": "judge-model"}, protocol=protocol, cache="off", retries=0
    )
    judge = VLMJudge(config, backend=backend)
    if protocol == "pairwise":
        judge.compare(IMG_A, IMG_B)
    else:
        judge.score(IMG_A, lr=LR)
    return sent


def _user(*parts: Any) -> dict[str, Any]:
    content = [
        {"type": "text", "text": p}
        if isinstance(p, str)
        else {"type": "image_url", "image_url": {"url": data_uri(p)}}
        for p in parts
    ]
    return {"role": "user", "content": content}


def _schema_format(name: str) -> dict[str, Any]:
    schema = PROMPTS.get(name).schema
    return {
        "type": "json_schema",
        "json_schema": {"name": name.replace("-", "_"), "strict": True, "schema": schema},
    }


def test_level_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = PROMPTS.get("level")
    assert _run("level", tmp_path, monkeypatch) == [
        {
            "model": "judge-model",
            "messages": [_user(IMG_A, t.render())],
            "max_completion_tokens": 3,
            "temperature": 0.0,
            "seed": 0,
            "logprobs": True,
            "top_logprobs": 20,
        }
    ]


def test_audit_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = PROMPTS.get("audit")
    summary = qa_summary(IMG_A, lr=LR).to_text()  # no face in 8x8 noise: LR and SR, no face crop
    assert "- faces: no face found; no face crops" in summary
    user = _user(t.user_before, LR, t.user_between, IMG_A, t.render(qa_summary=summary))
    assert _run("audit", tmp_path, monkeypatch) == [
        {
            "model": "judge-model",
            "messages": [{"role": "system", "content": t.system}, user],
            "max_completion_tokens": 256,
            "temperature": 0.0,
            "seed": 0,
            "response_format": _schema_format("audit"),
        }
    ]


def test_pairwise_payloads_run_both_orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = PROMPTS.get("pairwise")
    common = {"model": "judge-model", "max_completion_tokens": 8, "temperature": 0.0, "seed": 0}
    assert _run("pairwise", tmp_path, monkeypatch) == [
        {**common, "messages": [_user(t.user_before, IMG_A, t.user_between, IMG_B, t.render())]},
        {**common, "messages": [_user(t.user_before, IMG_B, t.user_between, IMG_A, t.render())]},
    ]


def test_lr_conditioned_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = PROMPTS.get("lr-conditioned")
    assert _run("lr-conditioned", tmp_path, monkeypatch) == [
        {
            "model": "judge-model",
            "messages": [
                {"role": "system", "content": t.system},
                _user(t.user_before, LR, t.user_between, IMG_A, t.render()),
            ],
            "max_completion_tokens": 256,
            "temperature": 0.0,
            "seed": 0,
            "response_format": _schema_format("lr-conditioned"),
        }
    ]


def test_readout_payload_reads_candidates_and_the_lr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = PROMPTS.get("readout")
    common = {
        "model": "judge-model",
        "max_completion_tokens": 64,
        "temperature": 0.0,
        "seed": 0,
        "response_format": _schema_format("readout"),
    }
    system = {"role": "system", "content": t.system}
    assert _run("readout", tmp_path, monkeypatch) == [
        {**common, "messages": [system, _user(IMG_A, t.render())]},
        {**common, "messages": [system, _user(LR, t.render())]},
    ]


def test_perceive_then_infer_payloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    perceive, infer = PROMPTS.get("perceive"), PROMPTS.get("infer")
    sent = _run("perceive-infer", tmp_path, monkeypatch)
    assert sent[0] == {
        "model": "judge-model",
        "messages": [{"role": "system", "content": perceive.system}, _user(IMG_A, perceive.render())],
        "max_completion_tokens": 256,
        "temperature": 0.0,
        "seed": 0,
        "response_format": _schema_format("perceive"),
    }
    assert sent[1] == {
        "model": "judge-model",
        "messages": [{"role": "user", "content": infer.render(content="noise", distortions="none visible")}],
        "max_completion_tokens": 3,
        "temperature": 0.0,
        "seed": 0,
        "logprobs": True,
        "top_logprobs": 20,
    }


def test_every_protocol_has_a_golden_payload_test() -> None:
    tested = {"level", "audit", "pairwise", "lr-conditioned", "readout", "perceive-infer"}
    assert tested == set(PROTOCOLS)
