"""Versioned prompt templates (package data under ``prompts/``), in a registry.

A template's ``id@version`` enters every cache key and verdict, so changing a prompt's text
means bumping its version: old cached answers are then never reused for the new prompt.
Users can supply their own template file (same JSON fields) with ``vlm:...,prompt=/path.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from srjudge.errors import SpecError
from srjudge.registry import Registry
from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams, Part, TextPart


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    description: str
    user: str
    system: str = ""
    user_before: str = ""
    user_between: str = ""
    retry_hint: str = ""
    schema: Mapping[str, Any] | None = None
    tags_vocabulary: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The registry name: the template's id."""
        return self.id

    @property
    def ref(self) -> str:
        """``id@version``: what enters cache keys and provenance."""
        return f"{self.id}@{self.version}"

    def render(self, **fields: str) -> str:
        """The user text with ``{placeholders}`` filled (``{tags}`` is the tag vocabulary)."""
        values = {"tags": ", ".join(self.tags_vocabulary), **fields}
        try:
            return self.user.format(**values)
        except KeyError as exc:
            raise SpecError(f"Prompt {self.ref} needs a value for {exc.args[0]!r}.") from None

    def request(
        self, parts: Sequence[Part], params: GenerationParams, *, sample: int = 0, attempt: int = 0
    ) -> ChatRequest:
        """One chat request: the system turn, the user ``parts``, the retry hint after a failed attempt.

        Sample ``k`` gets seed ``params.seed + k``; ``id@version`` (plus ``+retryN``) names the request
        in cache keys and provenance.
        """
        messages = [ChatMessage.system(self.system)] if self.system else []
        user = list(parts)
        if attempt > 0 and self.retry_hint:
            user.append(TextPart("\n" + self.retry_hint))
        messages.append(ChatMessage("user", tuple(user)))
        seed = None if params.seed is None else params.seed + sample
        return ChatRequest(
            messages=tuple(messages),
            params=replace(params, seed=seed),
            template=self.ref + (f"+retry{attempt}" if attempt else ""),
            sample_index=sample,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str) -> PromptTemplate:
        missing = [k for k in ("id", "version", "user") if k not in data]
        if missing:
            raise SpecError(f"Prompt file {source} lacks {', '.join(missing)}.")
        known = {
            "id",
            "version",
            "description",
            "user",
            "system",
            "user_before",
            "user_between",
            "retry_hint",
            "schema",
            "tags_vocabulary",
        }
        try:
            version = int(data["version"])
        except (TypeError, ValueError):
            raise SpecError(
                f"Prompt file {source}: version must be an integer, got {data['version']!r}."
            ) from None
        return cls(
            id=str(data["id"]),
            version=version,
            description=str(data.get("description", "")),
            user=str(data["user"]),
            system=str(data.get("system", "")),
            user_before=str(data.get("user_before", "")),
            user_between=str(data.get("user_between", "")),
            retry_hint=str(data.get("retry_hint", "")),
            schema=data.get("schema"),
            tags_vocabulary=tuple(data.get("tags_vocabulary") or ()),
            extra={k: v for k, v in data.items() if k not in known},
        )


PROMPTS: Registry[PromptTemplate] = Registry("prompt")


def _load_builtin() -> None:
    folder = resources.files("srjudge.vlm") / "prompts"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            template = PromptTemplate.from_dict(json.loads(entry.read_text()), source=entry.name)
            PROMPTS.add(template)


_load_builtin()


def load_prompt_file(path: str | Path) -> PromptTemplate:
    """A user's template file; errors name the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"Prompt file {p} does not exist.")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(f"Prompt file {p} is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise SpecError(f"Prompt file {p} must hold a JSON object.")
    return PromptTemplate.from_dict(data, source=str(p))
