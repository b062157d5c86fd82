"""BRISQUE: closeness to the official values on the calibration images, model files, edge cases, registry."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from calibration import IMAGES, OFFICIAL
from srjudge.errors import ImageError, MissingWeightsError
from srjudge.metrics import create_metric
from srjudge.metrics.brisque import brisque, load_brisque_model, model_dir
from tests.metrics.helpers import _textured

# BRISQUE uses the SVR of the LIVE C++ release (the model the `brisque` package ships), while the
# official values come from the MATLAB release's own SVR, so exact agreement is impossible
# (see srjudge.metrics.brisque). Measured gaps: I03 -0.04, I04 -0.41, I06 -1.10, I08 +2.32, I19 +13.6.
# I19 is 30 % flat, where the score hangs on how near-zero products are bucketed; it gets its own bound.
BRISQUE_ABS_TOL = {"I03": 3.0, "I04": 3.0, "I06": 3.0, "I08": 3.0, "I19": 15.0}


@pytest.mark.parametrize("name", IMAGES)
def test_brisque_close_to_official(distorted: dict[str, np.ndarray], name: str) -> None:
    assert brisque(distorted[name]) == pytest.approx(OFFICIAL["brisque"][name], abs=BRISQUE_ABS_TOL[name])


def test_brisque_ranks_like_official(distorted: dict[str, np.ndarray]) -> None:
    ours = [brisque(distorted[n]) for n in IMAGES]
    official = [OFFICIAL["brisque"][n] for n in IMAGES]
    assert list(np.argsort(ours)) == list(np.argsort(official))


def test_brisque_model_parsed() -> None:
    model = load_brisque_model()
    assert model.support_vectors.shape == (770, 36)
    assert model.gamma == pytest.approx(0.05)
    assert model.rho == pytest.approx(-155.845)


def test_brisque_too_small() -> None:
    with pytest.raises(ImageError, match=r"at least 16x16 .* 10x12"):
        brisque(_textured(12, 10))


def test_brisque_missing_files(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"pip install brisque") as info:
        load_brisque_model(tmp_path)
    assert str(tmp_path / "svm.txt") in str(info.value)


def test_brisque_refuses_code_in_pickle(tmp_path: Path) -> None:
    folder = model_dir()
    (tmp_path / "svm.txt").write_text((folder / "svm.txt").read_text())
    (tmp_path / "normalize.pickle").write_bytes(pickle.dumps({"min_": Path("x"), "max_": []}))
    with pytest.raises(MissingWeightsError, match=r"normalize\.pickle"):
        load_brisque_model(tmp_path)


def test_registry_brisque(distorted: dict[str, np.ndarray]) -> None:
    metric = create_metric("brisque")
    assert metric.info.lower_better
    im = distorted["I08"]
    assert metric(im) == brisque(im)
    assert metric.score(40.0) == pytest.approx(50.0)
    assert metric.score(0.0) > 90.0 > 10.0 > metric.score(95.0)
