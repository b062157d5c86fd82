"""The settings of a VLM judge (what defines its answers), apart from the judge so protocols can read them.

The protocol name is checked against the protocol registry when the judge is built
(:class:`~srjudge.judges.vlm.judge.VLMJudge`), which gives the did-you-mean hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srjudge.errors import SpecError
from srjudge.vlm.images import DEFAULT_MAX_SIDE


@dataclass(frozen=True)
class VLMJudgeConfig:
    """Everything that defines a VLM judge's answers (the backend's options included)."""

    backend: str
    backend_options: Mapping[str, str]
    protocol: str = "level"
    samples: int = 1
    temperature: float = 0.0
    retries: int = 2
    max_side: int = DEFAULT_MAX_SIDE
    cache: str | None = None
    prompt: str | None = None
    rank: str = "bt"
    budget: int | None = None
    fidelity_weight: float = 0.5
    seed: int = 0
    price_in: float | None = None
    price_out: float | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise SpecError(f"samples must be >= 1, got {self.samples}.")
        if self.retries < 0:
            raise SpecError(f"retries must be >= 0, got {self.retries}.")
        if self.temperature < 0:
            raise SpecError(f"temperature must be >= 0, got {self.temperature}.")
        if self.rank not in ("bt", "copeland"):
            raise SpecError(f"rank must be bt or copeland, got {self.rank!r}.")
        if not 0.0 <= self.fidelity_weight <= 1.0:
            raise SpecError(f"fidelity_weight must be in [0, 1], got {self.fidelity_weight}.")
        if self.budget is not None and self.budget < 1:
            raise SpecError(f"budget must be >= 1 model call, got {self.budget}.")

    def public(self) -> dict[str, Any]:
        """The configuration as it enters provenance (no secrets: keys live only in the environment)."""
        return {
            "backend": self.backend,
            "backend_options": dict(self.backend_options),
            "protocol": self.protocol,
            "samples": self.samples,
            "temperature": self.temperature,
            "retries": self.retries,
            "max_side": self.max_side,
            "prompt": self.prompt,
            "rank": self.rank,
            "budget": self.budget,
            "fidelity_weight": self.fidelity_weight,
            "seed": self.seed,
        }
