"""Request limits of ``srjudge serve`` that must hold before the model (or the JSON parser) runs.

- :class:`RequestGuard`: an ASGI middleware that refuses a ``Host`` outside the allowed names
  (DNS rebinding: a web page that rebinds its own name to 127.0.0.1 would otherwise reach the
  model) and counts the body bytes actually received, chunked bodies included, answering 413
  as soon as the count passes the limit instead of reading the rest.
- :func:`worst_case_model_calls`: what one judge request may cost in model calls, computed up
  front from the protocol, the number of images, samples, retries and budget.
- :func:`finite_json`: validation errors echo the input; JSON has no NaN or infinity, so
  non-finite numbers are written as strings (and long strings are shortened).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

DEFAULT_MAX_PROMPT_CHARS = 8_000
"""Characters of text, over all messages, one chat completion request may carry."""

DEFAULT_MAX_MODEL_CALLS = 256
"""Model calls (samples x retries included) one judge request may make at most."""

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Host names accepted without configuration (with any port)."""

ALLOWED_HOSTS_ENV = "SRJUDGE_SERVE_ALLOWED_HOSTS"
"""Comma-separated host names accepted in ``Host`` (``*`` accepts any), when the app is not told."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _normalise_host(name: str) -> str:
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


def host_name(header: str) -> str | None:
    """The name part of a ``Host`` header (port dropped, IPv6 brackets removed); None when malformed."""
    header = header.strip().lower()
    if not header:
        return None
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[1:end], header[end + 1 :]
    elif header.count(":") == 1:
        name, rest = header.split(":", 1)
        rest = ":" + rest
    elif ":" in header:
        return None  # a bare IPv6 address: Host must bracket it
    else:
        name, rest = header, ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name or None


def resolve_allowed_hosts(allowed_hosts: Iterable[str] | None, token: str | None) -> frozenset[str] | None:
    """The host names to accept; None means any.

    Given explicitly (or in ``SRJUDGE_SERVE_ALLOWED_HOSTS``), the list is used as is, token or not
    (``*`` accepts any). Otherwise a server without a token accepts only loopback names, and a server
    with a token accepts any name: the token, which a browser never adds on its own, guards it.
    """
    if allowed_hosts is None:
        env = os.environ.get(ALLOWED_HOSTS_ENV, "").strip()
        if env:
            allowed_hosts = [h for h in env.split(",") if h.strip()]
        elif token:
            return None
        else:
            allowed_hosts = LOOPBACK_HOSTS
    names = frozenset(_normalise_host(h) for h in allowed_hosts)
    return None if "*" in names else names


class BodyTooLarge(Exception):
    """Raised inside the app's ``receive`` once the body passes the limit."""


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Host check and a body limit counted on the bytes received (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None:
            raw = headers.get("host", "")
            name = host_name(raw)
            if name is None or name not in self.allowed_hosts:
                shown = raw[:100] or "(none)"
                await _answer(
                    send,
                    421,
                    f"Host {shown!r} is not served here; allowed: {', '.join(sorted(self.allowed_hosts))} "
                    f"(any port). Set {ALLOWED_HOSTS_ENV} to allow other names.",
                )
                return
        limit = self.max_body_bytes
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, f"request body of {int(declared):,} bytes is above {limit:,}.")
            return

        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's own answer to the aborted body (a 400 or 500) is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _answer(
                send, 413, f"request body is above {limit:,} bytes (stopped reading after {received:,})."
            )


def worst_case_model_calls(
    protocol: str, images: int, *, samples: int, retries: int, has_lr: bool = False, budget: int | None = None
) -> int:
    """The most model calls a judge request can make: every sample of every prompt retried to the end.

    Mirrors :class:`srjudge.judges.vlm.VLMJudge`: pointwise protocols ask once per image and sample;
    ``readout`` also reads the LR input; ``perceive-infer`` describes each image once, then asks the
    level ``samples`` times; ``pairwise`` asks both orders of each pair (all pairs, or as many as the
    budget buys) ``samples`` times.
    """
    attempts = retries + 1
    if protocol == "pairwise":
        if images < 2:
            return 0
        pairs = images * (images - 1) // 2
        if budget is not None:
            pairs = min(pairs, budget // (2 * samples))
        return 2 * pairs * samples * attempts
    if protocol == "readout":
        return (images + int(has_lr)) * samples * attempts
    if protocol == "perceive-infer":
        return images * attempts + images * samples * attempts
    return images * samples * attempts


def finite_json(value: Any, *, max_string: int = 200) -> Any:
    """``value`` with non-finite floats as strings ('nan', 'inf') and long strings shortened."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= max_string else value[:max_string] + f"... ({len(value):,} characters)"
    if isinstance(value, bytes):
        return finite_json(value.decode("utf-8", "replace"), max_string=max_string)
    if isinstance(value, dict):
        return {str(k): finite_json(v, max_string=max_string) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v, max_string=max_string) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return finite_json(str(value), max_string=max_string)
