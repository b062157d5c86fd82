"""Judges: verdicts, ranking, the registry, metric judges, TWS and the trust judge's behaviour."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import srjudge
from conftest import q8
from srjudge.errors import SizeMismatchError, SpecError, SrjudgeError, UnknownNameError
from srjudge.images.resize import imresize
from srjudge.judges import Verdict, create_judge, list_judges
from srjudge.judges.base import decisive_terms, explain_pick, make_ranking
from srjudge.judges.trust import block_steps, consensus_vetoes
from srjudge.metrics.noref import detail_and_grid
from srjudge.provenance import Provenance
from srjudge.sr import classical


def _verdict(score: float | None, raw: float | None = None) -> Verdict:
    return Verdict(judge="x", score=score, raw=raw, provenance=Provenance("x", "0", "0"))


def test_ranking_orders_best_first_and_puts_abstentions_last() -> None:
    ranking = make_ranking("x", [_verdict(10, 1), _verdict(None), _verdict(90, 9), _verdict(10, 2)])
    assert ranking.order() == [2, 3, 0, 1]
    assert [i.rank for i in ranking.items] == [1, 2, 3, None]


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


def test_rank_rejects_mixed_sizes(astronaut: np.ndarray) -> None:
    with pytest.raises(SizeMismatchError, match=r"b: 200x256"):
        create_judge("niqe").rank([astronaut, astronaut[:, :200]], names=["a", "b"])


def _model_outputs(hr: np.ndarray, lr: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of different 'models': the truth, a good restoration, and classical failure modes."""
    bic = classical.bicubic(lr, 4)
    return {
        "truth": hr,
        "good": q8(0.75 * hr + 0.25 * bic),
        "lanczos": classical.lanczos(lr, 4),
        "bicubic": bic,
        "blurred": q8(np.stack([gaussian_filter(bic[..., c], 1.5) for c in range(3)], -1)),
        "oversharpened": classical.unsharp(bic, 2.5, 2.0),
        "nearest": classical.nearest(lr, 4),
        "noisy": q8(bic + np.random.default_rng(0).normal(0, 0.04, bic.shape)),
    }


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "camera"])
def test_trust_orders_different_models_as_people_would(photo: str) -> None:
    from srjudge.images.samples import bundled_photo

    hr = bundled_photo(photo)
    lr = q8(imresize(hr, 0.25))
    outputs = _model_outputs(hr, lr)
    ranking = create_judge("trust").rank(list(outputs.values()), lr=lr)
    order = [list(outputs)[i] for i in ranking.order()]
    scores = {list(outputs)[item.index]: item.verdict.score for item in ranking.items}
    # Real detail wins; blur, grid steps and noise lose; nearest-neighbour steps are not detail.
    assert order[:2] == ["truth", "good"], order
    assert order[-1] == "nearest", order
    assert scores["bicubic"] > scores["blurred"]
    assert scores["good"] > max(scores["noisy"], scores["oversharpened"], scores["lanczos"])
    tags = {list(outputs)[item.index]: item.verdict.tags for item in ranking.items}
    # The most detailed output differs most from the others but is not vetoed as an outlier.
    assert "semantic-outlier" not in tags["truth"]
    assert "blockiness" in tags["nearest"] and "noise" in tags["noisy"]
    assert "ringing" in tags["oversharpened"] and "ringing" not in tags["truth"]
    comps = {list(outputs)[item.index]: item.verdict.components for item in ranking.items}
    assert comps["nearest"]["detail"] < comps["bicubic"]["detail"] < comps["truth"]["detail"]
    # Each verdict says why: the pick beats the runner-up on detail.
    first, second = ranking.items[0].verdict, ranking.items[1].verdict
    assert decisive_terms(first, second)[0][0] == "detail"
    assert explain_pick(first, second).startswith("detail +")


def test_detail_ignores_grid_steps_and_counts_octaves(astronaut: np.ndarray) -> None:
    """detail is log2 of fine-scale energy over bicubic's; pixel replication is grid, not detail."""
    from srjudge.images.color import rgb_to_gray

    lr = q8(imresize(astronaut, 0.25))
    bicubic = rgb_to_gray(classical.bicubic(lr, 4))
    energy, grid = detail_and_grid(bicubic, 4)
    doubled, grid2 = detail_and_grid(bicubic * math.sqrt(2.0), 4)
    assert math.log2(doubled / energy) == pytest.approx(1.0, abs=1e-6) and grid2 == pytest.approx(grid)
    nn_energy, nn_grid = detail_and_grid(rgb_to_gray(classical.nearest(lr, 4)), 4)
    assert nn_energy < 1e-9 and nn_grid > 10 and abs(grid) < 1.5


def test_trust_vetoes_a_contradiction_of_the_lr(astronaut: np.ndarray) -> None:
    lr = q8(imresize(astronaut, 0.25))
    good = classical.lanczos(lr, 4)
    inverted = q8(1.0 - good)  # sharp, but says the opposite of its input
    verdicts = create_judge("trust").score_many([good, inverted], lr=lr)
    assert "lr-contradiction" in verdicts[1].tags and verdicts[1].score < verdicts[0].score
    assert "halved" in verdicts[1].rationale
    lenient = create_judge("trust:lr_floor=-100").score_many([good, inverted], lr=lr)
    assert "lr-contradiction" not in lenient[1].tags


def test_trust_vetoes_the_hallucinated_sample(astronaut: np.ndarray) -> None:
    """Among samples of one stochastic model, the sample whose structure departs is vetoed."""
    hr, lr = astronaut, q8(imresize(astronaut, 0.25))
    rng = np.random.default_rng(0)
    detail = hr - imresize(imresize(hr, 0.25), output_shape=hr.shape[:2])
    base = imresize(lr, output_shape=hr.shape[:2])
    samples = [
        q8(base + np.roll(detail, tuple(rng.integers(-1, 2, 2)), axis=(0, 1)) * rng.uniform(0.6, 1.0))
        for _ in range(8)
    ]
    bad = samples[5].copy()
    bad[104:152, 104:152] = np.rot90(bad[104:152, 104:152])  # the content of one region changes
    samples[5] = bad
    verdicts = create_judge("trust").score_many(samples, lr=lr)
    vetoed = [i for i, v in enumerate(verdicts) if "semantic-outlier" in v.tags]
    assert vetoed == [5]
    assert verdicts[5].score < min(v.score for i, v in enumerate(verdicts) if i != 5)
    no_consensus = create_judge("trust:consensus=false").score_many(samples, lr=lr)
    assert "semantic-outlier" not in no_consensus[5].tags


def test_consensus_vetoes_need_a_clear_outlier() -> None:
    assert consensus_vetoes([0.10, 0.11, 0.12, 0.10, 0.80]) == [False, False, False, False, True]
    assert consensus_vetoes([0.10, 0.11, 0.12, 0.10, 0.45]) == [False] * 5  # below the floor
    assert consensus_vetoes([0.10, 0.50, 0.12, 0.45, 0.30]) == [False] * 5  # spread, no outlier
    assert consensus_vetoes([0.1, 0.9]) == [False, False]  # too few to call a consensus


def test_block_steps_separate_grid_artifacts_from_smooth_upscaling(astronaut: np.ndarray) -> None:
    from srjudge.images.color import rgb_to_gray

    lr = q8(imresize(astronaut, 0.25))
    assert block_steps(rgb_to_gray(classical.nearest(lr, 4)), 4) > 3.0  # gray levels
    assert block_steps(rgb_to_gray(classical.bicubic(lr, 4)), 4) < 0.5
    assert abs(block_steps(rgb_to_gray(astronaut), 4)) < 0.5  # natural images carry no grid
    # JPEG blocks of the LR, amplified by over-sharpening, show on the 8-pixel LR grid (32 at x4).
    jpeg_lr = _jpeg(lr, quality=30)
    plain = block_steps(rgb_to_gray(classical.bicubic(jpeg_lr, 4)), 32)
    sharpened = block_steps(rgb_to_gray(classical.unsharp(classical.bicubic(jpeg_lr, 4), 2.5, 2.0)), 32)
    assert sharpened > plain + 0.3


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def test_trust_needs_the_lr_input(astronaut: np.ndarray) -> None:
    with pytest.raises(SrjudgeError, match="--lr"):
        create_judge("trust").score(astronaut)


def test_tws_at_lr_scale_does_not_reward_blur() -> None:
    """Without an HR, TWS compares at LR scale; the paper's upsampled-LR reference rewards blur."""
    from srjudge.images.samples import bundled_photo

    hr = bundled_photo("chelsea")
    lr = q8(imresize(hr, 0.25))
    outputs = _model_outputs(hr, lr)
    names = list(outputs)
    for spec, blur_wins in (("tws", False), ("tws:lr_mode=upsampled", True)):
        scores = dict(
            zip(
                names,
                (v.score for v in create_judge(spec).score_many(list(outputs.values()), lr=lr)),
                strict=True,
            )
        )
        assert (scores["blurred"] > scores["truth"]) is blur_wins, (spec, scores)
    assert create_judge("tws:lr_mode=upsampled").spec == "tws:lr_mode=upsampled"
    with pytest.raises(SpecError, match="lr_mode"):
        create_judge("tws:lr_mode=half")


def test_tws_without_clip_says_so(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    judge = create_judge("tws")
    verdict = judge.score(astronaut, hr=astronaut)
    assert verdict.score == pytest.approx(100.0)
    assert "semantic" not in verdict.components and "no-semantic-term" in verdict.tags
    assert "Semantic term omitted" in verdict.rationale
    noisy = q8(astronaut + np.random.default_rng(0).normal(0, 0.05, astronaut.shape))
    blurred = q8(np.stack([gaussian_filter(astronaut[..., c], 2.0) for c in range(3)], -1))
    v_noisy, v_blur = judge.score_many([noisy, blurred], hr=astronaut)
    assert v_noisy.components["artifact"] < 0.8 and v_blur.components["structure"] < 0.8
    # Without HR the reference is the bicubic-upsampled LR, and the verdict names it.
    assert "LR input, at LR scale" in judge.score(astronaut, lr=astronaut_lr).rationale
    upsampled = create_judge("tws:lr_mode=upsampled").score(astronaut, lr=astronaut_lr)
    assert "bicubic-upsampled LR" in upsampled.rationale
    with pytest.raises(SrjudgeError, match="needs a reference"):
        judge.score(astronaut)
    weighted = create_judge("tws:w_structure=1,w_artifact=0").score(blurred, hr=astronaut)
    assert weighted.raw == pytest.approx(v_blur.components["structure"])
