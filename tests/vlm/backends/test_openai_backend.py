"""The ``openai`` backend, offline: exact payloads, parsing, retries, concurrency and key hygiene."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx  # the [vlm] extra; a missing extra fails these tests (never skips)
import numpy as np
import pytest

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.vlm.backends import BACKENDS, BackendError, create_backend
from srjudge.vlm.backends.openai_backend import (
    OpenAIBackend,
    backoff_delay,
    base_url_host,
    build_payload,
    is_local_url,
    parse_completion,
    retry_after_seconds,
)
from srjudge.vlm.images import data_uri
from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams

KEY_ENV = "SRJUDGE_TEST_OPENAI_KEY"
FAKE_KEY = "sk-srjudge-FAKE-4c7e1d9b2a0f"
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer"}},
    "required": ["score"],
    "additionalProperties": False,
}

OK_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "judge-model-2025",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"score": 4}', "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 321, "completion_tokens": 7, "total_tokens": 328},
}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_LOG", raising=False)


@pytest.fixture(scope="module")
def img1() -> np.ndarray:
    return np.random.default_rng(1).random((6, 5, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def img2() -> np.ndarray:
    return np.random.default_rng(2).random((4, 7, 3)).astype(np.float32)


def _backend(options: dict[str, Any]) -> OpenAIBackend:
    base = {"model": "judge-model", "api_key_env": KEY_ENV}
    backend = OpenAIBackend.from_options({**base, **options})
    return backend


# --------------------------------------------------------------------------- exact payloads (mock transport)


@dataclass
class Recorder:
    """A mock transport that records each request and answers with a canned response."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: OK_RESPONSE)
    requests: list[Any] = field(default_factory=list)

    def handler(self, request: Any) -> Any:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self) -> Any:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def sent(self) -> dict[str, Any]:
        assert len(self.requests) == 1
        data: dict[str, Any] = json.loads(self.requests[0].content)
        return data


def _send(request: ChatRequest, **options: Any) -> tuple[Recorder, Any]:
    rec = Recorder()
    backend = _backend({"base_url": "http://vllm.test:8000/v1", **options, "_http_client": rec.client()})
    [completion] = backend.complete([request])
    return rec, completion


def test_text_and_image_payload_is_exact_and_authorised(img1: np.ndarray) -> None:
    request = ChatRequest(
        (ChatMessage.system("You judge images."), ChatMessage.user("Rate this image.", img1)),
        GenerationParams(max_tokens=64),
    )
    rec, completion = _send(request)
    assert rec.sent() == {
        "model": "judge-model",
        "messages": [
            {"role": "system", "content": "You judge images."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Rate this image."},
                    {"type": "image_url", "image_url": {"url": data_uri(img1)}},
                ],
            },
        ],
        "max_tokens": 64,
        "temperature": 0.0,
    }
    sent = rec.requests[0]
    assert sent.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert str(sent.url) == "http://vllm.test:8000/v1/chat/completions"
    assert completion.text == '{"score": 4}'
    assert completion.model == "judge-model-2025"
    assert completion.retries == 0 and completion.latency_s > 0


def test_two_image_payload_keeps_part_order(img1: np.ndarray, img2: np.ndarray) -> None:
    request = ChatRequest((ChatMessage.user("A:", img1, "B:", img2, "Which is sharper?"),))
    rec, _ = _send(request)
    assert rec.sent()["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A:"},
                {"type": "image_url", "image_url": {"url": data_uri(img1)}},
                {"type": "text", "text": "B:"},
                {"type": "image_url", "image_url": {"url": data_uri(img2)}},
                {"type": "text", "text": "Which is sharper?"},
            ],
        }
    ]


def test_json_schema_payload_on_openai(img1: np.ndarray) -> None:
    request = ChatRequest(
        (ChatMessage.user("Score it.", img1),), GenerationParams(max_tokens=32, json_schema=SCHEMA)
    )
    for structured in ("auto", "json_schema"):
        rec, _ = _send(request, base_url="https://api.openai.com/v1", structured=structured)
        assert rec.sent() == {
            "model": "judge-model",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Score it."},
                        {"type": "image_url", "image_url": {"url": data_uri(img1)}},
                    ],
                }
            ],
            "max_completion_tokens": 32,
            "temperature": 0.0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA},
            },
        }


def test_json_schema_payload_on_vllm() -> None:
    request = ChatRequest(
        (ChatMessage.user("Score it."),), GenerationParams(max_tokens=32, json_schema=SCHEMA, schema_name="s")
    )
    rec, _ = _send(request, structured="vllm")
    assert rec.sent() == {
        "model": "judge-model",
        "messages": [{"role": "user", "content": "Score it."}],
        "max_tokens": 32,
        "temperature": 0.0,
        "structured_outputs": {"json": SCHEMA},
    }
    # auto on a non-OpenAI server sends no schema (not every local server accepts one)
    rec, _ = _send(request)
    assert "response_format" not in rec.sent() and "structured_outputs" not in rec.sent()
    # json_schema is accepted by vLLM, SGLang, Ollama too when asked for
    rec, _ = _send(request, structured="json_schema")
    assert rec.sent()["response_format"]["json_schema"] == {"name": "s", "strict": True, "schema": SCHEMA}
    assert rec.sent()["max_tokens"] == 32


def test_top_logprobs_seed_and_sampling_payload() -> None:
    params = GenerationParams(max_tokens=1, temperature=0.7, top_p=0.9, seed=11, top_logprobs=5)
    rec, _ = _send(ChatRequest((ChatMessage.user("One word."),), params))
    assert rec.sent() == {
        "model": "judge-model",
        "messages": [{"role": "user", "content": "One word."}],
        "max_tokens": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 11,
        "logprobs": True,
        "top_logprobs": 5,
    }
    rec, _ = _send(ChatRequest((ChatMessage.user("x"),), GenerationParams(top_logprobs=0)))
    assert rec.sent()["logprobs"] is True and rec.sent()["top_logprobs"] == 0


def test_prefill_payload(img1: np.ndarray) -> None:
    messages = (ChatMessage.user("Rate.", img1), ChatMessage.assistant('{"score": '))
    request = ChatRequest(messages, GenerationParams(max_tokens=4, json_schema=SCHEMA))
    rec, _ = _send(request, structured="vllm")
    assert rec.sent() == {
        "model": "judge-model",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Rate."},
                    {"type": "image_url", "image_url": {"url": data_uri(img1)}},
                ],
            },
            {"role": "assistant", "content": '{"score": '},
        ],
        "max_tokens": 4,
        "temperature": 0.0,
        "structured_outputs": {"json": SCHEMA},
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    # elsewhere the prefill is kept as the final assistant message, with no vLLM extras
    rec, _ = _send(ChatRequest(messages), base_url="https://api.openai.com/v1")
    sent = rec.sent()
    assert sent["messages"][-1] == {"role": "assistant", "content": '{"score": '}
    assert "continue_final_message" not in sent and "add_generation_prompt" not in sent


def test_build_payload_is_pure_and_keeps_extra_body_apart() -> None:
    request = ChatRequest(
        (ChatMessage.user("q"), ChatMessage.assistant("a")),
        GenerationParams(max_tokens=3, json_schema=SCHEMA),
    )
    payload = build_payload(request, "m", "vllm")
    assert payload == {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "max_tokens": 3,
        "temperature": 0.0,
        "extra_body": {
            "structured_outputs": {"json": SCHEMA},
            "continue_final_message": True,
            "add_generation_prompt": False,
        },
    }
    assert build_payload(request, "m", "vllm") == payload
    assert "extra_body" not in build_payload(request, "m", "none")
    assert build_payload(request, "m", "auto", openai_host=True)["response_format"]["type"] == "json_schema"
    with pytest.raises(ValueError, match="only allowed in user"):
        build_payload(
            ChatRequest((ChatMessage("assistant", ChatMessage.user(np.zeros((2, 2, 3))).parts),)), "m", "none"
        )


# --------------------------------------------------------------------------- parsing recorded responses


def test_parse_normal_response() -> None:
    c = parse_completion(OK_RESPONSE)
    assert (c.text, c.model, c.finish_reason, c.refusal, c.logprobs) == (
        '{"score": 4}',
        "judge-model-2025",
        "stop",
        None,
        None,
    )
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (321, 7)


def test_parse_logprobs() -> None:
    response = {
        "model": "m",
        "choices": [
            {
                "message": {"role": "assistant", "content": "good"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        {
                            "token": "good",
                            "logprob": -0.25,
                            "bytes": [103, 111, 111, 100],
                            "top_logprobs": [
                                {"token": "good", "logprob": -0.25, "bytes": [103]},
                                {"token": "fair", "logprob": -1.75, "bytes": None},
                                {"token": "excellent", "logprob": -3.0, "bytes": None},
                                {"token": "fair", "logprob": -1.75, "bytes": None},  # a second id, same text
                                {"token": "bad", "logprob": -9999.0, "bytes": None},
                            ],
                        }
                    ],
                    "refusal": None,
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }
    c = parse_completion(response)
    assert c.logprobs is not None and len(c.logprobs) == 1
    t = c.logprobs[0]
    assert (t.token, t.logprob) == ("good", -0.25)
    assert t.top["good"] == -0.25 and t.top["excellent"] == -3.0 and t.top["bad"] == -9999.0
    assert t.top["fair"] == pytest.approx(-1.75 + np.log(2.0))
    assert json.loads(json.dumps(c.to_dict()))["logprobs"][0]["token"] == "good"


def test_parse_refusal_missing_usage_and_truncation() -> None:
    refusal = {
        "model": "m",
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                "finish_reason": "stop",
                "logprobs": {"content": None, "refusal": []},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6},
    }
    c = parse_completion(refusal)
    assert (c.text, c.refusal, c.logprobs) == ("", "I can't help with that.", None)

    no_usage = {"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
    c = parse_completion(no_usage)
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (0, 0)
    assert parse_completion({**no_usage, "usage": None}).usage.total_tokens == 0

    truncated = {
        "model": "m",
        "choices": [{"message": {"content": '{"score": '}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4},
    }
    c = parse_completion(truncated)
    assert (c.text, c.finish_reason, c.usage.completion_tokens) == ('{"score": ', "length", 4)

    with pytest.raises(BackendError, match="no choices: model overloaded"):
        parse_completion({"error": {"message": "model overloaded"}})


# --------------------------------------------------------------------------- a real local server


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: OK_RESPONSE)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False


class Server:
    """A threaded HTTP server on 127.0.0.1 answering a script of replies (the last one repeats)."""

    def __init__(self, replies: list[Reply] | Callable[[dict[str, Any]], Reply]) -> None:
        self.replies = replies
        self.hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    index = server.hits
                    server.hits += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.auth.append(self.headers.get("Authorization", ""))
                try:
                    if callable(server.replies):
                        reply = server.replies(body)
                    else:
                        reply = server.replies[min(index, len(server.replies) - 1)]
                    if reply.hang:
                        server.release.wait(10.0)
                        return
                    time.sleep(reply.delay)
                    data = json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(replies: list[Reply] | Callable[[dict[str, Any]], Reply]) -> Server:
        servers.append(Server(replies))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _request(text: str = "Rate.") -> ChatRequest:
    return ChatRequest((ChatMessage.user(text),), GenerationParams(max_tokens=8))


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def test_429_with_retry_after_then_success(serve: Callable[..., Server]) -> None:
    server = serve([Reply(429, _error("slow down"), {"Retry-After": "0"}), Reply()])
    backend = _backend({"base_url": server.url, "_backoff_base": 5.0})  # Retry-After: 0 beats the backoff
    start = time.perf_counter()
    [c] = backend.complete([_request()])
    assert time.perf_counter() - start < 2.0
    assert (c.retries, c.text, server.hits) == (1, '{"score": 4}', 2)
    assert server.auth == [f"Bearer {FAKE_KEY}"] * 2


def test_retry_after_ms_is_honoured(serve: Callable[..., Server]) -> None:
    server = serve([Reply(503, _error("busy"), {"retry-after-ms": "300"}), Reply()])
    backend = _backend({"base_url": server.url, "_backoff_base": 0.001})
    start = time.perf_counter()
    [c] = backend.complete([_request()])
    assert time.perf_counter() - start >= 0.3
    assert c.retries == 1


def test_500_always_gives_up_after_max_retries(serve: Callable[..., Server]) -> None:
    server = serve([Reply(500, _error("engine crashed"))])
    backend = _backend({"base_url": server.url, "max_retries": "3", "_backoff_base": 0.001})
    with pytest.raises(
        BackendError, match=r"HTTP 500: engine crashed.*gave up after 3 retries \(4 attempts\)"
    ):
        backend.complete([_request()])
    assert server.hits == 4


def test_400_fails_at_once_with_the_server_message(serve: Callable[..., Server]) -> None:
    server = serve([Reply(400, _error("image too large: 40000 tokens > 32768"))])
    backend = _backend({"base_url": server.url, "_backoff_base": 0.001})
    with pytest.raises(BackendError, match=r"HTTP 400 .*image too large: 40000 tokens > 32768"):
        backend.complete([_request()])
    assert server.hits == 1
    # vLLM's older error shape and FastAPI's
    server = serve([Reply(404, {"object": "error", "message": "The model `x` does not exist.", "code": 404})])
    with pytest.raises(BackendError, match="does not exist"):
        _backend({"base_url": server.url}).complete([_request()])
    server = serve([Reply(422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]})])
    with pytest.raises(BackendError, match="field required"):
        _backend({"base_url": server.url}).complete([_request()])


def test_hanging_server_times_out_retries_then_fails(serve: Callable[..., Server]) -> None:
    server = serve([Reply(hang=True)])
    backend = _backend({"base_url": server.url, "timeout": "0.5", "max_retries": "1", "_backoff_base": 0.001})
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"timeout after 0.5 s.*gave up after 1 retries"):
        backend.complete([_request()])
    elapsed = time.perf_counter() - start
    assert server.hits == 2
    assert 0.9 < elapsed < 3.0


def test_connection_refused_is_retried_then_fails() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = _backend(
        {"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": "2", "_backoff_base": 0.001}
    )
    with pytest.raises(BackendError, match=r"connection failed.*gave up after 2 retries"):
        backend.complete([_request()])


def test_concurrency_is_bounded_and_order_is_kept(serve: Callable[..., Server]) -> None:
    def echo(body: dict[str, Any]) -> Reply:
        text = body["messages"][0]["content"]
        answer = {**OK_RESPONSE, "choices": [{"message": {"content": text}, "finish_reason": "stop"}]}
        return Reply(body=answer, delay=0.2)

    server = serve(echo)
    backend = _backend({"base_url": server.url, "concurrency": "4"})
    requests = [_request(f"item {i}") for i in range(8)]
    start = time.perf_counter()
    completions = backend.complete(requests)
    elapsed = time.perf_counter() - start
    assert [c.text for c in completions] == [f"item {i}" for i in range(8)]
    assert 0.35 < elapsed < 0.8
    assert server.max_in_flight == 4


def test_a_permanent_failure_fails_the_batch(serve: Callable[..., Server]) -> None:
    def some_bad(body: dict[str, Any]) -> Reply:
        bad = body["messages"][0]["content"] == "item 2"
        return Reply(400, _error("bad item")) if bad else Reply(delay=0.05)

    server = serve(some_bad)
    with pytest.raises(BackendError, match="bad item"):
        _backend({"base_url": server.url, "concurrency": "2"}).complete(
            [_request(f"item {i}") for i in range(6)]
        )


# --------------------------------------------------------------------------- keys


def _texts_of(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), *map(str, exc.args), "".join(traceback.format_exception(exc))]


def test_api_key_never_leaks(serve: Callable[..., Server], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "srjudge"):
        caplog.set_level(logging.DEBUG, logger=name)
    server = serve(
        [
            Reply(500, _error("overloaded")),
            Reply(401, _error(f"Incorrect API key provided: {FAKE_KEY}. You can find your API key at ...")),
        ]
    )
    backend = _backend({"base_url": server.url, "max_retries": "1", "_backoff_base": 0.001})
    with pytest.raises(BackendError) as info:
        backend.complete([_request()])
    texts = _texts_of(info.value)
    assert "Incorrect API key provided: ***" in texts[0] and KEY_ENV in texts[0]
    # a call exhausting its retries, and a timeout
    server = serve([Reply(500, _error(f"echo {FAKE_KEY}"))])
    with pytest.raises(BackendError) as info:
        _backend({"base_url": server.url, "max_retries": "1", "_backoff_base": 0.001}).complete([_request()])
    texts += _texts_of(info.value)
    server = serve([Reply(hang=True)])
    with pytest.raises(BackendError) as info:
        _backend({"base_url": server.url, "timeout": "0.3", "max_retries": "0"}).complete([_request()])
    texts += _texts_of(info.value)
    texts += [repr(backend), str(backend), json.dumps(backend.identity())]
    records = [r for r in caplog.records]
    assert any(r.name.startswith("openai") for r in records)  # the SDK's debug logging was captured
    texts += (
        [r.getMessage() for r in records]
        + [repr(r.args) for r in records]
        + [r.exc_text or "" for r in records]
    )
    assert server.auth and server.auth[0] == f"Bearer {FAKE_KEY}"  # the key was really sent
    leaks = [t for t in texts if FAKE_KEY in t]
    assert not leaks


def test_spec_options_never_echo_a_key() -> None:
    with pytest.raises(SpecError, match="only from the environment") as info:
        OpenAIBackend.from_options({"model": "m", "api_key": FAKE_KEY})
    assert FAKE_KEY not in str(info.value)
    with pytest.raises(SpecError, match="Unknown option") as info:
        OpenAIBackend.from_options({"model": "m", "apikey": FAKE_KEY})
    assert FAKE_KEY not in str(info.value) and "apikey" in str(info.value)
    with pytest.raises(SpecError, match="NAME of an environment variable") as info:
        OpenAIBackend.from_options({"model": "m", "api_key_env": FAKE_KEY})
    assert FAKE_KEY not in str(info.value)


def test_missing_key_for_a_remote_server_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BackendError, match=f"{KEY_ENV} is not set"):
        _backend({"base_url": "https://api.example.com/v1"})
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        OpenAIBackend.from_options({"model": "gpt-4o-mini"})  # default: api.openai.com


def test_localhost_needs_no_key(serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    server = serve([Reply()])
    [c] = _backend({"base_url": server.url}).complete([_request()])
    assert c.text == '{"score": 4}'
    assert server.auth == ["Bearer EMPTY"]
    assert is_local_url("http://localhost:11434/v1") and is_local_url("http://[::1]:8000/v1")
    assert not is_local_url("http://10.0.0.5:8000/v1") and not is_local_url("https://api.openai.com/v1")


# --------------------------------------------------------------------------- options, identity, registry


def test_identity_is_model_and_server_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    a = _backend({"base_url": "http://gpu-a:8000/v1"})
    b = _backend({"base_url": "http://user:pw@GPU-B:8000/v1?api-key=zzz"})
    assert a.identity() == {"backend": "openai", "model": "judge-model", "revision": "gpu-a:8000"}
    assert b.identity()["revision"] == "gpu-b:8000"
    assert "pw" not in repr(b) and "zzz" not in repr(b)
    assert OpenAIBackend.from_options({"model": "m", "api_key_env": KEY_ENV}).revision == "api.openai.com"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    assert OpenAIBackend.from_options({"model": "m"}).revision == "127.0.0.1:9999"
    assert base_url_host("http://[::1]:8000/v1") == "[::1]:8000"


def test_options_are_validated_with_clear_errors() -> None:
    with pytest.raises(SpecError, match="needs a model"):
        OpenAIBackend.from_options({"api_key_env": KEY_ENV})
    with pytest.raises(SpecError, match=r"structured .*auto, json_schema, vllm, none.*'guided'"):
        _backend({"structured": "guided"})
    with pytest.raises(SpecError, match=r"concurrency .*integer >= 1.*'four'"):
        _backend({"concurrency": "four"})
    with pytest.raises(SpecError, match=r"max_retries .*integer >= 0"):
        _backend({"max_retries": "-1"})
    with pytest.raises(SpecError, match=r"timeout .*positive"):
        _backend({"timeout": "0"})
    with pytest.raises(SpecError, match=r"base_url .*http"):
        _backend({"base_url": "localhost:8000"})
    backend = _backend(
        {"concurrency": "8", "timeout": "12.5", "max_retries": "0", "price_in": "0.15", "price_out": "0.6"}
    )
    assert (backend.concurrency, backend.timeout, backend.max_retries) == (8, 12.5, 0)
    assert backend.mode == "json_schema" and backend.supports_json_schema and backend.supports_logprobs
    assert _backend({"base_url": "http://localhost:8000/v1"}).mode == "none"


def test_registry_and_lazy_sdk_import(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "openai" in BACKENDS
    backend = create_backend("openai", {"model": "m", "api_key_env": KEY_ENV})
    assert isinstance(backend, OpenAIBackend)
    code = (
        "import sys; import srjudge.vlm.backends.openai_backend as m; "
        "from srjudge.vlm.backends import BACKENDS; assert 'openai' in BACKENDS; "
        "assert 'openai' not in sys.modules, 'registration imported the SDK'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'srjudge\[vlm\]'"):
        _backend({})


def test_backoff_and_retry_after_helpers() -> None:
    for retry in range(8):
        d = backoff_delay(retry, base=0.5, cap=20.0)
        full = min(20.0, 0.5 * 2**retry)
        assert full / 2 <= d <= full
    assert backoff_delay(3, base=0.5, cap=20.0, retry_after=0.0) == 0.0
    assert backoff_delay(0, base=0.5, cap=20.0, retry_after=3600.0) == 60.0
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
