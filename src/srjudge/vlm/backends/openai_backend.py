"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint through the official SDK.

Works with OpenAI, vLLM, SGLang, Ollama, LM Studio and the llama.cpp server. Options (strings from a
backend spec, e.g. ``openai:model=gpt-4o-mini`` or ``openai:model=Qwen/Qwen2.5-VL-7B,base_url=http://localhost:8000/v1,structured=vllm``):

``model``
    Required. The model name the server knows.
``base_url``
    Default: the SDK's default, i.e. ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
``api_key_env``
    The NAME of the environment variable holding the key (default ``OPENAI_API_KEY``). Keys are read
    only from the environment, never from a spec. When the variable is unset, a server on localhost
    (``localhost``, ``127.0.0.1``, ``::1``) gets the placeholder ``EMPTY``; any other server is an error.
``concurrency``
    Requests in flight at once (default 4).
``timeout``
    Seconds per HTTP attempt (default 60).
``max_retries``
    Retries after a transient failure (default 5): 429, 408, 5xx, timeouts, connection errors.
``structured``
    How ``GenerationParams.json_schema`` is sent: ``json_schema`` (OpenAI's ``response_format``; also
    accepted by vLLM, SGLang, Ollama, LM Studio, llama.cpp), ``vllm`` (vLLM's ``structured_outputs``,
    which also marks the server as vLLM so that an assistant prefill is continued), ``none`` (schema
    not sent; answers are parsed leniently), or ``auto`` (default: ``json_schema`` on api.openai.com,
    ``none`` elsewhere, since not every local server accepts ``response_format``).

Wire differences: api.openai.com gets ``max_completion_tokens`` (``max_tokens`` is deprecated there),
other servers ``max_tokens`` (what vLLM, SGLang and Ollama document). A final assistant message is kept
as a prefill; vLLM is told to continue it (``continue_final_message``), OpenAI ignores prefills (it
answers after them as a new turn).

The API key lives only inside the SDK client: it is never logged, put in an error message, a repr,
the backend identity (cache keys) or a report; server messages are scrubbed of it.
"""

from __future__ import annotations

import email.utils
import importlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.registry import REQUIRED
from srjudge.spec import Choice
from srjudge.vlm.backends.base import BackendError, ResultCallback, VLMBackend, register_backend
from srjudge.vlm.images import data_uri
from srjudge.vlm.request import (
    ChatMessage,
    ChatRequest,
    Completion,
    ImagePart,
    TextPart,
    TokenLogprobs,
    Usage,
)

log = logging.getLogger(__name__)

StructuredMode = Literal["auto", "json_schema", "vllm", "none"]
STRUCTURED_MODES: tuple[str, ...] = ("auto", "json_schema", "vllm", "none")
OPENAI_HOST = "api.openai.com"
DEFAULT_BASE_URL = f"https://{OPENAI_HOST}/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
LOCAL_PLACEHOLDER_KEY = "EMPTY"
MAX_RETRY_AFTER_S = 60.0
"""The longest server-requested wait (Retry-After) that is honoured; longer ones are cut to this."""

_OPTIONS = {
    "model": (str, REQUIRED),
    "base_url": (str, DEFAULT_BASE_URL),
    "api_key_env": (str, DEFAULT_API_KEY_ENV),
    "concurrency": (int, 4),
    "timeout": (float, 60.0),
    "max_retries": (int, 5),
    "structured": (Choice(*STRUCTURED_MODES), "auto"),
}
_FOREIGN_OPTIONS = ("price_in", "price_out")  # read by the run accounting, not by the backend
_INTERNAL_OPTIONS = ("_http_client", "_backoff_base", "_backoff_cap")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVENTIONAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_RETRY_STATUS = frozenset({408, 429})


# --------------------------------------------------------------------------- URLs


def base_url_host(base_url: str) -> str:
    """``host[:port]`` of a base URL, without credentials: the backend's revision in cache keys."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


def _safe_url(base_url: str) -> str:
    """The base URL without user info, query or fragment (these may carry secrets)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{base_url_host(base_url)}{parts.path}"


def is_local_url(base_url: str) -> bool:
    """True for servers on this machine (localhost or a loopback address): they need no key."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_openai_url(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() == OPENAI_HOST


def resolve_structured(structured: str, *, openai_host: bool) -> Literal["json_schema", "vllm", "none"]:
    """``auto`` becomes ``json_schema`` on api.openai.com and ``none`` elsewhere."""
    if structured == "auto":
        return "json_schema" if openai_host else "none"
    if structured == "json_schema":
        return "json_schema"
    if structured == "vllm":
        return "vllm"
    if structured == "none":
        return "none"
    raise ValueError(f"structured must be one of {', '.join(STRUCTURED_MODES)}, got {structured!r}")


# --------------------------------------------------------------------------- payload


def _message_payload(message: ChatMessage) -> dict[str, Any]:
    images = [p for p in message.parts if isinstance(p, ImagePart)]
    if not images:
        return {"role": message.role, "content": message.text()}
    if message.role != "user":
        raise ValueError(f"images are only allowed in user messages, found one in a {message.role} message")
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        else:
            content.append({"type": "image_url", "image_url": {"url": data_uri(part.image)}})
    return {"role": message.role, "content": content}


def build_payload(
    request: ChatRequest, model: str, structured: str, *, openai_host: bool = False
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create`` (``extra_body`` merges into the JSON).

    ``structured`` is a mode of :data:`STRUCTURED_MODES`; ``openai_host`` says the server is
    api.openai.com (``max_completion_tokens``; ``auto`` means ``json_schema``).
    """
    mode = resolve_structured(structured, openai_host=openai_host)
    params = request.params
    payload: dict[str, Any] = {
        "model": model,
        "messages": [_message_payload(m) for m in request.messages],
        ("max_completion_tokens" if openai_host else "max_tokens"): params.max_tokens,
        "temperature": params.temperature,
    }
    if params.top_p != 1.0:
        payload["top_p"] = params.top_p
    if params.seed is not None:
        payload["seed"] = params.seed
    if params.top_logprobs is not None:
        payload["logprobs"] = True
        payload["top_logprobs"] = params.top_logprobs
    extra: dict[str, Any] = {}
    if params.json_schema is not None:
        schema = json.loads(json.dumps(params.json_schema))  # plain, JSON-safe dicts
        if mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": params.schema_name, "strict": True, "schema": schema},
            }
        elif mode == "vllm":
            extra["structured_outputs"] = {"json": schema}
    if mode == "vllm" and request.messages and request.messages[-1].role == "assistant":
        extra["continue_final_message"] = True
        extra["add_generation_prompt"] = False
    if extra:
        payload["extra_body"] = extra
    return payload


# --------------------------------------------------------------------------- parsing


def _logprobs(choice: Mapping[str, Any]) -> tuple[TokenLogprobs, ...] | None:
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, Mapping) else None
    if content is None:
        return None
    out = []
    for entry in content:
        top: dict[str, float] = {}
        for alt in entry.get("top_logprobs") or ():
            token, value = str(alt["token"]), float(alt["logprob"])
            # Two token ids can decode to the same string: their probabilities add up.
            top[token] = _logaddexp(top[token], value) if token in top else value
        out.append(TokenLogprobs(token=str(entry["token"]), logprob=float(entry["logprob"]), top=top))
    return tuple(out)


def _logaddexp(a: float, b: float) -> float:
    high, low = max(a, b), min(a, b)
    return high if low == -math.inf else high + math.log1p(math.exp(low - high))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content)


def parse_completion(response: Mapping[str, Any]) -> Completion:
    """A :class:`Completion` from a chat-completions response body (the first choice)."""
    choices = response.get("choices")
    if not choices:
        error = response.get("error")
        detail = f": {_server_message(error)}" if error else ""
        raise BackendError(f"openai backend: the response has no choices{detail}")
    choice = choices[0]
    message = choice.get("message") or {}
    usage = response.get("usage") or {}
    return Completion(
        text=_content_text(message.get("content")),
        model=str(response.get("model") or ""),
        finish_reason=str(choice.get("finish_reason") or "unknown"),
        logprobs=_logprobs(choice),
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        refusal=message.get("refusal") or None,
    )


def _server_message(body: Any, fallback: str = "") -> str:
    """The human-readable message of an error body (OpenAI, vLLM and FastAPI shapes)."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        for key in ("message", "detail", "error"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)
        return json.dumps(dict(body))[:500]
    if body:
        return str(body)[:500]
    return fallback[:500] or "(empty body)"


# --------------------------------------------------------------------------- retries


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a server asks for (``retry-after-ms``, ``retry-after`` seconds or HTTP date), if any."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(retry: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (0-based).

    The server's Retry-After when given (at most :data:`MAX_RETRY_AFTER_S`), else
    ``min(cap, base * 2**retry)`` with equal jitter (between half and all of it).
    """
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    delay = min(cap, base * (2.0**retry))
    return delay / 2.0 + random.uniform(0.0, delay / 2.0)


class _Transient(Exception):
    def __init__(self, description: str, retry_after: float | None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


# --------------------------------------------------------------------------- options


def _option_int(options: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = options.get(name, default)
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else minimum - 1
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SpecError(
            f"Option {name} of the openai backend must be an integer >= {minimum}, got {value!r}."
        )
    return number


def _option_float(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or not math.isfinite(number):
        raise SpecError(
            f"Option {name} of the openai backend must be a positive number of seconds, got {value!r}."
        )
    return number


def _read_api_key(api_key_env: str, base_url: str) -> str:
    key = os.environ.get(api_key_env)
    if key:
        return key
    if is_local_url(base_url):
        return LOCAL_PLACEHOLDER_KEY
    if _CONVENTIONAL_ENV_NAME.fullmatch(api_key_env):
        named = f"the environment variable {api_key_env}"
    else:  # it might be a key pasted by mistake: do not echo it
        named = "the environment variable named by api_key_env (name not shown: it does not look like one)"
    raise BackendError(
        f"openai backend: no API key for {base_url_host(base_url)}: {named} is not set. "
        "Export the key in that variable (api_key_env takes the variable's NAME, never the key), "
        "or point base_url at a local server, which needs no key."
    )


# --------------------------------------------------------------------------- backend


class OpenAIBackend(VLMBackend):
    """Chat completions over HTTP with bounded concurrency and retries with backoff."""

    kind = "openai"
    supports_logprobs = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        structured: str = "auto",
        http_client: Any = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
    ) -> None:
        if not model or not model.strip():
            raise SpecError("The openai backend needs a model: openai:model=NAME.")
        if structured not in STRUCTURED_MODES:
            raise SpecError(
                f"Option structured of the openai backend must be one of {', '.join(STRUCTURED_MODES)}, "
                f"got {structured!r}."
            )
        if not _ENV_NAME.fullmatch(api_key_env):
            raise SpecError(
                "Option api_key_env of the openai backend must be the NAME of an environment variable "
                "(letters, digits, underscores), not the key itself; the value given is not shown."
            )
        if concurrency < 1 or max_retries < 0 or not timeout > 0:
            raise SpecError("openai backend: concurrency must be >= 1, max_retries >= 0 and timeout > 0.")
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SpecError(
                f"Option base_url of the openai backend must be an http(s) URL such as "
                f"http://localhost:8000/v1, got {_safe_url(url)!r}."
            )
        try:
            openai = importlib.import_module("openai")
        except ImportError as exc:
            raise MissingDependencyError(
                "The openai backend needs the openai SDK: pip install 'srjudge[vlm]'"
            ) from exc
        self._model = model.strip()
        self._base_url = url
        self._host = base_url_host(url)
        self._openai_host = is_openai_url(url)
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.structured = structured
        self.mode = resolve_structured(structured, openai_host=self._openai_host)
        self.supports_json_schema = self.mode != "none"
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sdk = openai
        self._client = openai.OpenAI(
            api_key=_read_api_key(api_key_env, url),
            base_url=url,
            timeout=self.timeout,
            max_retries=0,
            http_client=http_client,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OpenAIBackend:
        """Build from spec options (strings); unknown or malformed options raise :class:`SpecError`."""
        if "api_key" in options or "key" in options:
            raise SpecError(
                "The openai backend reads API keys only from the environment: remove the key from the spec, "
                "export it, and name the variable with api_key_env=NAME (default OPENAI_API_KEY)."
            )
        known = (*_OPTIONS, *_FOREIGN_OPTIONS, *_INTERNAL_OPTIONS)
        unknown = sorted(k for k in options if k not in known)
        if unknown:  # names only: a value might be a secret
            raise SpecError(
                f"Unknown option(s) {', '.join(unknown)} for backend 'openai'. "
                f"Allowed: {', '.join(_OPTIONS)}."
            )
        model = str(options.get("model") or "").strip()
        if not model:
            raise SpecError("The openai backend needs a model: openai:model=NAME.")
        base_url = options.get("base_url")
        return cls(
            model,
            base_url=str(base_url) if base_url else None,
            api_key_env=str(options.get("api_key_env") or DEFAULT_API_KEY_ENV).strip(),
            concurrency=_option_int(options, "concurrency", 4, 1),
            timeout=_option_float(options, "timeout", 60.0),
            max_retries=_option_int(options, "max_retries", 5, 0),
            structured=str(options.get("structured", "auto")).strip().lower(),
            http_client=options.get("_http_client"),
            backoff_base=float(options.get("_backoff_base", 0.5)),
            backoff_cap=float(options.get("_backoff_cap", 20.0)),
        )

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def revision(self) -> str:
        """The server (``host[:port]``): one model name on two servers gets two cache identities."""
        return self._host

    @property
    def base_url(self) -> str:
        return _safe_url(self._base_url)

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(model={self._model!r}, base_url={self.base_url!r}, structured={self.mode!r}, "
            f"concurrency={self.concurrency}, timeout={self.timeout}, max_retries={self.max_retries})"
        )

    def close(self) -> None:
        self._client.close()

    # -- calls

    def complete(
        self, requests: Sequence[ChatRequest], on_result: ResultCallback | None = None
    ) -> list[Completion]:
        """One completion per request, in order, at most ``concurrency`` in flight.

        ``on_result(index, completion)`` is called as each answer arrives (from worker threads),
        so that answers already paid for are kept even if a later request fails.
        """
        if not requests:
            return []

        def one(index: int) -> Completion:
            completion = self._complete_one(requests[index])
            if on_result is not None:
                on_result(index, completion)
            return completion

        if len(requests) == 1 or self.concurrency == 1:
            return [one(i) for i in range(len(requests))]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures: list[Future[Completion]] = [pool.submit(one, i) for i in range(len(requests))]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:  # do not pay for calls whose batch has already failed
                    f.cancel()
                raise

    def _complete_one(self, request: ChatRequest) -> Completion:
        try:
            payload = build_payload(request, self._model, self.mode, openai_host=self._openai_host)
        except ValueError as exc:
            raise BackendError(f"openai backend: {exc}") from None
        start = time.perf_counter()
        retries = 0
        while True:
            try:
                body = self._attempt(payload)
                break
            except _Transient as transient:
                if retries >= self.max_retries:
                    raise BackendError(
                        f"openai backend: {transient.description} from {self._host} (model {self._model!r}); "
                        f"gave up after {retries} retries ({retries + 1} attempts)."
                    ) from None
                delay = backoff_delay(
                    retries, base=self._backoff_base, cap=self._backoff_cap, retry_after=transient.retry_after
                )
                retries += 1
                log.info(
                    "openai backend: %s from %s; retry %d of %d in %.2f s",
                    transient.description,
                    self._host,
                    retries,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        completion = parse_completion(body)
        return replace(
            completion,
            model=completion.model or self._model,
            latency_s=time.perf_counter() - start,
            retries=retries,
        )

    def _attempt(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """One HTTP call: the response body, :class:`_Transient` to retry, :class:`BackendError` to stop."""
        sdk = self._sdk
        try:
            raw = self._client.chat.completions.with_raw_response.create(**payload)
        except sdk.APIStatusError as exc:
            status = int(exc.status_code)
            message = self._scrub(_server_message(exc.body, _response_text(exc.response)))
            if status in _RETRY_STATUS or status >= 500:
                raise _Transient(
                    f"HTTP {status}: {message}", retry_after_seconds(exc.response.headers)
                ) from None
            hint = f" Check the key in ${self.api_key_env}." if status in (401, 403) else ""
            raise BackendError(
                f"openai backend: HTTP {status} from {self._host} (model {self._model!r}): {message}{hint}"
            ) from None
        except sdk.APITimeoutError:
            raise _Transient(f"timeout after {self.timeout:g} s", None) from None
        except sdk.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "connection error"
            raise _Transient(f"connection failed ({cause})", None) from None
        try:
            body = json.loads(raw.text)
        except ValueError:
            raise BackendError(
                f"openai backend: {self._host} answered with a body that is not JSON: "
                f"{self._scrub(raw.text[:200])!r}"
            ) from None
        if not isinstance(body, dict):
            raise BackendError(f"openai backend: {self._host} answered with JSON that is not an object.")
        return body

    def _scrub(self, text: str) -> str:
        key = str(getattr(self._client, "api_key", "") or "")
        return text.replace(key, "***") if len(key) >= 6 else text


def _response_text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a streamed or unread body
        return ""


@register_backend(
    "openai",
    "Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, SGLang); the key comes from the environment.",
    options=_OPTIONS,
)
def _factory(options: Mapping[str, Any]) -> VLMBackend:
    return OpenAIBackend.from_options(options)
