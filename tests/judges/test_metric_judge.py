"""A registered metric used as a judge: verdict, score map, provenance, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import srjudge
from srjudge.judges import create_judge


def test_metric_judge_verdict(astronaut: np.ndarray) -> None:
    judge = create_judge("psnr")
    noisy = np.clip(astronaut + np.random.default_rng(0).normal(0, 0.03, astronaut.shape), 0, 1)
    verdict = judge.score(noisy, hr=astronaut)
    assert 25 < verdict.raw < 35 and verdict.score == pytest.approx((verdict.raw - 10) / 40 * 100)
    assert verdict.provenance.version == srjudge.__version__ and len(verdict.provenance.config_hash) == 16
    payload = json.loads(json.dumps(judge.score(astronaut, hr=astronaut).to_dict()))
    assert payload["raw"] == "inf" and payload["score"] == 100.0
    assert judge.compare(astronaut, noisy, hr=astronaut).winner == "A"
    niqe = create_judge("niqe")
    assert niqe.compare(astronaut, astronaut).winner == "tie"
