"""The TWS judge (Trustworthiness Score): references, modes, weights and the formula."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from conftest import q8
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from tests.judges.helpers import _model_outputs


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


# --- the two LR modes and the paper's formula, on hand-made cases ------------------------------------


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "camera", "coffee"])
def test_lr_scale_mode_ranks_a_blurred_truth_below_the_truth(photo: str) -> None:
    """At LR scale the truth gives back its LR; the paper's upsampled-LR reference prefers it blurred."""
    from srjudge.images.samples import bundled_photo
    from srjudge.metrics.noref import upsample_lr

    hr = bundled_photo(photo)
    lr = q8(imresize(hr, 0.25))
    blurred = q8(np.stack([gaussian_filter(hr[..., c], 2.0) for c in range(3)], -1))
    truth, blur = create_judge("tws").score_many([hr, blurred], lr=lr)
    assert truth.score > blur.score and truth.components["structure"] > 0.99
    assert "LR input, at LR scale" in truth.rationale
    truth_up, blur_up = create_judge("tws:lr_mode=upsampled").score_many([hr, blurred], lr=lr)
    assert blur_up.score > truth_up.score
    # The paper's reference is itself the blurriest faithful output, and gets its perfect score.
    upsampled = create_judge("tws:lr_mode=upsampled").score(upsample_lr(lr, hr.shape[:2]), lr=lr)
    assert upsampled.score == pytest.approx(100.0)


def test_upsampled_mode_follows_the_paper_formula_on_a_hand_made_case() -> None:
    """TWS = (w_str S_str + w_art S_art) / (w_str + w_art) without CLIP, S_art = exp(-excess log-energy).

    The candidate is the reference with its contrast about 0.5 scaled by k: every Haar detail band
    scales by k, its energy by k^2, so over the 3 levels S_art = exp(-3 ln k^2) = k^-6 when k > 1,
    and 1 when k < 1 (less energy than the reference is not an artifact).
    """
    from srjudge.metrics.noref import upsample_lr

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16]
    pattern = 0.15 * np.sin(x / 2.0)[..., None] * np.cos(y / 3.0)[..., None]
    lr = np.clip(0.5 + pattern + 0.05 * rng.standard_normal((16, 16, 3)), 0, 1).astype(np.float32)
    reference = upsample_lr(lr, (64, 64))

    same = create_judge("tws:lr_mode=upsampled").score(reference, lr=lr)
    assert same.raw == pytest.approx(1.0) and same.score == pytest.approx(100.0)
    assert "bicubic-upsampled LR" in same.rationale and same.tags == ("no-semantic-term",)

    k = 1.25
    stretched = 0.5 + k * (reference - 0.5)
    assert stretched.min() >= 0.0 and stretched.max() <= 1.0
    verdict = create_judge("tws:lr_mode=upsampled").score(stretched, lr=lr)
    structure, artifact = verdict.components["structure"], verdict.components["artifact"]
    assert artifact == pytest.approx(k**-6, rel=1e-3)
    assert 0.5 < structure < 0.999
    assert verdict.raw == pytest.approx((0.3 * structure + 0.3 * artifact) / 0.6)  # semantic weight dropped
    weighted = create_judge("tws:lr_mode=upsampled,w_structure=0.1,w_artifact=0.7").score(stretched, lr=lr)
    assert weighted.raw == pytest.approx((0.1 * structure + 0.7 * artifact) / 0.8)
    assert weighted.score == pytest.approx(100.0 * weighted.raw)

    flattened = create_judge("tws:lr_mode=upsampled").score(0.5 + 0.8 * (reference - 0.5), lr=lr)
    assert flattened.components["artifact"] == 1.0 and flattened.components["structure"] < 1.0
