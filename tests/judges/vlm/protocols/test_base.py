"""VLM protocols as a registry: the built-in ones, and a new one added as one module plus its prompt.

The toy protocol below is the example of :mod:`srjudge.judges.vlm.protocols.base`'s docstring,
written as a module file in a package the registry scans; nothing else of srjudge is touched, yet
``vlm:...,protocol=sharpness`` works from the spec string through retries, abstention, accounting
and provenance, on recorded replies and on the tiny local model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import SpecError
from srjudge.judges import create_judge
from srjudge.judges.vlm import JUDGE_OPTIONS, VLMJudge, config_from_spec
from srjudge.judges.vlm.protocols import PROTOCOLS, PointwiseProtocol, VLMProtocol
from srjudge.spec import parse_spec
from srjudge.vlm.prompts import PROMPTS, PromptTemplate
from srjudge.vlm.request import ChatRequest, ImagePart, TextPart
from vlm_replay import ReplayBackend

BUILTIN = {"level", "audit", "pairwise", "lr-conditioned", "readout", "perceive-infer"}

TOY_MODULE = '''\
"""A toy protocol: is the image sharp? (yes/no, the share of yes votes is the score)."""

from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.protocols import PointwiseProtocol, register_protocol
from srjudge.vlm.request import TextPart


@register_protocol("sharpness", "Yes/no: is the image sharp?", prompts=("sharpness",))
class Sharpness(PointwiseProtocol):
    def request(self, ctx, image, lr):
        return [ctx.image(image), TextPart(ctx.template.render())]

    def parse(self, ctx, completion):
        return parsing.first_word(completion.text, ("yes", "no"))

    def verdict(self, ctx, outcome):
        if not outcome.readings:
            return ctx.abstain(outcome, "no answer could be read")
        share = outcome.readings.count("yes") / len(outcome.readings)
        return ctx.verdict(
            outcome.completions, score=100 * share, raw=share, rationale=f"{share:.2f} of samples say sharp"
        )
'''

TOY_PROMPT = {
    "id": "sharpness",
    "version": 1,
    "description": "Toy: is the image sharp?",
    "user": "Is this image sharp? Answer yes or no.",
    "retry_hint": "Answer with exactly one word: yes or no.",
}


@pytest.fixture
def toy_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Package ``toyprotocols`` holding one module, scanned by PROTOCOLS; every registry restored after."""
    package = tmp_path / "toyprotocols"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sharpness.py").write_text(TOY_MODULE)
    (tmp_path / "sharpness.json").write_text(json.dumps(TOY_PROMPT))
    monkeypatch.syspath_prepend(str(tmp_path))
    PROTOCOLS.load()
    for registry in (PROTOCOLS, PROMPTS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_aliases", dict(registry._aliases))
    # What prompts.py does for each JSON file in prompts/, and a registry that also scans the package.
    PROMPTS.add(PromptTemplate.from_dict(TOY_PROMPT, source="sharpness.json"))
    monkeypatch.setattr(PROTOCOLS, "packages", (*PROTOCOLS.packages, "toyprotocols"))
    monkeypatch.setattr(PROTOCOLS, "_loaded", False)
    try:
        yield
    finally:
        for name in [m for m in sys.modules if m == "toyprotocols" or m.startswith("toyprotocols.")]:
            del sys.modules[name]


def _type_name(typ: object) -> str:
    return str(getattr(typ, "__name__", typ))


def test_the_builtin_protocols_are_registered_with_their_prompts_and_options() -> None:
    assert set(PROTOCOLS.names()) == BUILTIN
    for entry in PROTOCOLS.entries():
        module = entry.name.replace("-", "_")
        assert entry.target.startswith(f"srjudge.judges.vlm.protocols.{module}:"), entry.target
        assert entry.description and entry.prompts
        assert all(prompt in PROMPTS for prompt in entry.prompts), entry.prompts
        assert isinstance(entry.create(), VLMProtocol)
        # A protocol's own options are options of the vlm judge, with the same type and default.
        for key, (typ, default) in entry.options.items():
            judge_type, judge_default = JUDGE_OPTIONS[key]
            assert (_type_name(typ), default) == (_type_name(judge_type), judge_default), key
        assert entry.summary()["prompts"] == list(entry.prompts)
    assert PROTOCOLS.get("perceive-infer").prompts == ("perceive", "infer")
    assert {e.name for e in PROTOCOLS.entries() if e.needs_lr} == {"lr-conditioned"}
    assert set(PROTOCOLS.get("pairwise").options) == {"rank", "budget"}


def test_the_judge_takes_needs_lr_from_its_protocol() -> None:
    def make(protocol: str) -> VLMJudge:
        config = config_from_spec(parse_spec(f"vlm:openai,model=m,protocol={protocol},cache=off"))
        return VLMJudge(config, backend=ReplayBackend(lambda r: "good"))

    assert make("lr-conditioned").needs_lr and not make("level").needs_lr and not make("readout").needs_lr


def test_an_unknown_protocol_gets_a_did_you_mean_from_the_registry() -> None:
    with pytest.raises(
        SpecError, match=r"Unknown VLM protocol 'perceive-infre'\. Did you mean: perceive-infer\?"
    ):
        create_judge("vlm:openai,model=x,protocol=perceive-infre")
    with pytest.raises(SpecError, match=r"Available: audit, level, lr-conditioned, pairwise, perceive-infer"):
        create_judge("vlm:openai,model=x,protocol=nothing-like-it")


def _answers(request: ChatRequest) -> str:
    """Bright images are sharp; a first attempt about a dark image is unreadable, its re-ask says no."""
    image = next(p for m in request.messages for p in m.parts if isinstance(p, ImagePart))
    if image.image.mean() > 0.5:
        return "Yes, it is sharp."
    return "no" if request.template.endswith("+retry1") else "I see an image."


def test_one_new_module_is_enough_for_a_protocol_end_to_end(toy_protocol: None) -> None:
    assert "toyprotocols.sharpness" not in sys.modules
    assert "sharpness" in PROTOCOLS  # the first question imports the new module
    assert PROTOCOLS.get("sharpness").target == "toyprotocols.sharpness:Sharpness"

    config = config_from_spec(parse_spec("vlm:openai,model=recorded,protocol=sharpness,samples=2,cache=off"))
    backend = ReplayBackend(_answers)
    judge = VLMJudge(config, backend=backend)
    assert isinstance(judge.protocol, PointwiseProtocol)
    bright, dark = np.full((8, 8, 3), 0.9, np.float32), np.full((8, 8, 3), 0.1, np.float32)
    sharp, blurred = judge.score_many([bright, dark])

    assert judge.spec == "vlm:openai,model=recorded,protocol=sharpness"
    assert sharp.score == 100.0 and sharp.raw == 1.0 and sharp.rationale == "1.00 of samples say sharp"
    assert blurred.score == 0.0 and blurred.accounting["calls"] == 4  # 2 samples, each re-asked once
    assert judge.config["templates"] == ["sharpness@1"]
    assert judge.summary()["calls"] == 6
    retry = next(r for r in backend.requests if r.template == "sharpness@1+retry1")
    texts = [p.text for p in retry.messages[-1].parts if isinstance(p, TextPart)]
    assert texts == [TOY_PROMPT["user"], "\n" + TOY_PROMPT["retry_hint"]]
    assert {r.params.seed for r in backend.requests} == {0, 1}  # sample k draws seed + k

    never = VLMJudge(
        config_from_spec(parse_spec("vlm:openai,model=recorded,protocol=sharpness,retries=1,cache=off")),
        backend=ReplayBackend(lambda r: "maybe"),
    )
    verdict = never.score(bright)
    assert verdict.abstained and verdict.abstain_reason is not None
    assert verdict.abstain_reason.startswith(
        "no answer could be read: 2 attempt(s) failed; last: none of yes, no"
    )

    with pytest.raises(SpecError, match="Did you mean: sharpness"):
        create_judge("vlm:openai,model=x,protocol=sharpnes")


def test_a_new_protocol_runs_on_the_tiny_local_model(toy_protocol: None, tiny_vlm: Path) -> None:
    judge = create_judge(f"vlm:hf,model={tiny_vlm},protocol=sharpness,retries=0,cache=off")
    assert isinstance(judge, VLMJudge)
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    verdict = judge.score(image)
    # Random weights say anything: a yes/no share, or an abstention that says why.
    assert verdict.score in (0.0, 100.0) or "1 attempt(s) failed" in (verdict.abstain_reason or "")
    assert verdict.accounting["calls"] == 1 and judge.stats.calls == 1
    assert verdict.provenance.producer == judge.spec
