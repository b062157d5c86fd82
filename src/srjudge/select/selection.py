"""Selecting the most trustworthy candidate and fusing the best few, validated by TWS.

The judge ranks the candidates of one LR input; the best is chosen; the top k (abstentions
excluded) are fused; and, as the diffusion-SR selection paper does, the Trustworthiness Score of
the fused image is reported next to each candidate's as a check of the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.judges.base import Judge, check_candidates
from srjudge.judges.tws import TWSJudge
from srjudge.select.files import RankResult, rank_images
from srjudge.select.fusion import FUSE_METHODS, FuseMethod, fuse_scored

SELECTION_SCHEMA = "srjudge.selection/2"
"""Version 2: TWS values are 0-100 (version 1 wrote 0-1)."""


@dataclass(frozen=True)
class Selection:
    """What ``select`` decided for one LR input."""

    result: RankResult
    chosen: int
    top_k: tuple[int, ...]
    fuse_method: str
    fused: np.ndarray
    tws_candidates: tuple[float, ...]
    tws_fused: float
    tws_judge: str

    def to_dict(self) -> dict[str, Any]:
        ranking = self.result.to_dict()
        return {
            "schema": SELECTION_SCHEMA,
            "chosen": {"index": self.chosen, "path": self.result.paths[self.chosen]},
            "top_k": [{"index": i, "path": self.result.paths[i]} for i in self.top_k],
            "why": self.result.ranking.why_first(),
            "fuse": self.fuse_method,
            "validation": {
                "judge": self.tws_judge,
                "scale": "0-100",
                "fused_tws": round(self.tws_fused, 6),
                "candidates_tws": {
                    self.result.paths[i]: round(t, 6) for i, t in enumerate(self.tws_candidates)
                },
                "fused_beats_chosen": self.tws_fused >= self.tws_candidates[self.chosen],
            },
            "ranking": ranking,
        }


def select_best(
    images: Sequence[np.ndarray],
    names: Sequence[str],
    judge: Judge,
    *,
    lr: np.ndarray | None,
    hr: np.ndarray | None = None,
    top_k: int = 3,
    fuse_method: str = "median",
    tws: TWSJudge | None = None,
    lr_name: str | None = None,
    hr_name: str | None = None,
) -> Selection:
    """Rank, choose, fuse the top k and validate with TWS (reference: HR if given, else the LR)."""
    if fuse_method not in FUSE_METHODS:
        raise SrjudgeError(f"--fuse {fuse_method!r} is not one of {', '.join(FUSE_METHODS)}.")
    if top_k < 1:
        raise SrjudgeError(f"--top-k must be at least 1, got {top_k}.")
    check_candidates(images, names)
    result = rank_images(images, names, judge, lr=lr, hr=hr, lr_name=lr_name, hr_name=hr_name)
    judged = [item for item in result.ranking.items if not item.verdict.abstained]
    if not judged:
        reasons = {item.verdict.abstain_reason for item in result.ranking.items}
        raise SrjudgeError(
            f"The judge abstained on every candidate ({'; '.join(sorted(r or '' for r in reasons))})."
        )
    top = tuple(item.index for item in judged[:top_k])
    method = cast(FuseMethod, "none" if len(top) == 1 else fuse_method)
    # a tiny floor keeps a zero-scored member in a weighted fusion (and the weights' sum positive)
    fused = fuse_scored(
        [images[i] for i in top], [item.verdict.score for item in judged[: len(top)]], method, floor=1e-6
    )
    validator = tws or TWSJudge()
    scores = validator.score_many([*images, fused], lr=lr, hr=hr)
    # TWS on the same 0-100 scale as every score (the testbed and bench use it so too).
    values = [float(v.score) if v.score is not None else float("nan") for v in scores]
    return Selection(
        result=result,
        chosen=top[0],
        top_k=top,
        fuse_method=fuse_method,
        fused=fused,
        tws_candidates=tuple(values[:-1]),
        tws_fused=values[-1],
        tws_judge=validator.spec,
    )
