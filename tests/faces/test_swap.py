"""The face-swap decoy, and the identity check catching it on real faces (the issue's target)."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.audit.gate import AuditPolicy, audit_image
from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import DLIB_THRESHOLD, DlibEncoder, IdentityChecker
from srjudge.faces.swap import swap_face
from srjudge.images.resize import imresize
from srjudge.images.samples import face_photos
from srjudge.judges.registry import create_judge
from srjudge.sr.base import create_sr_backend
from tests.faces.helpers import astronaut


@pytest.fixture(scope="module")
def swapped() -> dict[str, np.ndarray]:
    finder = FaceFinder("hog")
    hr = astronaut()[:384, 64:448].copy()  # the face and shoulders, 384 px
    target = finder.find(hr)[0]
    hopper = dict(face_photos())["grace-hopper_1"]
    source = max(finder.find(hopper), key=lambda f: f.width)
    lr = np.clip(imresize(hr, scale=1 / 4), 0.0, 1.0).astype(np.float32)
    bicubic = create_sr_backend("bicubic").upscale(lr, scale=4)
    return {"hr": hr, "lr": lr, "bicubic": bicubic, "swap": swap_face(bicubic, target, hopper, source)}


def test_the_swap_changes_the_face_only(swapped: dict[str, np.ndarray]) -> None:
    changed = np.abs(swapped["swap"] - swapped["bicubic"]).max(axis=2) > 0.02
    ys, xs = np.nonzero(changed)
    # Inside the astronaut's face box (175..265, 76..166 in the full photo; x shifted by 64 here).
    assert xs.min() >= 100 and xs.max() <= 215 and ys.min() >= 60 and ys.max() <= 175


def test_identity_tells_the_swap_from_the_person(swapped: dict[str, np.ndarray]) -> None:
    checker = IdentityChecker(FaceFinder("hog"), DlibEncoder())
    own, swap = checker.compare([swapped["bicubic"], swapped["swap"]], hr=swapped["hr"])
    assert own.similarity is not None and own.similarity > DLIB_THRESHOLD
    assert swap.similarity is not None and swap.similarity < DLIB_THRESHOLD


def test_trust_with_identity_vetoes_the_swap_in_a_candidate_set(swapped: dict[str, np.ndarray]) -> None:
    lr, bicubic = swapped["lr"], swapped["bicubic"]
    lanczos = create_sr_backend("lanczos").upscale(lr, scale=4)
    sharp = create_sr_backend("classical:bicubic+sharpen").upscale(lr, scale=4)
    judge = create_judge("trust:identity=true")
    verdicts = judge.score_many([bicubic, lanczos, sharp, swapped["swap"]], lr=lr)
    assert [("identity-drift" in v.tags) for v in verdicts] == [False, False, False, True]
    assert all("identity" in v.components for v in verdicts)
    assert "another person's face, score halved" in verdicts[3].rationale
    plain = create_judge("trust").score_many([bicubic, lanczos, sharp, swapped["swap"]], lr=lr)
    # The veto halves the score once: a swap that the consensus veto already caught keeps its score.
    already = any(t in plain[3].tags for t in ("semantic-outlier", "lr-contradiction"))
    assert plain[3].score is not None
    assert verdicts[3].score == pytest.approx(plain[3].score * (1.0 if already else 0.5), rel=1e-6)
    assert [v.score for v in verdicts[:3]] == pytest.approx([v.score for v in plain[:3]], rel=1e-9)


def test_the_audit_rejects_the_swap_and_accepts_the_person(swapped: dict[str, np.ndarray]) -> None:
    lr = swapped["lr"]
    backend = create_sr_backend("bicubic")
    judge = create_judge("trust:identity=true")
    policy = AuditPolicy(tau=30.0, retries=1)
    hr = swapped["hr"]
    swap = audit_image(lr, backend, judge, scale=4, policy=policy, baseline=swapped["swap"], hr=hr)
    assert swap.decision == "reject"
    assert "identity-drift" in swap.pure.verdict.tags
    own = audit_image(lr, backend, judge, scale=4, policy=policy, baseline=swapped["bicubic"], hr=hr)
    assert own.accepted and "identity-drift" not in own.final.verdict.tags
