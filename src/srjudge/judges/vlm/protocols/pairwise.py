"""``pairwise`` (EvoQuality, Co-Instruct): A versus B in both orders, K samples per order.

Votes are a majority over both orders; position consistency is the share of sample pairs whose two
orders agree. ``score_many`` ranks the candidates by a tournament within a call budget
(``budget=``), aggregated by Bradley-Terry (``rank=bt``) or Copeland (``rank=copeland``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.judges.base import Comparison, Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.aggregate import bradley_terry, copeland, strength_to_score, tournament_pairs
from srjudge.judges.vlm.parsing import PREFERENCES
from srjudge.judges.vlm.protocols.base import Outcome, ProtocolContext, VLMProtocol, register_protocol
from srjudge.spec import Choice
from srjudge.vlm.request import Completion, TextPart


def pair_outcomes(
    ctx: ProtocolContext, images: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]
) -> list[Outcome]:
    """For each pair, both orders: index 2p is (i, j), 2p + 1 is (j, i); readings are raw words."""
    template = ctx.template
    params = ctx.params(max_tokens=8)
    parts = [ctx.image(img) for img in images]
    builders = []
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            builders.append(
                ctx.builder(
                    template,
                    [
                        TextPart(template.user_before),
                        parts[a],
                        TextPart(template.user_between),
                        parts[b],
                        TextPart(template.render()),
                    ],
                    params,
                )
            )
    return ctx.run(builders, lambda c: parsing.first_word(c.text, PREFERENCES))


def votes(forward: Outcome, backward: Outcome) -> tuple[dict[str, int], float | None]:
    """Votes for the first-listed item A (forward order) and the position consistency."""
    tally = {"A": 0, "B": 0, "tie": 0}
    for word in forward.readings:
        tally[{"first": "A", "second": "B", "tie": "tie"}[word]] += 1
    for word in backward.readings:
        tally[{"first": "B", "second": "A", "tie": "tie"}[word]] += 1
    pairs = min(len(forward.readings), len(backward.readings))
    if pairs == 0:
        return tally, None
    agree = 0
    for f, b in zip(forward.readings, backward.readings, strict=False):
        mapped = {"first": "second", "second": "first", "tie": "tie"}[b]
        agree += f == mapped
    return tally, agree / pairs


@register_protocol(
    "pairwise",
    "EvoQuality, Co-Instruct: A versus B in both orders, majority vote, position consistency; "
    "a tournament within a call budget ranks a set (Bradley-Terry or Copeland).",
    prompts=("pairwise",),
    options={"rank": (Choice("bt", "copeland"), "bt"), "budget": (int, None)},
)
class PairwiseProtocol(VLMProtocol):
    def compare(self, ctx: ProtocolContext, a: np.ndarray, b: np.ndarray) -> Comparison:
        forward, backward = pair_outcomes(ctx, [a, b], [(0, 1)])
        tally, consistency = votes(forward, backward)
        total = sum(tally.values())
        completions = [*forward.completions, *backward.completions]

        def side(share: float | None, label: str) -> Verdict:
            return ctx.verdict(
                completions,
                score=None if share is None else 100.0 * share,
                raw=share,
                rationale=f"{label}: votes {tally}",
                abstain_reason=None if share is not None else "no preference could be read",
            )

        if total == 0:
            reason = (forward.errors + backward.errors or ["no answer"])[-1]
            return Comparison(
                "tie",
                side(None, "A"),
                side(None, "B"),
                0.0,
                tally,
                None,
                abstain_reason=f"no vote could be read: {reason}",
            )
        share_a = (tally["A"] + 0.5 * tally["tie"]) / total
        winner = (
            "A"
            if tally["A"] > tally["B"] and tally["A"] > tally["tie"]
            else ("B" if tally["B"] > tally["A"] and tally["B"] > tally["tie"] else "tie")
        )
        return Comparison(
            winner,  # type: ignore[arg-type]
            side(share_a, "A"),
            side(1.0 - share_a, "B"),
            margin=100.0 * (2 * share_a - 1.0),
            votes=tally,
            position_consistency=consistency,
        )

    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        cfg = ctx.cfg
        n = len(images)
        if n == 1:
            raise SrjudgeError("The pairwise protocol needs at least two candidates to compare.")
        calls_per_pair = 2 * cfg.samples
        all_pairs = n * (n - 1) // 2
        budget_pairs = all_pairs if cfg.budget is None else cfg.budget // calls_per_pair
        try:
            pairs = tournament_pairs(n, budget_pairs, seed=cfg.seed)
        except ValueError:
            raise SpecError(
                f"budget={cfg.budget} model calls cannot rank {n} candidates: each pair costs "
                f"{calls_per_pair} calls (both orders x {cfg.samples} samples); give at least "
                f"{math.ceil(n / 2) * calls_per_pair}."
            ) from None
        outcomes = pair_outcomes(ctx, images, pairs)
        results: list[tuple[int, int, float]] = []
        consistency: list[float] = []
        spent: list[list[Completion]] = [[] for _ in range(n)]
        for p, (i, j) in enumerate(pairs):
            forward, backward = outcomes[2 * p], outcomes[2 * p + 1]
            tally, cons = votes(forward, backward)
            for c in (*forward.completions, *backward.completions):
                spent[i].append(c)
                spent[j].append(c)
            results += [(i, j, 1.0)] * tally["A"] + [(i, j, 0.0)] * tally["B"] + [(i, j, 0.5)] * tally["tie"]
            if cons is not None:
                consistency.append(cons)
        if not results:
            reason = next((o.errors[-1] for o in outcomes if o.errors), "no answer")
            return [ctx.abstain(Outcome(errors=[reason]), "no pairwise vote could be read") for _ in images]
        if cfg.rank == "bt":
            strengths = bradley_terry(n, results)
            scores = strength_to_score(strengths)
            raws = strengths
        else:
            raws = copeland(n, results)
            scores = [100.0 * r for r in raws]
        games = Counter(x for i, j, _ in results for x in (i, j))
        wins: dict[int, float] = dict.fromkeys(range(n), 0.0)
        for i, j, w in results:
            wins[i] += w
            wins[j] += 1.0 - w
        mean_consistency = float(np.mean(consistency)) if consistency else None
        shown = mean_consistency if mean_consistency is not None else "n/a"
        return [
            ctx.verdict(
                # Each pair's calls are shared by its two candidates; the run summary counts them once.
                spent[k],
                score=scores[k],
                raw=raws[k],
                confidence=mean_consistency,
                rationale=(
                    f"{cfg.rank} over {len(pairs)} pairs: {wins[k]:.1f} wins in {games[k]} votes; "
                    f"position consistency {shown}"
                ),
                components={"wins": float(wins[k]), "votes": float(games[k]), "pairs": float(len(pairs))},
            )
            for k in range(n)
        ]
