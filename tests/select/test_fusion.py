"""Fusion of candidates: methods, and weights from judge scores."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.select.fusion import fuse, fuse_scored, fusion_weights


def test_fusion_methods() -> None:
    a = np.full((4, 4, 3), 0.2, np.float32)
    b = np.full((4, 4, 3), 0.4, np.float32)
    c = np.full((4, 4, 3), 1.0, np.float32)
    assert fuse([a, b, c], "median")[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse([a, b, c], "mean")[0, 0, 0] == pytest.approx(1.6 / 3, abs=1 / 255)
    assert fuse([a, c], "weighted", [3, 1])[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse([a, b], "none")[0, 0, 0] == pytest.approx(0.2, abs=1 / 255)
    with pytest.raises(ValueError, match="non-negative"):
        fuse([a, b], "weighted", [1, -1])


def test_fusion_weights_from_judge_scores() -> None:
    """Scores clipped at 0 (an abstention counts 0) plus the floor; equal weights when nothing is left."""
    assert fusion_weights([60.0, -5.0, None]) == [60.0, 0.0, 0.0]
    assert fusion_weights([0.0, None]) == [1.0, 1.0]
    assert fusion_weights([0.0, 30.0], floor=1e-6) == [1e-6, 30.0 + 1e-6]
    a = np.full((4, 4, 3), 0.2, np.float32)
    c = np.full((4, 4, 3), 1.0, np.float32)
    assert fuse_scored([a, c], [75.0, 25.0], "weighted")[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse_scored([a, c], [0.0, None], "weighted")[0, 0, 0] == pytest.approx(0.6, abs=1 / 255)
    with pytest.raises(ValueError, match="scores"):
        fuse_scored([a, c], [1.0], "mean")
