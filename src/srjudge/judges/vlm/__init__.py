"""VLM judges: ``vlm:<backend>,model=...,protocol=...`` (see :mod:`srjudge.judges.vlm.judge`).

Examples::

    vlm:openai,model=gpt-4o,protocol=level
    vlm:openai,model=Qwen/Qwen2.5-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1,protocol=audit
    vlm:hf,model=/models/Qwen2.5-VL-3B-Instruct,device=cuda,dtype=bfloat16,protocol=pairwise,samples=3
"""

from __future__ import annotations

from srjudge.errors import SpecError
from srjudge.judges.registry import register_judge
from srjudge.judges.vlm.judge import PROTOCOLS, VLMJudge, VLMJudgeConfig
from srjudge.spec import Spec, coerce_options

JUDGE_OPTIONS: dict[str, type] = {
    "protocol": str,
    "samples": int,
    "temperature": float,
    "retries": int,
    "max_side": int,
    "cache": str,
    "prompt": str,
    "rank": str,
    "budget": int,
    "fidelity_weight": float,
    "seed": int,
    "price_in": float,
    "price_out": float,
}
BACKEND_OPTIONS: dict[str, tuple[str, ...]] = {
    "openai": ("model", "base_url", "api_key_env", "concurrency", "timeout", "max_retries", "structured"),
    "hf": ("model", "device", "dtype", "batch_size"),
}


def config_from_spec(spec: Spec) -> VLMJudgeConfig:
    """Split a ``vlm:`` spec into judge options (typed) and backend options (validated by the backend)."""
    kind = (spec.arg or "").lower()
    if kind not in BACKEND_OPTIONS:
        raise SpecError(
            "vlm judges name their backend first: vlm:openai,model=... or vlm:hf,model=/path; "
            f"got {spec.arg!r}."
        )
    allowed = set(JUDGE_OPTIONS) | set(BACKEND_OPTIONS[kind])
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        import difflib

        hints = [
            f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, allowed, n=1)) else u
            for u in unknown
        ]
        raise SpecError(
            f"Unknown option(s) {', '.join(hints)} for vlm:{kind}. Allowed: {', '.join(sorted(allowed))}."
        )
    if "model" not in spec.options:
        raise SpecError(f"vlm:{kind} needs model=... (a model name for openai, a local folder for hf).")
    judge_part = Spec(spec.name, None, {k: v for k, v in spec.options.items() if k in JUDGE_OPTIONS})
    options = coerce_options(judge_part, JUDGE_OPTIONS, kind="judge")
    backend_options = {k: v for k, v in spec.options.items() if k in BACKEND_OPTIONS[kind]}
    return VLMJudgeConfig(backend=kind, backend_options=backend_options, **options)


@register_judge(
    "vlm",
    "A vision-language model as judge (openai-compatible endpoint or local transformers); protocols: "
    + ", ".join(PROTOCOLS)
    + ".",
)
def _make_vlm(spec: Spec) -> VLMJudge:
    return VLMJudge(config_from_spec(spec))


__all__ = ["PROTOCOLS", "VLMJudge", "VLMJudgeConfig", "config_from_spec"]
