"""The lr-conditioned protocol on recorded replies: the LR is shown first, fidelity and realism combined."""

from __future__ import annotations

from pathlib import Path

import pytest

from srjudge.errors import SrjudgeError
from srjudge.vlm.request import ImagePart
from tests.judges.vlm.helpers import gray, judge


def test_lr_conditioned_shows_the_lr_first(tmp_path: Path) -> None:
    reply = '{"fidelity": 40, "realism": 90, "reason": "sharp but the text changed", "confidence": 0.6}'
    j = judge("lr-conditioned", lambda r: reply, tmp_path, fidelity_weight=0.75)
    lr = gray(0.2, 8)
    verdict = j.score(gray(0.7, 32), lr=lr)
    assert verdict.score == pytest.approx(0.75 * 40 + 0.25 * 90) and "low-fidelity" in verdict.tags
    parts = j.backend.requests[0].messages[-1].parts  # type: ignore[attr-defined]
    assert isinstance(parts[1], ImagePart) and parts[1].image.shape == (8, 8, 3)
    with pytest.raises(SrjudgeError, match="--lr"):
        j.score(gray(0.7))
