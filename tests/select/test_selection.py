"""select_best: a trustworthy sample is chosen among stochastic samples, and fused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import q8
from srjudge.errors import SizeMismatchError, SrjudgeError
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.select.selection import select_best


def _stochastic_samples(hr: np.ndarray, lr: np.ndarray, n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    detail = hr - imresize(imresize(hr, 0.25), output_shape=hr.shape[:2])
    base = imresize(lr, output_shape=hr.shape[:2])
    out = [q8(base + detail * rng.uniform(0.6, 1.0) + rng.normal(0, 0.01, hr.shape)) for _ in range(n)]
    bad = out[2].copy()
    bad[100:160, 100:160] = np.rot90(bad[100:160, 100:160])
    out[2] = q8(bad)
    return out


def test_select_chooses_a_trustworthy_sample_and_fusion_validates(astronaut: np.ndarray) -> None:
    lr = q8(imresize(astronaut, 0.25))
    samples = _stochastic_samples(astronaut, lr)
    selection = select_best(samples, [f"s{i}" for i in range(6)], create_judge("trust"), lr=lr, top_k=3)
    assert selection.chosen != 2 and 2 not in selection.top_k  # the hallucinated sample is never picked
    assert len(selection.top_k) == 3 and selection.fused.shape == astronaut.shape
    # The fused image of the top 3 is at least as trustworthy (TWS vs the LR) as the worst candidate.
    assert selection.tws_fused >= min(selection.tws_candidates)
    payload = json.loads(json.dumps(selection.to_dict()))
    assert payload["schema"] == "srjudge.selection/2" and payload["ranking"]["schema"] == "srjudge.ranking/1"
    assert payload["chosen"]["path"] == f"s{selection.chosen}"
    with pytest.raises(SizeMismatchError, match="same size"):
        select_best([samples[0], samples[1][:, :200]], ["a", "b"], create_judge("trust"), lr=lr)
    with pytest.raises(SrjudgeError, match="--fuse"):
        select_best(samples, [f"s{i}" for i in range(6)], create_judge("trust"), lr=lr, fuse_method="max")
