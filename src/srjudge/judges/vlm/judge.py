"""VLM judges: ``vlm:<backend>,model=...,protocol=...`` with the six protocols of the papers.

:class:`VLMJudge` orchestrates: it builds the backend, the completion cache and the run accounting,
picks the protocol from :data:`~srjudge.judges.vlm.protocols.PROTOCOLS` and hands it a
:class:`~srjudge.judges.vlm.protocols.ProtocolContext`. Each protocol lives in its own module of
:mod:`srjudge.judges.vlm.protocols` (``protocol=`` option):

- ``level`` (default; Q-Align): expected level from the probabilities of excellent/good/fair/
  poor/bad at the answer's first token. Continuous and stable: the default for ranking.
- ``audit`` (face-SR paper): shown the LR, the SR, face crops and a QA summary (identity, NIQE,
  LPIPS with an HR reference, trust's artifact flags); score 0-100, tags from a fixed vocabulary,
  a reason, a confidence.
- ``pairwise`` (EvoQuality, Co-Instruct): A versus B in both orders, K samples per order,
  majority vote, position consistency; ranking by a tournament within a call budget,
  aggregated by Bradley-Terry (``rank=bt``) or Copeland (``rank=copeland``).
- ``lr-conditioned`` (RefReward-SR): the LR input is the reference; fidelity and realism apart.
- ``readout`` (diffusion-SR selection paper): what text or digits the image shows; a candidate
  scores by agreement with the candidates' consensus reading and with the LR input's reading.
- ``perceive-infer`` (BIQA-reasoning paper): describe content and distortions, then infer the
  level from the description alone; contradictions between the two are flagged.

Unparseable or refused answers are retried (``retries=``, with a format reminder), then the
verdict abstains and says why. There is never a random or default score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.judges.base import CandidateSetJudge, Comparison, Verdict
from srjudge.judges.vlm.config import VLMJudgeConfig
from srjudge.judges.vlm.parsing import LEVELS
from srjudge.judges.vlm.protocols.base import PROTOCOLS, ProtocolContext, protocol_entry
from srjudge.judges.vlm.protocols.level import level_request
from srjudge.vlm.backends.base import CachedBackend, RunStats, VLMBackend, create_backend
from srjudge.vlm.cache import CompletionCache
from srjudge.vlm.images import plan_resize
from srjudge.vlm.prompts import PROMPTS, PromptTemplate, load_prompt_file

# Seeds of stability repeats are this far apart, beyond any sample index within one repeat.
REPEAT_SEED_STRIDE = 10_000


@runtime_checkable
class UsesHR(Protocol):
    """A protocol that also looks at the HR reference when one is given (``audit``: its QA summary)."""

    def score_with_hr(
        self,
        ctx: ProtocolContext,
        images: Sequence[np.ndarray],
        lr: np.ndarray | None,
        hr: np.ndarray | None,
    ) -> list[Verdict]: ...


class VLMJudge(CandidateSetJudge):
    """A judge backed by a vision-language model; see the module docstring for the protocols."""

    def __init__(self, config: VLMJudgeConfig, backend: VLMBackend | None = None) -> None:
        self.cfg = config
        self.entry = protocol_entry(config.protocol)
        self.protocol = self.entry.create()
        self.backend = (
            backend if backend is not None else create_backend(config.backend, config.backend_options)
        )
        cache = (
            None
            if (config.cache or "").lower() in ("off", "none", "false")
            else CompletionCache(config.cache)
        )
        self.stats = RunStats(price_in_per_mtok=config.price_in, price_out_per_mtok=config.price_out)
        self.client = CachedBackend(self.backend, cache, self.stats)
        main, *others = self.entry.prompts
        self.template = load_prompt_file(config.prompt) if config.prompt else PROMPTS.get(main)
        self.templates: dict[str, PromptTemplate] = {main: self.template}
        self.templates.update({name: PROMPTS.get(name) for name in others})
        self.config: dict[str, Any] = {
            **config.public(),
            "identity": self.backend.identity(),
            "templates": sorted(t.ref for t in self.templates.values()),
        }
        model = self.backend.identity()["model"]
        self.spec = f"vlm:{config.backend},model={model},protocol={config.protocol}"
        self._repeats: dict[int, VLMJudge] = {}

    def for_repeat(self, repeat: int) -> VLMJudge:
        """Repeat ``repeat`` draws from seed ``seed + REPEAT_SEED_STRIDE * repeat``; stats are shared."""
        if repeat == 0:
            return self
        if repeat not in self._repeats:
            seed = self.cfg.seed + REPEAT_SEED_STRIDE * repeat
            clone = VLMJudge(replace(self.cfg, seed=seed), self.backend)
            clone.stats = self.stats
            clone.client = CachedBackend(self.backend, clone.client.cache, self.stats)
            clone.spec = self.spec
            self._repeats[repeat] = clone
        return self._repeats[repeat]

    @property
    def needs_lr(self) -> bool:
        """True when the protocol cannot judge without the LR input (``lr-conditioned``)."""
        return self.entry.needs_lr

    def context(self) -> ProtocolContext:
        """What the protocol sees of this judge (built per call: repeats swap stats, client and spec)."""
        return ProtocolContext(
            cfg=self.cfg,
            spec=self.spec,
            config=self.config,
            backend=self.backend,
            client=self.client,
            stats=self.stats,
            template=self.template,
            templates=self.templates,
        )

    # ------------------------------------------------------------------ judging
    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        """Judge the candidates; each verdict records how its image was resized for the model."""
        if not images:
            return []
        if isinstance(self.protocol, UsesHR):
            verdicts = self.protocol.score_with_hr(self.context(), images, lr, hr)
        else:
            verdicts = self.protocol.score(self.context(), images, lr)
        return [self._with_resize_note(v, image) for v, image in zip(verdicts, images, strict=True)]

    def _with_resize_note(self, verdict: Verdict, image: np.ndarray) -> Verdict:
        record = plan_resize(image.shape[1], image.shape[0], self.cfg.max_side)
        if not record.resized:
            return verdict
        note = f" [image sent as {record.describe()}, max_side={self.cfg.max_side}]"
        return replace(verdict, rationale=verdict.rationale + note)

    def compare_directly(self, a: np.ndarray, b: np.ndarray) -> Comparison | None:
        """Asked directly where the protocol has its own comparison (pairwise), else None (by score)."""
        return self.protocol.compare(self.context(), a, b)

    # ------------------------------------------------------------------ diagnostics
    def logit_lens(self, image: np.ndarray) -> list[dict[str, float]]:
        """Level-word probabilities at every decoder layer for one image (``hf`` backend only).

        Shows whether a prediction rests on a few candidate tokens early on, as the BIQA-reasoning
        paper found.
        """
        lens = getattr(self.backend, "logit_lens", None)
        if lens is None:
            raise SrjudgeError("The logit lens reads hidden states: it needs the local 'hf' backend.")
        request = level_request(self.context(), image, PROMPTS.get("level"))
        return list(lens(request, LEVELS))

    def summary(self) -> dict[str, Any]:
        """Run summary: calls, cache hits, retries, tokens, latency and cost so far."""
        return {"judge": self.spec, **self.stats.to_dict()}


__all__ = ["PROTOCOLS", "REPEAT_SEED_STRIDE", "VLMJudge", "VLMJudgeConfig"]
