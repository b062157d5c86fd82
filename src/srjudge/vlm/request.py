"""Backend-neutral chat requests and completions (frozen, JSON-serialisable, cache-keyable).

A request holds images as arrays plus their digest; the digest, not the pixels, enters cache keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Role = Literal["system", "user", "assistant"]


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of the 8-bit pixels and shape: identical images share cache entries."""
    data = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    h = hashlib.sha256()
    h.update(str(data.shape).encode())
    h.update(np.ascontiguousarray(data).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class TextPart:
    text: str

    def key(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class ImagePart:
    """An image in a message: canonical float RGB array; ``digest`` identifies it in cache keys."""

    image: np.ndarray = field(repr=False, compare=False)
    digest: str = ""

    @classmethod
    def of(cls, image: np.ndarray) -> ImagePart:
        return cls(image=image, digest=image_digest(image))

    def key(self) -> dict[str, Any]:
        return {"type": "image", "sha256": self.digest}


Part = TextPart | ImagePart


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, *parts: Part | str | np.ndarray) -> ChatMessage:
        return cls("user", tuple(_part(p) for p in parts))

    @classmethod
    def system(cls, text: str) -> ChatMessage:
        return cls("system", (TextPart(text),))

    @classmethod
    def assistant(cls, text: str) -> ChatMessage:
        return cls("assistant", (TextPart(text),))

    def images(self) -> list[np.ndarray]:
        return [p.image for p in self.parts if isinstance(p, ImagePart)]

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def key(self) -> dict[str, Any]:
        return {"role": self.role, "parts": [p.key() for p in self.parts]}


def _part(p: Part | str | np.ndarray) -> Part:
    if isinstance(p, str):
        return TextPart(p)
    if isinstance(p, np.ndarray):
        return ImagePart.of(p)
    return p


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. ``top_logprobs`` (0-20) asks for the alternatives at each generated position.

    ``json_schema`` constrains the answer where the backend supports it (OpenAI ``json_schema``
    response format, vLLM structured outputs); other backends ignore it and parsing is robust.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_logprobs: int | None = None
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "verdict"

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be in 0..20, got {self.top_logprobs}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def sampled(self) -> bool:
        return self.temperature > 0

    def key(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "top_logprobs": self.top_logprobs,
            "json_schema": dict(self.json_schema) if self.json_schema else None,
        }


@dataclass(frozen=True)
class ChatRequest:
    """One model call. ``sample_index`` tells repeated samples apart (K samples per item).

    ``template`` is the prompt template id and version (e.g. ``level@1``): it enters cache keys.
    """

    messages: tuple[ChatMessage, ...]
    params: GenerationParams = GenerationParams()
    template: str = ""
    sample_index: int = 0

    def images(self) -> list[np.ndarray]:
        return [img for m in self.messages for img in m.images()]

    def key(self) -> dict[str, Any]:
        return {
            "messages": [m.key() for m in self.messages],
            "params": self.params.key(),
            "template": self.template,
            "sample_index": self.sample_index,
        }


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated position: the chosen token and the top alternatives with their log-probabilities."""

    token: str
    logprob: float
    top: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top": dict(self.top)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenLogprobs:
        return cls(
            token=d["token"], logprob=float(d["logprob"]), top={k: float(v) for k, v in d["top"].items()}
        )


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one request."""

    text: str
    model: str
    finish_reason: str = "stop"
    logprobs: tuple[TokenLogprobs, ...] | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False
    retries: int = 0
    refusal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "logprobs": [t.to_dict() for t in self.logprobs] if self.logprobs is not None else None,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "latency_s": self.latency_s,
            "retries": self.retries,
            "refusal": self.refusal,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, cached: bool = False) -> Completion:
        lp = d.get("logprobs")
        usage = d.get("usage") or {}
        return cls(
            text=d["text"],
            model=d["model"],
            finish_reason=d.get("finish_reason", "stop"),
            logprobs=tuple(TokenLogprobs.from_dict(t) for t in lp) if lp is not None else None,
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            latency_s=float(d.get("latency_s", 0.0)),
            cached=cached,
            retries=int(d.get("retries", 0)),
            refusal=d.get("refusal"),
        )


def requests_key_digest(identity: Mapping[str, Any], request: ChatRequest) -> str:
    """The cache key: backend identity (backend, model, revision) plus the request's key, hashed."""
    import json

    blob = json.dumps(
        {"backend": dict(identity), "request": request.key()}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def all_images(requests: Sequence[ChatRequest]) -> list[np.ndarray]:
    return [img for r in requests for img in r.images()]
