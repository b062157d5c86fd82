"""The audit protocol sends what the face-SR paper's gatekeeper gets: LR, SR, face crops, a QA summary.

Real faces (scikit-image's astronaut, one face), dlib's real models, the real NIQE and trust judge;
replayed answers (tests/vlm_replay.py) for the VLM, and the same recorded request through the openai
backend's HTTP body and the local hf backend on the tiny random Qwen2-VL (tests/vlm_tiny.py).

Crop rule under test: the faces found on the SR output, largest first, at most 5, one SR crop each; with
fewer than 3 faces and an LR input, each face's crop of the LR upscaled with bicubic follows its SR crop.
So the astronaut's one face gives 2 crops (SR, LR-bicubic): with the full LR and SR images, the face is
in 4 of the 4 images sent, 3 of them at SR resolution.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from srjudge.errors import MissingWeightsError
from srjudge.faces.crops import view_crop
from srjudge.faces.detect import Face, FaceFinder, box_iou
from srjudge.faces.identity import DLIB_THRESHOLD, IdentityChecker, make_encoder
from srjudge.images.resize import imresize
from srjudge.judges.base import Verdict
from srjudge.judges.registry import create_judge
from srjudge.judges.vlm import VLMJudge, qa_summary
from srjudge.judges.vlm.qa_summary import (
    NO_FACE,
    QATools,
    face_crops,
    largest_faces,
    measure_lpips,
    upscaled_lr,
)
from srjudge.metrics import create_metric
from srjudge.vlm.backends.base import create_backend
from srjudge.vlm.backends.openai_backend import OpenAIBackend
from srjudge.vlm.images import data_uri
from srjudge.vlm.prompts import PROMPTS
from srjudge.vlm.request import ChatRequest, ImagePart, Part, TextPart
from tests.faces.helpers import astronaut
from tests.judges.vlm.helpers import gray, judge

ASTRONAUT_FACE = (175, 76, 265, 166)
"""dlib's HOG box of the astronaut's face (tests/faces/test_detect.py)."""
ANSWER = '{"score": 40, "tags": ["identity drift", "noise"], "reason": "the face changed", "confidence": 0.8}'


@dataclass(frozen=True)
class Run:
    sr: np.ndarray
    lr: np.ndarray
    verdict: Verdict
    request: ChatRequest

    @property
    def parts(self) -> tuple[Part, ...]:
        return self.request.messages[-1].parts


def _noisy_astronaut() -> tuple[np.ndarray, np.ndarray]:
    hr = astronaut()
    lr = np.clip(imresize(hr, scale=0.25), 0.0, 1.0).astype(np.float32)  # 128x128, the face 22 px wide
    noise = np.random.default_rng(0).normal(0.0, 0.04, hr.shape)
    return np.clip(hr + noise, 0.0, 1.0).astype(np.float32), lr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One audit of a noisy astronaut (512 px) with its x4 LR, sent with max_side=256."""
    sr, lr = _noisy_astronaut()
    j = judge("audit", lambda r: ANSWER, tmp_path_factory.mktemp("audit"), max_side=256)
    verdict = j.score(sr, lr=lr)
    requests = j.backend.requests  # type: ignore[attr-defined]
    assert len(requests) == 1
    return Run(sr, lr, verdict, requests[0])


def _texts(parts: tuple[Part, ...]) -> str:
    return "\n".join(p.text for p in parts if isinstance(p, TextPart))


def _summary(parts: tuple[Part, ...]) -> str:
    text = _texts(parts)
    start = text.index("QA summary")
    return text[start : text.index("\n\n", start)]


def test_the_astronaut_request_sends_lr_sr_and_the_face_from_both(run: Run) -> None:
    t = PROMPTS.get("audit")
    kinds = ["image" if isinstance(p, ImagePart) else p.text for p in run.parts]
    assert kinds[:4] == [t.user_before, "image", t.user_between, "image"]
    assert kinds[4] == t.extra["user_faces"]
    assert kinds[5:9] == ["Face 1, super-resolved output:", "image", "Face 1, LR input, bicubic:", "image"]
    assert len(kinds) == 10 and kinds[9].startswith("QA summary")
    images = [p for p in run.parts if isinstance(p, ImagePart)]
    # LR as given (128 px), SR fitted to max_side=256, two 160 px face crops.
    assert [p.image.shape for p in images] == [(128, 128, 3), (256, 256, 3), (160, 160, 3), (160, 160, 3)]
    faces = FaceFinder("auto").find(run.sr)
    assert len(faces) == 1 and box_iou(faces[0].box, ASTRONAUT_FACE) > 0.9
    expected = [view_crop(run.sr, faces[0]), view_crop(upscaled_lr(run.lr, run.sr.shape), faces[0])]
    assert [p.digest for p in images[2:]] == [ImagePart.of(e).digest for e in expected]
    assert images[0].digest == ImagePart.of(run.lr).digest
    assert "[image sent as 512x512 -> 256x256, max_side=256]" in run.verdict.rationale


def test_the_summary_carries_identity_niqe_and_flags(run: Run) -> None:
    # The values measured here with the faces, metrics and judges APIs directly.
    cosine = IdentityChecker(FaceFinder(), make_encoder()).compare([run.sr], lr=run.lr)[0].similarity
    niqe = create_metric("niqe")(run.sr)
    flags = create_judge("trust").score(run.sr, lr=run.lr).tags
    assert cosine is not None and DLIB_THRESHOLD < cosine < 0.99 and 5.0 < niqe < 8.0 and flags == ("noise",)
    assert _summary(run.parts) == "\n".join(
        [
            "QA summary (automatic measurements of the SR output):",
            "- faces: 1 found on the SR output; crops shown: face 1 SR, face 1 LR-bicubic",
            f"- identity: cosine {cosine:.3f} vs the LR face upscaled with bicubic "
            f"(dlib-resnet-v1; same person at >= {DLIB_THRESHOLD:.3f}): same person",
            f"- NIQE: {niqe:.2f} (no-reference naturalness of the SR output; lower is better)",
            "- LPIPS: no HR reference",
            "- artifact flags (trust judge): noise",
        ]
    )
    assert run.verdict.components["qa_identity"] == pytest.approx(cosine)
    assert run.verdict.components["qa_niqe"] == pytest.approx(niqe)
    assert run.verdict.components["qa_faces"] == 1.0 and "qa_lpips" not in run.verdict.components


def test_an_identity_drift_answer_tags_the_verdict(run: Run) -> None:
    v = run.verdict
    assert v.score == 40 and v.confidence == 0.8 and v.tags == ("identity-drift", "noise")
    assert v.rationale.startswith("the face changed [QA: faces 1; identity 0.9")
    assert "(same person); NIQE 6." in v.rationale and "LPIPS n/a; flags noise]" in v.rationale
    assert "identity-drift" in PROMPTS.get("audit").tags_vocabulary
    assert "identity-drift" in PROMPTS.get("audit").schema["properties"]["tags"]["items"]["enum"]  # type: ignore[index]


def test_the_openai_body_carries_the_images_in_order(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRJUDGE_TEST_KEY", "sk-test")
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        message = {"role": "assistant", "content": ANSWER}
        choice = {"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}
        usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
        return httpx.Response(200, json={**body, "usage": usage})

    backend = OpenAIBackend.from_options(
        {
            "model": "judge-model",
            "api_key_env": "SRJUDGE_TEST_KEY",
            "_http_client": httpx.Client(transport=httpx.MockTransport(handler)),
        }
    )
    assert backend.complete([run.request])[0].text == ANSWER
    content = sent[0]["messages"][1]["content"]
    expected = [
        {"type": "text", "text": p.text}
        if isinstance(p, TextPart)
        else {"type": "image_url", "image_url": {"url": data_uri(p.image)}}
        for p in run.parts
    ]
    assert content == expected and sum(c["type"] == "image_url" for c in content) == 4


def test_the_hf_backend_takes_the_four_images(run: Run, tiny_vlm: Path) -> None:
    backend = create_backend("hf", {"model": str(tiny_vlm)})
    rendered = backend.render(run.request)  # type: ignore[attr-defined]
    assert rendered.count("<|vision_start|>") == 4
    # Each crop's label comes right before its image.
    sr_label = rendered.index("Face 1, super-resolved output:")
    lr_label = rendered.index("Face 1, LR input, bicubic:")
    starts = [i for i in range(len(rendered)) if rendered.startswith("<|vision_start|>", i)]
    assert starts[1] < sr_label < starts[2] < lr_label < starts[3] < rendered.index("QA summary")
    short = replace(run.request, params=replace(run.request.params, max_tokens=1, json_schema=None))
    assert backend.complete([short])[0].usage.prompt_tokens > 4 * 4  # the processor took all four


def test_a_flat_image_sends_no_crops_and_says_no_face_found(tmp_path: Path) -> None:
    j = judge("audit", lambda r: ANSWER, tmp_path)
    j.score(gray(0.5, 64), lr=gray(0.5, 16))
    parts = j.backend.requests[0].messages[-1].parts  # type: ignore[attr-defined]
    assert [p.image.shape for p in parts if isinstance(p, ImagePart)] == [(16, 16, 3), (64, 64, 3)]
    summary = _summary(parts)
    assert f"- faces: {NO_FACE}; no face crops" in summary
    assert f"- identity: not measured: {NO_FACE}" in summary
    assert "- NIQE: not measured: NIQE needs at least two 96x96 blocks" in summary
    assert "Face 1" not in _texts(parts)


def test_without_lr_only_the_sr_and_its_crop_are_sent(tmp_path: Path) -> None:
    sr, _ = _noisy_astronaut()
    j = judge("audit", lambda r: ANSWER, tmp_path)
    j.score(sr)
    parts = j.backend.requests[0].messages[-1].parts  # type: ignore[attr-defined]
    assert [p.image.shape for p in parts if isinstance(p, ImagePart)] == [(512, 512, 3), (160, 160, 3)]
    summary = _summary(parts)
    assert "crops shown: face 1 SR\n" in summary
    assert "identity: not measured: no LR input or HR reference" in summary
    assert "artifact flags (trust judge): not measured: no LR input" in summary


def test_without_dlib_the_summary_says_faces_are_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    with pytest.raises(ImportError):
        import dlib  # noqa: F401
    sr, lr = _noisy_astronaut()
    j = judge("audit", lambda r: ANSWER, tmp_path)
    verdict = j.score(sr, lr=lr)
    parts = j.backend.requests[0].messages[-1].parts  # type: ignore[attr-defined]
    assert sum(isinstance(p, ImagePart) for p in parts) == 2  # LR and SR, no crop although a face is there
    summary = _summary(parts)
    assert "- faces: not available: face detection needs dlib, which cannot be imported" in summary
    assert "- identity: not measured: face detection is not available" in summary
    assert "- artifact flags (trust judge): noise" in summary
    assert verdict.score == 40 and "qa_faces" not in verdict.components
    fresh = qa_summary.qa_summary(gray(0.5, 64), lr=gray(0.5, 16), tools=QATools())
    assert fresh.faces_found is None and fresh.to_dict()["faces"]["found"] is None


def test_an_unparseable_answer_abstains_and_keeps_the_summary(tmp_path: Path) -> None:
    j = judge("audit", lambda r: "The face looks fine to me.", tmp_path, retries=1)
    verdict = j.score(gray(0.5, 64), lr=gray(0.5, 16))
    assert verdict.abstained and verdict.score is None
    assert "no audit could be read: 2 attempt(s) failed" in (verdict.abstain_reason or "")
    assert verdict.rationale.startswith("QA: faces 0; identity not measured; NIQE n/a")
    assert verdict.components["qa_faces"] == 0.0


def test_an_hr_reference_gives_lpips_and_reaches_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []

    def lpips(sr: np.ndarray, hr: np.ndarray) -> float:
        seen.append(hr.shape)
        return 0.25

    tools = QATools(lpips=lpips)
    monkeypatch.setattr(qa_summary, "default_tools", lambda: tools)
    j = judge("audit", lambda r: ANSWER, tmp_path)
    assert isinstance(j, VLMJudge)
    verdict = j.score(gray(0.5, 64), lr=gray(0.5, 16), hr=gray(0.4, 64))
    summary = _summary(j.backend.requests[0].messages[-1].parts)  # type: ignore[attr-defined]
    assert "- LPIPS: 0.250 vs the HR reference (perceptual distance; lower is better)" in summary
    assert seen == [(64, 64, 3)] and verdict.components["qa_lpips"] == 0.25

    class NoLpips(QATools):
        def lpips(self) -> qa_summary.LpipsFn:
            raise MissingWeightsError("LPIPS weights missing")

    missing = measure_lpips(gray(0.5, 64), gray(0.4, 64), NoLpips())
    assert missing.value is None and missing.note == "not available: LPIPS weights missing"


def _face(left: int, top: int, width: int) -> Face:
    return Face((left, top, left + width, top + width), 1.0, ((0.0, 0.0),) * 5, "hog")


@pytest.mark.parametrize(
    ("widths", "crops"),
    [
        ([], []),
        ([20], [(1, "sr"), (1, "lr")]),
        ([20, 30], [(1, "sr"), (1, "lr"), (2, "sr"), (2, "lr")]),
        ([20, 30, 10], [(1, "sr"), (2, "sr"), (3, "sr")]),
        ([10, 12, 14, 16, 18, 20, 22], [(k, "sr") for k in range(1, 6)]),
    ],
)
def test_the_crop_rule(widths: list[int], crops: list[tuple[int, str]]) -> None:
    sr = np.random.default_rng(0).random((96, 96, 3)).astype(np.float32)
    faces = largest_faces([_face(4 + 10 * i, 4 + 5 * i, w) for i, w in enumerate(widths)])
    assert [f.width for f in faces] == sorted(widths, reverse=True)[:5]
    got = face_crops(sr, gray(0.5, 24), faces)
    assert [(c.face, c.source) for c in got] == crops
    assert all(c.image.shape == (160, 160, 3) for c in got)
    # Without an LR input there is nothing to compare with: SR crops only.
    assert [c.source for c in face_crops(sr, None, faces)] == ["sr"] * len(faces)


def test_a_summary_is_json_ready() -> None:
    s = qa_summary.QASummary(
        faces_found=2,
        faces_note="",
        crops=("face 1 SR", "face 1 LR-bicubic"),
        identity=qa_summary.Identity(0.81, "hr", 0.9, "dlib-resnet-v1"),
        niqe=qa_summary.Reading(4.5),
        lpips=qa_summary.Reading(0.125),
        flags=(),
    )
    record = json.loads(json.dumps(s.to_dict()))
    assert record["identity"]["drift"] is True and record["lpips"]["value"] == 0.125
    text = s.to_text()
    assert "cosine 0.810 vs the HR face (dlib-resnet-v1; same person at >= 0.900): identity drift" in text
    assert "crops shown (largest first)" in text and "- artifact flags (trust judge): none" in text
