"""The settings of anything that asks a VLM (judges, readers): one option schema, one check, one record.

A spec such as ``vlm:openai,model=gpt-4o,samples=3`` names its backend first; :func:`settings_from_spec`
splits its options into these settings (typed, checked) and the backend's own options (declared by
the backend's registry entry, validated by the backend).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srjudge.errors import SpecError
from srjudge.registry import did_you_mean
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.vlm.backends.base import BACKENDS
from srjudge.vlm.images import DEFAULT_MAX_SIDE

SETTINGS_OPTIONS: dict[str, tuple[Any, Any]] = {
    "samples": (int, 1),
    "temperature": (float, 0.0),
    "retries": (int, 2),
    "max_side": (int, DEFAULT_MAX_SIDE),
    "cache": (str, None),
    "prompt": (str, None),
    "rank": (Choice("bt", "copeland"), "bt"),
    "budget": (int, None),
    "fidelity_weight": (float, 0.5),
    "seed": (int, 0),
    "price_in": (float, None),
    "price_out": (float, None),
}
"""Options every VLM spec takes besides ``protocol`` and the backend's own (name -> (type, default))."""


def check_sampling(samples: int, retries: int, temperature: float) -> None:
    """Samples per item, re-asks after an unreadable answer, and temperature, or a clear error."""
    if samples < 1:
        raise SpecError(f"samples must be >= 1, got {samples}.")
    if retries < 0:
        raise SpecError(f"retries must be >= 0, got {retries}.")
    if temperature < 0:
        raise SpecError(f"temperature must be >= 0, got {temperature}.")


@dataclass(frozen=True)
class VLMSettings:
    """Everything that defines a VLM's answers (the backend's options included)."""

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
        check_sampling(self.samples, self.retries, self.temperature)
        if self.rank not in ("bt", "copeland"):
            raise SpecError(f"rank must be bt or copeland, got {self.rank!r}.")
        if not 0.0 <= self.fidelity_weight <= 1.0:
            raise SpecError(f"fidelity_weight must be in [0, 1], got {self.fidelity_weight}.")
        if self.budget is not None and self.budget < 1:
            raise SpecError(f"budget must be >= 1 model call, got {self.budget}.")

    def public(self) -> dict[str, Any]:
        """The settings as they enter provenance (no secrets: keys live only in the environment)."""
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


def settings_from_spec(
    kind: str | None, options: Mapping[str, str], *, protocol: str, what: str, role: str = "judge"
) -> VLMSettings:
    """Settings from a backend ``kind`` and a spec's options.

    ``what`` starts the error for a missing backend ("vlm judges name their backend first"); ``role``
    (judge, reader) names the spec in option errors.

    ``options`` may hold ``protocol`` (else ``protocol`` is used), the :data:`SETTINGS_OPTIONS` and the
    backend's declared options; anything else is an error with a did-you-mean hint.
    """
    name = (kind or "").lower()
    if name not in BACKENDS:
        raise SpecError(
            f"{what}: vlm:openai,model=NAME or vlm:hf,model=/path; got {kind!r}."
            f"{did_you_mean(name, BACKENDS.names())} Backends: {', '.join(BACKENDS.names())}."
        )
    backend_schema = BACKENDS.get(name).options
    own_schema = {"protocol": (str, protocol), **SETTINGS_OPTIONS}
    coerce_options(Spec("vlm", name, options), {**own_schema, **backend_schema}, kind=role)
    if "model" not in options:
        raise SpecError(f"vlm:{name} needs model=... (a model name for openai, a local folder for hf).")
    own = {k: v for k, v in options.items() if k in own_schema}
    values = coerce_options(Spec("vlm", name, own), own_schema, kind=role)
    backend_options = {k: v for k, v in options.items() if k in backend_schema}
    return VLMSettings(backend=name, backend_options=backend_options, **{"protocol": protocol, **values})
