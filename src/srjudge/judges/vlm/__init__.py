"""VLM judges: ``vlm:<backend>,model=...,protocol=...`` (see :mod:`srjudge.judges.vlm.judge`).

Examples::

    vlm:openai,model=gpt-4o,protocol=level
    vlm:openai,model=Qwen/Qwen2.5-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1,protocol=audit
    vlm:hf,model=/models/Qwen2.5-VL-3B-Instruct,device=cuda,dtype=bfloat16,protocol=pairwise,samples=3

The judge's own options are below; each backend declares the options it takes in its registry entry
(``srjudge judges`` lists both).
"""

from __future__ import annotations

from srjudge.judges.registry import register_judge
from srjudge.judges.vlm.judge import VLMJudge, VLMJudgeConfig
from srjudge.judges.vlm.protocols import PROTOCOLS
from srjudge.spec import Spec
from srjudge.vlm.settings import SETTINGS_OPTIONS, settings_from_spec

JUDGE_OPTIONS = {"protocol": (str, "level"), **SETTINGS_OPTIONS}


def config_from_spec(spec: Spec) -> VLMJudgeConfig:
    """Split a ``vlm:`` spec into judge options (typed) and backend options (validated by the backend)."""
    return settings_from_spec(
        spec.arg, spec.options, protocol="level", what="vlm judges name their backend first"
    )


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
