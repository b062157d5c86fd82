"""The judge registry: names, did-you-mean, option errors, declared inputs."""

from __future__ import annotations

import pytest

import srjudge
from srjudge.errors import SpecError, UnknownNameError
from srjudge.judges import create_judge, list_judges


def test_create_judge_registry() -> None:
    assert {"trust", "tws"} <= {j.name for j in list_judges()}
    assert srjudge.create_judge("niqe").spec == "niqe"
    with pytest.raises(UnknownNameError, match="Did you mean: trust"):
        create_judge("trst")
    with pytest.raises(SpecError, match="Unknown option"):
        create_judge("trust:w_detial=1")
    with pytest.raises(SpecError, match="non-negative"):
        create_judge("trust:w_grid=-1")
    with pytest.raises(SpecError, match=r"no longer takes w_naturalness.*migration"):
        create_judge("trust:w_naturalness=0.2")


@pytest.mark.parametrize(
    "spec,needs_lr,needs_hr",
    [
        ("psnr", False, True),
        ("lr-psnr", True, False),
        ("niqe", False, False),
        ("trust", True, False),
        ("readout:classifier", True, False),
        ("tws", False, False),
    ],
)
def test_judges_declare_the_inputs_they_need(spec: str, needs_lr: bool, needs_hr: bool) -> None:
    """needs_lr / needs_hr come from the registration (a judge's flags, or its metric's info)."""
    judge = create_judge(spec)
    assert (judge.needs_lr, judge.needs_hr) == (needs_lr, needs_hr)
    assert judge.summary() == {}  # no model calls to account for
