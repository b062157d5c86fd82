"""VLM judges: ``vlm:<backend>,model=...,protocol=...`` (see :mod:`srjudge.judges.vlm.judge`).

Examples::

    vlm:openai,model=gpt-4o,protocol=level
    vlm:openai,model=Qwen/Qwen2.5-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1,protocol=audit
    vlm:hf,model=/models/Qwen2.5-VL-3B-Instruct,device=cuda,dtype=bfloat16,protocol=pairwise,samples=3

The judge's own options are below; each backend declares the options it takes in its registry entry
(``srjudge judges`` lists both).
"""

from __future__ import annotations

from srjudge.errors import SpecError
from srjudge.judges.registry import register_judge
from srjudge.judges.vlm.judge import VLMJudge, VLMJudgeConfig
from srjudge.judges.vlm.protocols import PROTOCOLS
from srjudge.registry import did_you_mean
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.vlm.backends import BACKENDS
from srjudge.vlm.images import DEFAULT_MAX_SIDE

JUDGE_OPTIONS = {
    "protocol": (str, "level"),
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


def config_from_spec(spec: Spec) -> VLMJudgeConfig:
    """Split a ``vlm:`` spec into judge options (typed) and backend options (validated by the backend)."""
    kind = (spec.arg or "").lower()
    if kind not in BACKENDS:
        raise SpecError(
            "vlm judges name their backend first: vlm:openai,model=... or vlm:hf,model=/path; "
            f"got {spec.arg!r}.{did_you_mean(kind, BACKENDS.names())} "
            f"Backends: {', '.join(BACKENDS.names())}."
        )
    backend_schema = BACKENDS.get(kind).options
    coerce_options(spec, {**JUDGE_OPTIONS, **backend_schema}, kind="judge")  # unknown options
    if "model" not in spec.options:
        raise SpecError(f"vlm:{kind} needs model=... (a model name for openai, a local folder for hf).")
    judge_part = Spec(spec.name, None, {k: v for k, v in spec.options.items() if k in JUDGE_OPTIONS})
    options = coerce_options(judge_part, JUDGE_OPTIONS, kind="judge")
    backend_options = {k: v for k, v in spec.options.items() if k in backend_schema}
    return VLMJudgeConfig(backend=kind, backend_options=backend_options, **options)


@register_judge(
    "vlm",
    "A vision-language model as judge (openai-compatible endpoint or local transformers); protocols: "
    + ", ".join(PROTOCOLS.names())
    + ".",
    options=JUDGE_OPTIONS,
)
def _make_vlm(spec: Spec) -> VLMJudge:
    return VLMJudge(config_from_spec(spec))


__all__ = ["PROTOCOLS", "VLMJudge", "VLMJudgeConfig", "config_from_spec"]
