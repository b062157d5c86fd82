"""The backend interface, the backend registry, run accounting and the caching wrapper."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from srjudge.errors import SrjudgeError
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.vlm.cache import CompletionCache
from srjudge.vlm.request import ChatRequest, Completion, TokenLogprobs, requests_key_digest


class BackendError(SrjudgeError):
    """A model call failed for good (bad credentials, bad request, model missing, retries exhausted)."""


ResultCallback = Callable[[int, Completion], None]
"""Called with (request index, completion) as each answer arrives."""


class VLMBackend(ABC):
    """Turns chat requests into completions. Subclasses implement :meth:`complete`.

    ``complete`` returns one completion per request, in order; it handles its own batching,
    concurrency and transient-error retries, and raises :class:`BackendError` for permanent ones.
    It calls ``on_result`` as each answer (or batch of answers) arrives, so that callers can
    persist what is already paid for before a later request fails.
    """

    kind: str = ""
    supports_json_schema: bool = False
    supports_logprobs: bool = False

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model's name or local path, as it enters cache keys and provenance."""

    @property
    def revision(self) -> str:
        """A version of the weights (commit hash, file digest) when known; enters cache keys."""
        return ""

    def identity(self) -> dict[str, str]:
        return {"backend": self.kind, "model": self.model_id, "revision": self.revision}

    @abstractmethod
    def complete(
        self, requests: Sequence[ChatRequest], on_result: ResultCallback | None = None
    ) -> list[Completion]:
        """One completion per request, in order."""

    has_logits: bool = False
    """Whether :meth:`next_token_logprobs` reads the model's logits directly (local backends)."""

    def next_token_logprobs(
        self, requests: Sequence[ChatRequest], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """Per request, ``{candidate: log p(first token of candidate)}``; only where ``has_logits``."""
        raise BackendError(f"The {self.kind} backend has no direct access to logits.")

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections or models."""


@dataclass
class RunStats:
    """Calls, cache hits, retries, tokens, latency and cost over a run (thread-safe)."""

    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, completion: Completion) -> None:
        with self._lock:
            if completion.cached:
                self.cache_hits += 1
                return
            self.calls += 1
            self.retries += completion.retries
            self.prompt_tokens += completion.usage.prompt_tokens
            self.completion_tokens += completion.usage.completion_tokens
            self.latency_s += completion.latency_s

    def cost(self, completion: Completion | None = None) -> float | None:
        """USD cost from the prices the user set (per million tokens); None when no price is known."""
        if self.price_in_per_mtok is None or self.price_out_per_mtok is None:
            return None
        if completion is not None:
            if completion.cached:
                return 0.0
            p, c = completion.usage.prompt_tokens, completion.usage.completion_tokens
        else:
            p, c = self.prompt_tokens, self.completion_tokens
        return (p * self.price_in_per_mtok + c * self.price_out_per_mtok) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": round(self.latency_s, 4),
            "cost_usd": self.cost(),
        }


class CachedBackend:
    """A backend behind the persistent cache, with accounting: what is cached is never asked again."""

    def __init__(
        self, backend: VLMBackend, cache: CompletionCache | None, stats: RunStats | None = None
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.stats = stats or RunStats()

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        identity = self.backend.identity()
        keys = [requests_key_digest(identity, r) for r in requests]
        results: list[Completion | None] = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, c in enumerate(results) if c is None]
        if missing:

            def store(position: int, completion: Completion) -> None:
                i = missing[position]
                results[i] = completion
                self._remember(keys[i], completion, identity, requests[i].template)

            fresh = self.backend.complete([requests[i] for i in missing], on_result=store)
            if len(fresh) != len(missing):
                raise BackendError(
                    f"backend {self.backend.kind} returned {len(fresh)} completions for {len(missing)}"
                )
            for position, completion in enumerate(fresh):
                if results[missing[position]] is None:  # a backend that did not call on_result
                    store(position, completion)
        out = [c for c in results if c is not None]
        for completion in out:
            self.stats.record(completion)
        return out

    def _remember(self, key: str, completion: Completion, identity: Mapping[str, str], template: str) -> None:
        if self.cache is not None:
            self.cache.put(
                key, completion, backend=identity["backend"], model=identity["model"], template=template
            )

    def next_token_distribution(
        self, requests: Sequence[ChatRequest], words: Sequence[str]
    ) -> list[Completion]:
        """Log-probabilities of the first token of each word at the answer's first position, cached.

        Backends with direct access to logits (``hf``) compute them over the full vocabulary;
        HTTP backends answer one token with ``top_logprobs`` and the words are looked up there.
        The result is a Completion whose single ``logprobs`` entry holds ``top``: word or token
        -> log-probability.
        """
        if not self.backend.has_logits:
            return self.complete(requests)
        direct = self.backend.next_token_logprobs
        identity = self.backend.identity()
        suffix = "#next:" + ",".join(words)
        keyed = [replace(r, template=r.template + suffix) for r in requests]
        keys = [requests_key_digest(identity, r) for r in keyed]
        results: list[Completion | None] = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, c in enumerate(results) if c is None]
        if missing:
            started = time.perf_counter()
            dists = direct([requests[i] for i in missing], words)
            latency = (time.perf_counter() - started) / len(missing)
            for i, dist in zip(missing, dists, strict=True):
                completion = Completion(
                    text="",
                    model=identity["model"],
                    logprobs=(TokenLogprobs(token="", logprob=0.0, top=dict(dist)),),
                    latency_s=latency,
                )
                results[i] = completion
                self._remember(keys[i], completion, identity, keyed[i].template)
        out = [c for c in results if c is not None]
        for completion in out:
            self.stats.record(completion)
        return out


BackendFactory = Callable[[Mapping[str, Any]], VLMBackend]


@dataclass(frozen=True, kw_only=True)
class BackendEntry(Entry):
    """A registered VLM backend: ``factory(options) -> VLMBackend``; it validates its own options."""


BACKENDS: Registry[BackendEntry] = Registry(
    "VLM backend", packages=("srjudge.vlm.backends",), entry_type=BackendEntry
)


def register_backend(
    name: str, description: str, *, options: OptionSchema
) -> Callable[[BackendFactory], BackendFactory]:
    """Register a factory ``f(options) -> VLMBackend`` under ``name``, with the options it takes."""
    return BACKENDS.register(name, description, options=options)


def create_backend(kind: str, options: Mapping[str, Any]) -> VLMBackend:
    """Build a backend by kind (``openai`` or ``hf``) from its options; heavy stacks load when built."""
    backend: VLMBackend = BACKENDS.get(kind).factory(options)
    return backend
