"""The HTTP app of ``srjudge serve`` (FastAPI).

- ``POST /v1/chat/completions``: OpenAI-compatible (text and ``data:`` image parts, ``max_tokens``
  or ``max_completion_tokens``, temperature, top_p, seed, ``logprobs``/``top_logprobs``), so the
  ``openai`` backend and other tools can share one loaded model. Remote image URLs are refused:
  the server fetches nothing.
- ``GET /v1/models``, ``GET /health``.
- ``POST /judge/score``, ``/judge/compare``, ``/judge/rank``: srjudge's VLM protocols on the loaded
  model; requests name the protocol and its options.

Binds to 127.0.0.1 by default. With a token set, every endpoint but ``/health`` needs
``Authorization: Bearer <token>``. Oversized or malformed requests get a 4xx with a clear message:

- bodies above ``max_body_bytes`` (counted as received, chunked or not): 413;
- a ``Host`` other than localhost, 127.0.0.1 or [::1] (any port) when no token is set, or outside
  ``allowed_hosts`` / ``SRJUDGE_SERVE_ALLOWED_HOSTS`` when given: 421 (against DNS rebinding);
- images whose header declares more than ``max_image_pixels``: 413, before any pixel is decoded;
- chat text above ``max_prompt_chars`` characters: 413;
- judge requests that could make more than ``max_model_calls`` model calls: 422;
- NaN or infinite numbers: 422 (validation errors never echo what JSON cannot carry).
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from srjudge.errors import SrjudgeError
from srjudge.judges.vlm import PROTOCOLS, VLMJudge, VLMJudgeConfig
from srjudge.serve.limits import (
    DEFAULT_MAX_MODEL_CALLS,
    DEFAULT_MAX_PROMPT_CHARS,
    RequestGuard,
    finite_json,
    resolve_allowed_hosts,
    worst_case_model_calls,
)
from srjudge.vlm.backends.base import VLMBackend
from srjudge.vlm.images import ImageTooLarge, decode_data_uri
from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams, ImagePart, Part, TextPart

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 16_000_000
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
"""The image decoders a request may reach (no EPS, PDF or other formats with heavier decoders)."""
MAX_BUDGET = 1_000_000


class ImageURL(BaseModel):
    url: str


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


class ChatCompletionBody(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False


class JudgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    images: list[str] = Field(min_length=1, max_length=64)
    lr: str | None = None
    protocol: str = "level"
    samples: int = Field(default=1, ge=1, le=32)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    retries: int = Field(default=2, ge=0, le=10)
    rank: Literal["bt", "copeland"] = "bt"
    budget: int | None = Field(default=None, ge=1, le=MAX_BUDGET)


class CompareBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    a: str
    b: str
    lr: str | None = None
    protocol: str = "pairwise"
    samples: int = Field(default=1, ge=1, le=32)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    retries: int = Field(default=2, ge=0, le=10)


def _decode(uri: str, what: str, max_pixels: int) -> np.ndarray:
    if not uri.startswith("data:"):
        raise HTTPException(400, f"{what}: only data: URIs are accepted (srjudge serve fetches no URLs).")
    try:
        # The header's size is checked before decoding: a few KB can declare gigabytes of pixels.
        return decode_data_uri(uri, max_pixels=max_pixels, formats=IMAGE_FORMATS)
    except ImageTooLarge as exc:
        raise HTTPException(
            413, f"{what}: {exc.width}x{exc.height} is above the limit of {max_pixels:,} pixels."
        ) from None
    except Image.DecompressionBombError:
        raise HTTPException(413, f"{what}: the image is above the limit of {max_pixels:,} pixels.") from None
    except Exception as exc:
        raise HTTPException(400, f"{what}: not a decodable base64 image ({type(exc).__name__}).") from None


def _validation_message(errors: Sequence[Any]) -> str:
    described = []
    for error in list(errors)[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        if error.get("type") == "finite_number":
            described.append(f"{loc}: NaN and infinity are not accepted")
        else:
            described.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(described) + more


def create_app(
    backend: VLMBackend,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    cache: str | None = "off",
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
    max_model_calls: int = DEFAULT_MAX_MODEL_CALLS,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The app around one loaded backend. Model calls are serialised: one model, one device.

    ``allowed_hosts``: host names accepted in ``Host`` (any port; ``*`` for any). When None, the
    comma-separated ``SRJUDGE_SERVE_ALLOWED_HOSTS`` if set; else loopback names only without a
    token, and any name with a token (the token already stops a rebinding web page).
    """
    app = FastAPI(
        title="srjudge serve",
        version=__import__("srjudge").__version__,
        description="A local VLM behind an OpenAI-compatible API and srjudge judge endpoints.",
    )
    lock = threading.Lock()
    model_name = backend.identity()["model"]

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": {"message": "missing or wrong bearer token"}}, status_code=401)
        return await call_next(request)

    # Outermost (added last): the Host check and the body limit run before anything reads the body.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=max_body_bytes,
        allowed_hosts=resolve_allowed_hosts(allowed_hosts, token),
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(
            {"detail": finite_json(list(errors)), "error": {"message": _validation_message(errors)}},
            status_code=422,
        )

    @app.exception_handler(SrjudgeError)
    async def srjudge_error(request: Request, exc: SrjudgeError) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc)}}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.detail}}, status_code=exc.status_code)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "srjudge"}]}

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatCompletionBody) -> dict[str, Any]:
        if body.stream:
            raise HTTPException(400, "stream=true is not supported by srjudge serve.")
        chars = sum(
            len(m.content) if isinstance(m.content, str) else sum(len(p.text or "") for p in m.content)
            for m in body.messages
        )
        if chars > max_prompt_chars:
            raise HTTPException(
                413, f"the prompt has {chars:,} characters of text; the limit is {max_prompt_chars:,}."
            )
        messages = []
        for index, message in enumerate(body.messages):
            parts: list[Part] = []
            if isinstance(message.content, str):
                parts.append(TextPart(message.content))
            else:
                for part in message.content:
                    if part.type == "text":
                        parts.append(TextPart(part.text or ""))
                    elif part.image_url is not None:
                        image = _decode(part.image_url.url, f"messages[{index}] image", max_image_pixels)
                        parts.append(ImagePart.of(image))
                    else:
                        raise HTTPException(400, f"messages[{index}]: image_url part without a url.")
            messages.append(ChatMessage(message.role, tuple(parts)))
        params = GenerationParams(
            max_tokens=body.max_completion_tokens or body.max_tokens or 256,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            top_logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        )
        with lock:
            completion = backend.complete([ChatRequest(tuple(messages), params)])[0]
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": completion.text},
            "finish_reason": completion.finish_reason,
            "logprobs": None,
        }
        if body.logprobs and completion.logprobs is not None:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": t.token,
                        "logprob": t.logprob,
                        "bytes": list(t.token.encode()),
                        "top_logprobs": [
                            {"token": tok, "logprob": lp, "bytes": list(tok.encode())}
                            for tok, lp in t.top.items()
                        ],
                    }
                    for t in completion.logprobs
                ]
            }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "total_tokens": completion.usage.total_tokens,
            },
        }

    def judge_for(protocol: str, samples: int, temperature: float, retries: int, **extra: Any) -> VLMJudge:
        if protocol not in PROTOCOLS:
            raise HTTPException(400, f"unknown protocol {protocol!r}; available: {', '.join(PROTOCOLS)}.")
        config = VLMJudgeConfig(
            backend=backend.kind,
            backend_options={"model": model_name},
            protocol=protocol,
            samples=samples,
            temperature=temperature,
            retries=retries,
            cache=cache,
            **extra,
        )
        return VLMJudge(config, backend=backend)

    def check_calls(body: JudgeBody | CompareBody, images: int, has_lr: bool) -> None:
        budget = body.budget if isinstance(body, JudgeBody) else None
        calls = worst_case_model_calls(
            body.protocol, images, samples=body.samples, retries=body.retries, has_lr=has_lr, budget=budget
        )
        if calls > max_model_calls:
            raise HTTPException(
                422,
                f"this request could make {calls:,} model calls ({body.protocol} protocol, {images} images, "
                f"samples={body.samples}, retries={body.retries}"
                + (f", budget={budget}" if budget is not None else "")
                + f"); the limit is {max_model_calls:,}. Send fewer images, samples or retries"
                + (
                    ", or a smaller budget."
                    if body.protocol == "pairwise" and isinstance(body, JudgeBody)
                    else "."
                ),
            )

    def decode_all(uris: Sequence[str], what: str) -> list[np.ndarray]:
        return [_decode(u, f"{what}[{i}]", max_image_pixels) for i, u in enumerate(uris)]

    def judge_request(body: JudgeBody) -> tuple[VLMJudge, list[np.ndarray], np.ndarray | None]:
        """The judge a request asks for and its decoded images, after the call-budget check."""
        judge = judge_for(
            body.protocol, body.samples, body.temperature, body.retries, rank=body.rank, budget=body.budget
        )
        check_calls(body, len(body.images), body.lr is not None)
        images = decode_all(body.images, "images")
        lr = _decode(body.lr, "lr", max_image_pixels) if body.lr else None
        return judge, images, lr

    @app.post("/judge/score")
    def judge_score(body: JudgeBody) -> dict[str, Any]:
        judge, images, lr = judge_request(body)
        with lock:
            verdicts = judge.score_many(images, lr=lr)
        return {"judge": judge.spec, "verdicts": [v.to_dict() for v in verdicts], "summary": judge.summary()}

    @app.post("/judge/rank")
    def judge_rank(body: JudgeBody) -> dict[str, Any]:
        judge, images, lr = judge_request(body)
        with lock:
            ranking = judge.rank(images, lr=lr)
        return {
            "judge": judge.spec,
            "ranking": [
                {"index": item.index, "rank": item.rank, **item.verdict.to_dict()} for item in ranking.items
            ],
            "summary": judge.summary(),
        }

    @app.post("/judge/compare")
    def judge_compare(body: CompareBody) -> dict[str, Any]:
        judge = judge_for(body.protocol, body.samples, body.temperature, body.retries)
        check_calls(body, 2, body.lr is not None)
        a = _decode(body.a, "a", max_image_pixels)
        b = _decode(body.b, "b", max_image_pixels)
        lr = _decode(body.lr, "lr", max_image_pixels) if body.lr else None
        with lock:
            result = judge.compare(a, b, lr=lr)
        return {"judge": judge.spec, **result.to_dict(), "summary": judge.summary()}

    return app
