"""The trust judge: ranking of different models, its vetoes (LR contradiction, semantic outlier) and terms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import q8
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.judges.base import decisive_terms, explain_pick
from srjudge.judges.trust import block_steps, consensus_vetoes
from srjudge.sr import classical
from srjudge.testbed.severity import degrade_glyph
from tests.judges.helpers import _jittered, _model_outputs


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


def test_trust_with_readout_term_and_default_unchanged() -> None:
    """trust:readout=classifier adds the R term and vetoes a sample that reads another symbol."""
    three, eight = _jittered("3", 1), _jittered("8", 3)
    samples = [three, _jittered("3", 2), _jittered("3", 4), eight]
    lr, _ = degrade_glyph(three, severity=1, seed=5)
    plain = create_judge("trust")
    assert plain.spec == "trust" and "readout" not in plain.config
    base = plain.score_many(samples, lr=lr)
    assert all("readout" not in v.components for v in base)
    judge = create_judge("trust:readout=classifier")
    assert judge.spec == "trust:readout=classifier"
    verdicts = judge.score_many(samples, lr=lr)
    assert all(0.0 <= v.components["readout"] <= 1.0 for v in verdicts)
    assert "semantic-change" in verdicts[3].tags and "semantic-change" not in verdicts[0].tags
    assert "read-out: reads '8'" in verdicts[3].rationale
    assert verdicts[3].score is not None and verdicts[0].score is not None
    assert verdicts[3].score < verdicts[0].score
    with pytest.raises(SpecError, match="give the reader too"):
        create_judge("trust:w_readout=0.5")


# --- the gate, the terms and the grid, on hand-made cases --------------------------------------------


def _smooth_lr() -> np.ndarray:
    """A 32x32 LR of mid-gray texture (0.27-0.73): offsets of up to 0.25 never clip."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32]
    pattern = 0.15 * np.sin(x / 3.0)[..., None] * np.cos(y / 5.0)[..., None]
    return q8(0.5 + pattern + rng.normal(0.0, 0.03, (32, 32, 3)))


@pytest.mark.parametrize("offset,vetoed", [(0.08, False), (0.125, True)])
def test_lr_contradiction_gate_halves_a_candidate_below_20_db(offset: float, vetoed: bool) -> None:
    """A uniform offset d reads -20 log10(d) dB of LR-PSNR: 21.9 dB passes the gate, 18.1 dB is vetoed.

    The gate changes no term of the quality, only the final factor (x 0.5).
    """
    lr = _smooth_lr()
    candidate = q8(classical.bicubic(lr, 4) + offset)
    [verdict] = create_judge("trust").score_many([candidate], lr=lr)
    [ungated] = create_judge("trust:lr_floor=-100").score_many([candidate], lr=lr)
    consistency = verdict.components["lr_consistency"]
    assert consistency == pytest.approx(-20.0 * math.log10(offset), abs=0.3)
    assert (consistency < 20.0) is vetoed
    assert ("lr-contradiction" in verdict.tags) is vetoed
    assert ("below 20 dB" in verdict.rationale) is vetoed
    assert dict(verdict.contributions) == pytest.approx(dict(ungated.contributions))
    assert verdict.score == pytest.approx(ungated.score * (0.5 if vetoed else 1.0))
    # The floor is a strict threshold on that very number.
    above = create_judge(f"trust:lr_floor={consistency + 0.01:.4f}").score_many([candidate], lr=lr)[0]
    below = create_judge(f"trust:lr_floor={consistency - 0.01:.4f}").score_many([candidate], lr=lr)[0]
    assert "lr-contradiction" in above.tags and "lr-contradiction" not in below.tags


def test_contributions_are_the_additive_terms_of_the_score(
    astronaut: np.ndarray, astronaut_lr: np.ndarray
) -> None:
    """score = 100 * sigmoid(sum of contributions), each contribution its weighted, thresholded feature."""
    outputs = _model_outputs(astronaut, astronaut_lr)
    judge = create_judge("trust:w_grid=1,w_blocks=2,w_noise=0.5,w_consistency=1,consensus=false")
    verdicts = judge.score_many(list(outputs.values()), lr=astronaut_lr)
    for name, verdict in zip(outputs, verdicts, strict=True):
        c = verdict.components
        expected = {
            "detail": c["detail"],
            "grid": -1.0 * c["grid"],
            "blocks": -2.0 * max(0.0, c["jpeg_blocks"] - 0.2),
            "noise": -0.5 * max(0.0, c["noise_excess"] - 1.5),
            "consistency": 1.0 * float(np.clip((c["lr_consistency"] - 30.0) / 10.0, -1.0, 1.0)),
        }
        assert dict(verdict.contributions) == pytest.approx(expected), name
        quality = sum(verdict.contributions.values())
        assert quality == pytest.approx(c["quality"]), name
        gate = 0.5 if "lr-contradiction" in verdict.tags else 1.0
        assert verdict.score == pytest.approx(100.0 * gate / (1.0 + math.exp(-quality))), name
    terms = {name: v.contributions for name, v in zip(outputs, verdicts, strict=True)}
    # Every term is exercised by some output: grid and JPEG blocks by nearest, noise by noisy.
    assert terms["nearest"]["grid"] < -1.0 and terms["nearest"]["blocks"] < -1.0
    assert terms["noisy"]["noise"] < 0.0 and terms["truth"]["detail"] > 1.0
    assert terms["truth"]["consistency"] == pytest.approx(1.0)


def test_a_nearest_neighbour_upscale_is_not_counted_as_detail(astronaut_lr: np.ndarray) -> None:
    """Pixel replication puts all its fine-scale energy on the x4 grid: detail at its floor, grid steps."""
    from srjudge.judges.trust import DETAIL_CLIP

    lr = astronaut_lr
    bicubic, nearest = create_judge("trust").score_many(
        [classical.bicubic(lr, 4), classical.nearest(lr, 4)], lr=lr
    )
    assert bicubic.components["detail"] == pytest.approx(0.0, abs=0.05)  # the baseline
    assert nearest.components["detail"] == -DETAIL_CLIP  # no energy off the grid at all
    assert nearest.components["grid"] > 1.0
    assert "blockiness" in nearest.tags and "blur" not in nearest.tags
    assert nearest.score < bicubic.score
