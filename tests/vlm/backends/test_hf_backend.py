"""The local ``hf`` backend on a tiny random-weight Qwen2-VL built offline (tests/vlm_tiny.py)."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers  # noqa: F401

from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.models.hf_folder import weights_revision
from srjudge.vlm.backends import BACKENDS, BackendError, CachedBackend, create_backend
from srjudge.vlm.backends.hf_backend import HFBackend, parse_options
from srjudge.vlm.cache import CompletionCache
from srjudge.vlm.request import (
    ChatMessage,
    ChatRequest,
    Completion,
    GenerationParams,
    TokenLogprobs,
    Usage,
)
from vlm_tiny import build_tiny_qwen2vl

LEVELS = ("excellent", "good", "fair", "poor", "bad")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="module")
def backend(tiny_dir: Path) -> HFBackend:
    b = create_backend("hf", {"model": str(tiny_dir)})
    assert isinstance(b, HFBackend)
    return b


def _image(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _mixed(params: GenerationParams) -> list[ChatRequest]:
    """One request with one image, one with two images (and a system turn), one text only."""
    return [
        ChatRequest(
            (ChatMessage.user(_image(1), "Rate the quality: excellent, good, fair, poor or bad."),), params
        ),
        ChatRequest(
            (
                ChatMessage.system("You judge super-resolution outputs."),
                ChatMessage.user(_image(2), _image(3, 48, 80), "Which is better, first or second?"),
            ),
            params,
        ),
        ChatRequest((ChatMessage.user("Answer with one word: good or bad?"),), params),
    ]


# ---------------------------------------------------------------------------------------------- registration


def test_registered_without_importing_torch() -> None:
    code = (
        "import sys, srjudge.vlm.backends.hf_backend as m; from srjudge.vlm.backends import BACKENDS; "
        "print('hf' in BACKENDS, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]
    assert "hf" in BACKENDS


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"srjudge\[local\].*2\.13\.0"):
        HFBackend({"model": str(tiny_dir)})


# ---------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"model": "x", "dtype": "float64"}, "dtype"),
        ({"model": "x", "device": "gpu"}, "device"),
        ({"model": "x", "device": "cuda:one"}, "device"),
        ({"model": "x", "batch_size": "0"}, "batch_size"),
        ({"model": "x", "batch_size": "many"}, "batch_size"),
        ({"model": "x", "batch_size": 1.5}, "batch_size"),
        ({"model": "x", "devcie": "cpu"}, "devcie"),
        ({}, "model"),
        ({"model": "  "}, "model"),
    ],
)
def test_option_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_options(options)


def test_option_coercion() -> None:
    o = parse_options(
        {"model": "m", "device": "CUDA:1", "dtype": "bf16", "batch_size": "2", "max_side": "448"}
    )
    assert (o.model, o.device, o.dtype, o.batch_size) == ("m", "cuda:1", "bfloat16", 2)
    o = parse_options({"model": "m", "device": None, "dtype": None})
    assert (o.device, o.dtype, o.batch_size) == ("cpu", None, 4)
    assert parse_options({"model": "m", "dtype": "torch.float16"}).dtype == "float16"


def test_option_errors_reach_create_backend(tiny_dir: Path) -> None:
    with pytest.raises(SpecError, match="dtype"):
        create_backend("hf", {"model": str(tiny_dir), "dtype": "int8"})


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the error when no CUDA device is visible"
)
def test_cuda_without_device_is_a_clear_error(tiny_dir: Path) -> None:
    with pytest.raises(BackendError, match="no CUDA device"):
        create_backend("hf", {"model": str(tiny_dir), "device": "cuda"})


def test_bfloat16_and_auto_dtype(tiny_dir: Path) -> None:

    b = create_backend("hf", {"model": str(tiny_dir), "dtype": "bfloat16", "device": "auto"})
    assert isinstance(b, HFBackend)
    assert b.model.dtype == torch.bfloat16
    req = ChatRequest(
        (ChatMessage.user(_image(5), "Rate it."),), GenerationParams(max_tokens=3, top_logprobs=2)
    )
    (c,) = b.complete([req])
    assert c.usage.completion_tokens >= 1 and c.logprobs is not None
    assert all(math.isfinite(t.logprob) for t in c.logprobs)
    b_auto = create_backend("hf", {"model": str(tiny_dir), "dtype": "auto"})
    assert isinstance(b_auto, HFBackend) and b_auto.model.dtype == torch.float32  # the checkpoint's dtype


# ---------------------------------------------------------------------------------------------- weights


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(MissingWeightsError, match="no-such-model"):
        create_backend("hf", {"model": str(missing)})


def test_hub_id_not_in_local_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # a relative folder of that name must not exist
    with pytest.raises(MissingWeightsError, match=r"srjudge-tests/absent-model.*local Hugging Face cache"):
        create_backend("hf", {"model": "srjudge-tests/absent-model"})


def test_hub_id_found_in_local_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_dir: Path) -> None:
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    repo = hub / "models--srjudge-tests--tiny-qwen2vl"
    shutil.copytree(tiny_dir, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    b = create_backend("hf", {"model": "srjudge-tests/tiny-qwen2vl"})
    assert isinstance(b, HFBackend)
    assert b.model_id == "srjudge-tests/tiny-qwen2vl" and b.path == repo / "snapshots" / "0123abcd"
    assert b.revision == weights_revision(tiny_dir)


def test_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    with pytest.raises(MissingWeightsError, match=r"config\.json"):
        create_backend("hf", {"model": str(tmp_path / "weights")})


def test_folder_without_processor_files(tiny_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(tiny_dir / name, bare / name)
    with pytest.raises(MissingWeightsError, match=r"no image processor.*preprocessor_config\.json"):
        create_backend("hf", {"model": str(bare)})
    # tokenizer present, image processor still missing: the same clear error
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tiny_dir / name, bare / name)
    with pytest.raises(MissingWeightsError, match=r"preprocessor_config\.json"):
        create_backend("hf", {"model": str(bare)})


def test_tiny_build_is_seeded_small_and_fast(tiny_dir: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    again = build_tiny_qwen2vl(tmp_path / "again", seed=0)
    assert time.perf_counter() - t0 < 5.0
    other = build_tiny_qwen2vl(tmp_path / "other", seed=1)
    size = sum(f.stat().st_size for f in again.iterdir())
    assert size < 2_000_000
    weights = (tiny_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == weights
    assert (other / "model.safetensors").read_bytes() != weights
    assert weights_revision(again) == weights_revision(tiny_dir) != weights_revision(other)


def test_identity_and_processor_fallback(backend: HFBackend, tiny_dir: Path) -> None:
    ident = backend.identity()
    assert ident["backend"] == "hf" and ident["model"] == str(tiny_dir)
    assert len(ident["revision"]) == 16 and int(ident["revision"], 16) >= 0
    # AutoProcessor cannot build Qwen2VLProcessor without torchvision: the image-only one stands in.
    from transformers.processing_utils import ProcessorMixin

    assert isinstance(backend.processor, ProcessorMixin)
    if importlib.util.find_spec("torchvision") is None:
        assert type(backend.processor).__name__ == "ImageOnlyQwen2VLProcessor"
        assert not hasattr(backend.processor, "video_processor")
    assert backend.num_layers == 2 and backend.supports_logprobs


# ---------------------------------------------------------------------------------------------- generation


def test_complete_mixed_batch(backend: HFBackend) -> None:
    requests = _mixed(GenerationParams(max_tokens=12))
    seen: list[int] = []
    out = backend.complete(requests, on_result=lambda i, c: seen.append(i))
    assert len(out) == 3 and sorted(seen) == [0, 1, 2]
    for c in out:
        assert isinstance(c, Completion) and isinstance(c.text, str) and isinstance(c.usage, Usage)
        assert c.usage.prompt_tokens > 0 and 1 <= c.usage.completion_tokens <= 12
        assert c.finish_reason in ("stop", "length") and c.logprobs is None and c.latency_s > 0
        assert c.model == backend.model_id
    # a 64x64 image is 4 <|image_pad|> tokens between <|vision_start|> and <|vision_end|>
    one, two = backend.complete(
        [
            ChatRequest((ChatMessage.user(_image(1), "x"),), GenerationParams(max_tokens=1)),
            ChatRequest((ChatMessage.user(_image(1), _image(2), "x"),), GenerationParams(max_tokens=1)),
        ]
    )
    assert two.usage.prompt_tokens - one.usage.prompt_tokens == 6
    again = backend.complete(requests)
    assert [c.text for c in again] == [c.text for c in out]  # greedy is deterministic


def test_greedy_same_alone_and_in_batch(backend: HFBackend) -> None:
    requests = _mixed(GenerationParams(max_tokens=8))
    batched = backend.complete(requests)
    alone = [backend.complete([r])[0] for r in requests]
    assert [c.text for c in alone] == [c.text for c in batched]


def test_sampling_reproducible_per_seed_and_sample_index(backend: HFBackend) -> None:
    base = _mixed(GenerationParams(max_tokens=16, temperature=1.0, seed=7))[0]
    k0 = ChatRequest(base.messages, base.params, sample_index=0)
    k1 = ChatRequest(base.messages, base.params, sample_index=1)
    first = backend.complete([k0, k1])
    second = backend.complete([k0, k1])
    assert [c.text for c in first] == [c.text for c in second]
    assert first[0].text != first[1].text
    other_seed = ChatRequest(base.messages, GenerationParams(max_tokens=16, temperature=1.0, seed=8))
    assert backend.complete([other_seed])[0].text != first[0].text
    nucleus = ChatRequest(base.messages, GenerationParams(max_tokens=16, temperature=0.7, top_p=0.5, seed=3))
    assert backend.complete([nucleus])[0].text == backend.complete([nucleus])[0].text


def test_max_tokens_per_request_in_one_batch(backend: HFBackend) -> None:
    short, long = _mixed(GenerationParams(max_tokens=2))[0], _mixed(GenerationParams(max_tokens=9))[2]
    a, b = backend.complete([short, long])
    assert a.usage.completion_tokens <= 2 and b.usage.completion_tokens <= 9
    if a.finish_reason == "length":
        assert a.usage.completion_tokens == 2


def test_stops_at_end_of_sequence(backend: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    req = _mixed(GenerationParams(max_tokens=6, top_logprobs=1))[0]
    (free,) = backend.complete([req])
    assert free.logprobs is not None and len(free.logprobs) >= 3
    tokens = backend.tokenizer.encode(free.text, add_special_tokens=False)
    assert len(tokens) >= 3, "the seeded tiny model's greedy text re-tokenises into at least 3 tokens"
    # treat the third generated token as an end-of-sequence token: generation stops before it
    stop_id = int(backend.tokenizer.convert_tokens_to_ids(backend.tokenizer.convert_ids_to_tokens(tokens[2])))
    monkeypatch.setattr(backend, "eos_token_ids", [*backend.eos_token_ids, stop_id])
    (stopped,) = backend.complete([req])
    assert stopped.finish_reason == "stop"
    assert stopped.usage.completion_tokens <= 3 and len(stopped.text) < len(free.text)


def test_top_logprobs(backend: HFBackend) -> None:
    k = 5
    out = backend.complete(_mixed(GenerationParams(max_tokens=10, top_logprobs=k)))
    for c in out:
        assert c.logprobs is not None and len(c.logprobs) >= 1
        assert len(c.logprobs) <= c.usage.completion_tokens
        for pos in c.logprobs:
            assert isinstance(pos, TokenLogprobs) and isinstance(pos.token, str)
            assert len(pos.top) == k
            assert sum(math.exp(v) for v in pos.top.values()) <= 1.0 + 1e-6
            assert pos.logprob <= 0.0
            # greedy: the chosen token is the most likely alternative
            assert pos.logprob == pytest.approx(max(pos.top.values()), abs=1e-5)
            assert pos.top.get(pos.token) == pytest.approx(pos.logprob, abs=1e-5)
        round_trip = Completion.from_dict(c.to_dict())
        assert round_trip.logprobs == c.logprobs
    (zero,) = backend.complete([_mixed(GenerationParams(max_tokens=3, top_logprobs=0))[2]])
    assert zero.logprobs is not None and all(p.top == {} for p in zero.logprobs)


def test_sampled_top_logprobs(backend: HFBackend) -> None:
    params = GenerationParams(max_tokens=6, temperature=1.0, seed=1, top_logprobs=3)
    (c,) = backend.complete([_mixed(params)[1]])
    assert c.logprobs is not None
    for pos in c.logprobs:
        assert len(pos.top) == 3 and sum(math.exp(v) for v in pos.top.values()) <= 1.0 + 1e-6


def test_cached_backend_stores_hf_answers(backend: HFBackend, tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "cache.sqlite")
    client = CachedBackend(backend, cache)
    requests = _mixed(GenerationParams(max_tokens=4))
    fresh = client.complete(requests)
    cached = client.complete(requests)
    assert [c.text for c in cached] == [c.text for c in fresh] and all(c.cached for c in cached)
    dists = client.next_token_distribution(requests[:1], LEVELS)
    assert dists[0].logprobs is not None and set(dists[0].logprobs[0].top) == set(LEVELS)


# ---------------------------------------------------------------------------------------------- scoring


def test_next_token_logprobs(backend: HFBackend) -> None:
    requests = _mixed(GenerationParams(max_tokens=1))
    rows = backend.next_token_logprobs(requests, LEVELS)
    assert len(rows) == 3
    for row in rows:
        assert list(row) == list(LEVELS)
        assert all(math.isfinite(v) and v < 0 for v in row.values())
        assert sum(math.exp(v) for v in row.values()) <= 1.0 + 1e-6
    # batched and one at a time agree
    for r, row in zip(requests, rows, strict=True):
        (single,) = backend.next_token_logprobs([r], LEVELS)
        for w in LEVELS:
            assert single[w] == pytest.approx(row[w], abs=1e-4)
    assert rows[0] != rows[2]


def test_next_token_logprobs_agree_with_generation(backend: HFBackend) -> None:
    """The first generated position's log-probabilities are the prompt's next-token log-softmax."""

    req = _mixed(GenerationParams(max_tokens=1, top_logprobs=20))[0]
    (c,) = backend.complete([req])
    assert c.logprobs is not None
    lsm = torch.log_softmax(backend._forward_last([req]).logits[0, -1].float(), dim=-1)
    chosen = int(lsm.argmax())
    assert c.logprobs[0].logprob == pytest.approx(float(lsm[chosen]), abs=1e-4)
    rows = backend.next_token_logprobs([req], LEVELS)[0]
    for word, ids in backend.candidate_token_ids(LEVELS).items():
        assert rows[word] == pytest.approx(float(torch.logsumexp(lsm[ids], dim=0)), abs=1e-5)


def test_candidate_tokens(backend: HFBackend) -> None:
    ids = backend.candidate_token_ids(LEVELS)
    flat = [t for v in ids.values() for t in v]
    assert len(flat) == len(set(flat))  # no token counts for two candidates
    space_good = backend.tokenizer.encode(" good", add_special_tokens=False)[0]
    assert space_good in ids["good"]
    with pytest.raises(BackendError, match="duplicate"):
        backend.candidate_token_ids(["good", "good"])
    with pytest.raises(BackendError, match="first token"):
        backend.candidate_token_ids(["good", "good!"])


def test_continues_a_final_assistant_message(backend: HFBackend) -> None:
    prefill = ChatRequest((ChatMessage.user(_image(4), "Rate it."), ChatMessage.assistant("Rating:")))
    prompt = backend.render(prefill)
    assert prompt.endswith("Rating:") and "<|im_start|>assistant\n" in prompt
    opened = backend.render(ChatRequest((ChatMessage.user(_image(4), "Rate it."),)))
    assert opened.endswith("<|im_start|>assistant\n")
    (row,) = backend.next_token_logprobs([prefill], LEVELS)
    assert all(math.isfinite(v) for v in row.values())
    (c,) = backend.complete([ChatRequest(prefill.messages, GenerationParams(max_tokens=3))])
    assert c.usage.completion_tokens >= 1


def test_logit_lens(backend: HFBackend) -> None:
    req = _mixed(GenerationParams(max_tokens=1))[1]
    lens = backend.logit_lens(req, LEVELS)
    assert len(lens) == backend.num_layers == 2
    for row in lens:
        assert list(row) == list(LEVELS)
        assert all(0.0 <= p <= 1.0 for p in row.values())
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-6)
    (direct,) = backend.next_token_logprobs([req], LEVELS)
    total = sum(math.exp(v) for v in direct.values())
    for w in LEVELS:
        assert lens[-1][w] == pytest.approx(math.exp(direct[w]) / total, abs=1e-5)
    assert lens[0] != lens[-1]


# ---------------------------------------------------------------------------------------------- offline


def test_no_network_during_load_and_generate(monkeypatch: pytest.MonkeyPatch, tiny_dir: Path) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    b = create_backend("hf", {"model": str(tiny_dir), "batch_size": "2"})
    assert isinstance(b, HFBackend)
    out = b.complete(_mixed(GenerationParams(max_tokens=4, top_logprobs=2)))
    assert len(out) == 3
    b.next_token_logprobs(_mixed(GenerationParams())[:1], LEVELS)
    b.logit_lens(_mixed(GenerationParams())[2], LEVELS)
    assert attempts == []
    assert os.environ.get("HF_HUB_OFFLINE") == "1" and os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    b.close()
    with pytest.raises(BackendError, match="closed"):
        b.complete(_mixed(GenerationParams())[:1])
