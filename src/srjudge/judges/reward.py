"""The ``reward`` judge: a trained LR-conditioned reward model (``srjudge reward train``) as a judge.

Spec: ``reward:PATH[,device=auto,dtype=auto,batch_size=8]``. PATH is the folder ``srjudge reward
train --out`` wrote. The judge needs the LR input (``--lr``): the model reads the LR first and the
candidate second. ``raw`` is the reward (higher is better, meaningful in differences); ``score`` is
``100 * sigmoid(reward - centre)``, the centre being the mean reward on the training pairs (so 50 is
an average training candidate). The provenance names the folder's digest (backbone weights sampled,
head and record in full), so verdicts of two different models never look alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.checks import check_lr_scale
from srjudge.judges.base import Judge, Verdict
from srjudge.judges.registry import register_judge
from srjudge.provenance import Provenance, config_hash
from srjudge.spec import Spec, coerce_options


class RewardJudge(Judge):
    """Scores candidates of one LR input with a trained reward model, in batches."""

    def __init__(self, path: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 8) -> None:
        from srjudge.models.reward_net import LRConditionedRewardModel, check_model_folder, model_digest

        if batch_size < 1:
            raise SpecError(f"reward: batch_size must be >= 1, got {batch_size}")
        folder = check_model_folder(path)
        self.folder = folder
        self.digest = model_digest(folder)
        self.model = LRConditionedRewardModel.load(folder, device=device, dtype=dtype)
        self.batch_size = batch_size
        self.spec = f"reward:{path}"
        self.config: dict[str, Any] = {
            "path": str(Path(path)),
            "digest": self.digest,
            "device": device,
            "dtype": dtype,
            "prompt_version": self.model.metadata()["prompt_version"],
            "max_side": self.model.max_side,
            "reward_center": self.model.reward_center,
        }

    def provenance(self) -> Provenance:
        from srjudge import __version__

        producer = f"{self.spec}@{self.digest}"
        return Provenance(producer=producer, config_hash=config_hash(self.config), version=__version__)

    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        return self.score_many([image], lr=lr, hr=hr)[0]

    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        if lr is None:
            raise SrjudgeError(
                f"the reward judge ({self.spec}) is LR-conditioned: it needs the LR input the image was made "
                "from (--lr LR.png on the command line, lr=... in Python)"
            )
        if not images:
            return []
        for i, image in enumerate(images):
            check_lr_scale(image, lr, f"candidate {i}", "LR input")
        rewards = self.model.rewards(lr, list(images), batch_size=self.batch_size)
        centre = self.model.reward_center
        verdicts = []
        for reward in rewards:
            z = reward - centre
            score = 100.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
            verdicts.append(
                self.verdict(
                    score,
                    reward,
                    rationale=(
                        f"reward {reward:.4f} (higher is better; model {self.digest}, centre {centre:.4f}); "
                        "score = 100*sigmoid(reward - centre)"
                    ),
                    components={"reward": reward, "reward_center": centre},
                )
            )
        return verdicts


_OPTIONS = {"device": (str, "auto"), "dtype": (str, "auto"), "batch_size": (int, 8)}


@register_judge(
    "reward",
    "LR-conditioned reward model trained with `srjudge reward train` (RefReward-SR style); reward:PATH.",
    options=_OPTIONS,
    needs_lr=True,
)
def _make_reward(spec: Spec) -> Judge:
    options = coerce_options(spec, _OPTIONS, kind="judge")
    if not spec.arg:
        raise SpecError(
            "reward needs the trained model's folder: reward:PATH (e.g. reward:runs/rm,device=cpu), "
            "the --out folder of `srjudge reward train`"
        )
    return RewardJudge(spec.arg, **options)
