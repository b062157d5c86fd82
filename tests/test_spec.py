"""Spec parsing: forms, errors, option coercion, choices, and the hints for misplaced options."""

from __future__ import annotations

import pytest

from srjudge.errors import SpecError
from srjudge.spec import Choice, Spec, coerce_options, iter_specs, parse_spec


def test_parse_spec_forms() -> None:
    assert parse_spec("niqe") == Spec("niqe")
    assert parse_spec(" TWS:clip=/m/clip, w_semantic=0.5 ") == Spec(
        "tws", None, {"clip": "/m/clip", "w_semantic": "0.5"}
    )
    assert parse_spec("reward:/runs/rm,device=cuda") == Spec("reward", "/runs/rm", {"device": "cuda"})
    assert str(parse_spec("reward:/runs/rm,device=cuda")) == "reward:/runs/rm,device=cuda"


@pytest.mark.parametrize(
    "bad,match",
    [
        ("", "Empty spec"),
        ("a:x,,y=1", "stray comma"),
        ("a:x=1,y", "has no '='"),
        ("a:x=1,x=2", "given twice"),
    ],
)
def test_parse_spec_errors(bad: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_spec(bad)


def test_coerce_options() -> None:
    spec = parse_spec("x:n=3,f=0.5,b=yes,s=hi")
    assert coerce_options(spec, {"n": int, "f": float, "b": bool, "s": str}, kind="judge") == {
        "n": 3,
        "f": 0.5,
        "b": True,
        "s": "hi",
    }
    with pytest.raises(SpecError, match=r"b='maybe'.*not a valid bool"):
        coerce_options(parse_spec("x:b=maybe"), {"b": bool}, kind="judge")


def test_an_option_split_off_its_spec_gets_a_semicolon_hint() -> None:
    """The README's `--judges "niqe,brisque,trust,vlm:openai,model=gpt-4o"` says to use ';' (issue 13)."""
    with pytest.raises(SpecError) as info:
        list(iter_specs("niqe,brisque,trust,vlm:openai,model=gpt-4o", option="--judges"))
    assert str(info.value) == (
        "\"model=gpt-4o\" looks like an option of the previous spec; separate specs with ';' when a spec "
        'contains commas: --judges "niqe;brisque;trust;vlm:openai,model=gpt-4o"'
    )
    with pytest.raises(SpecError, match=r'separate specs with \';\'.*: "psnr:channel=y,crop_border=4;trust"'):
        list(iter_specs("psnr:channel=y,crop_border=4,trust"))  # no option name: the list alone
    with pytest.raises(SpecError, match=r"join it to that spec with ','.*\"niqe;vlm:openai,model=gpt-4o\""):
        list(iter_specs("niqe;vlm:openai;model=gpt-4o"))
    with pytest.raises(SpecError, match="no spec comes before it"):
        list(iter_specs("model=gpt-4o,niqe"))
    assert list(iter_specs("niqe;vlm:openai,model=gpt-4o")) == ["niqe", "vlm:openai,model=gpt-4o"]
    assert list(iter_specs("niqe, brisque")) == ["niqe", "brisque"]


def test_choice_aliases_map_to_a_value_and_a_label_words_the_error() -> None:
    model = Choice("x4plus", "animevideo", aliases={"anime": "animevideo"}, label="upscaler model")
    schema = {"model": (model, "x4plus")}
    assert coerce_options(parse_spec("up:model=ANIME"), schema, kind="SR backend") == {"model": "animevideo"}
    assert model.__name__ == "value: use one of x4plus, animevideo"  # aliases are accepted, not listed
    with pytest.raises(SpecError, match=r"^Unknown upscaler model 'x8': use one of x4plus, animevideo\.$"):
        coerce_options(parse_spec("up:model=x8"), schema, kind="SR backend")
    with pytest.raises(
        SpecError, match=r"Option net='x8' for metric 'up' is not a valid value: use one of a, b"
    ):
        coerce_options(parse_spec("up:net=x8"), {"net": (Choice("a", "b"), "a")}, kind="metric")
