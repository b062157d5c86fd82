"""Judge base classes: verdicts, rankings, and the input checks every judge applies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import srjudge.images.checks as checks
import srjudge.judges.base as judges_base
import srjudge.metrics.base as metrics_base
from srjudge.errors import ImageError, SizeMismatchError
from srjudge.images.checks import as_image
from srjudge.images.io import to_uint8
from srjudge.judges import Verdict, create_judge
from srjudge.judges.base import make_ranking
from srjudge.metrics import create_metric
from srjudge.provenance import Provenance


def _verdict(score: float | None, raw: float | None = None) -> Verdict:
    return Verdict(judge="x", score=score, raw=raw, provenance=Provenance("x", "0", "0"))


def test_ranking_orders_best_first_and_puts_abstentions_last() -> None:
    ranking = make_ranking("x", [_verdict(10, 1), _verdict(None), _verdict(90, 9), _verdict(10, 2)])
    assert ranking.order() == [2, 3, 0, 1]
    assert [i.rank for i in ranking.items] == [1, 2, 3, None]


def test_rank_rejects_mixed_sizes(astronaut: np.ndarray) -> None:
    with pytest.raises(SizeMismatchError, match=r"b: 200x256"):
        create_judge("niqe").rank([astronaut, astronaut[:, :200]], names=["a", "b"])


# --- input checks ---------------------------------------------------------------------------------


def test_judge_names_the_sr_image(u8: np.ndarray, f: np.ndarray) -> None:
    judge = create_judge("psnr")
    with pytest.raises(ImageError, match="SR image: float values must be in"):
        judge.score(u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="HR reference: float values"):
        judge.score(f, hr=u8.astype(np.float64))
    with pytest.raises(ImageError, match="LR input: dtype int32"):
        judge.score(f, hr=f, lr=u8[::2, ::2].astype(np.int32))


def test_judge_names_the_candidate(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    judge = create_judge("psnr")
    with pytest.raises(ImageError, match="SR candidate 2: float values"):
        judge.score_many([f, noisy, u8.astype(np.float32)], hr=f)
    with pytest.raises(ImageError, match="SR candidate 1: float values"):
        judge.rank([f, u8.astype(np.float32)], hr=f)
    with pytest.raises(ImageError, match=r"b\.png: float values"):
        judge.rank([f, u8.astype(np.float32)], hr=f, names=["a.png", "b.png"])
    with pytest.raises(ImageError, match="SR candidate B: float values"):
        judge.compare(noisy, u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="list of H x W x 3 images"):
        judge.score_many(f, hr=f)


def test_judge_takes_uint8(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    judge = create_judge("psnr")
    assert judge.score(u8, hr=f).raw == math.inf
    assert judge.rank([to_uint8(noisy), u8], hr=u8).order() == [1, 0]
    assert judge.compare(to_uint8(noisy), u8, hr=f).winner == "B"


def test_candidate_set_judges_check_too(u8: np.ndarray, f: np.ndarray) -> None:
    judge = create_judge("tws")
    with pytest.raises(ImageError, match="SR image: float values"):
        judge.score(u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="SR candidate 0: float values"):
        judge.score_many([u8.astype(np.float32)], hr=f)
    assert judge.score(u8, hr=f).score == pytest.approx(judge.score(f, hr=f).score)


def test_images_are_checked_once(monkeypatch: pytest.MonkeyPatch, u8: np.ndarray, f: np.ndarray) -> None:
    names: list[str] = []

    def counting(image: Any, what: str = "image") -> np.ndarray:
        names.append(what)
        return as_image(image, what)

    for module in (checks, judges_base, metrics_base):
        monkeypatch.setattr(module, "as_image", counting)
    judge = create_judge("psnr")
    judge.rank([u8, f], hr=u8)
    assert names == ["SR candidate 0", "SR candidate 1", "HR reference"]
    names.clear()
    create_metric("psnr")(u8, hr=f)
    assert names == ["SR image", "HR reference"]
