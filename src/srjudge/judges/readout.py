"""``readout``: rank SR candidates of one LR glyph by whether they show the symbol the evidence supports.

The diffusion-SR selection paper's read-out judge: a reader (``classifier``, ``ocr``, ``vlm``; see
:mod:`srjudge.readers`) reads every candidate and the LR input upsampled bicubic x4 (MATLAB
``imresize`` to the candidates' size). Each reading becomes a distribution over the 36 classes:
``d = probs`` for readers that give probabilities, else ``d = one-hot(label) x confidence``
(zeros when nothing was read). Then::

    consensus  c  = sum_j conf_j * d_j/|d_j|  /  sum_j conf_j        (candidates that read something)
    score_i       = (w_c * <d_i, c> + w_lr * <d_i, d_lr>) / (w_c + w_lr)      in [0, 1]; Verdict 100x

``<d_i, c>`` is the probability that candidate i's reading and a reading drawn from the consensus name
the same class, so a confident reading that agrees scores high and an unsure one scores low. The LR
term carries the reader's confidence on the LR itself: an ambiguous LR (spread ``d_lr``) moves scores
little, a clear one a lot. When the LR reads as nothing, its term is dropped (``w_lr`` -> 0) and the
verdict says so; a candidate that reads as nothing (or reads a label with confidence 0, a
reading without mass) abstains with the reader's reason.

Defaults ``w_consensus=0.5, w_lr=0.5``; specs: ``readout:classifier``, ``readout:ocr``,
``readout:vlm,model=/models/qwen`` (``backend=hf`` by default, or ``backend=openai``),
``readout:classifier,w_lr=0.7``. Every option other than the two weights goes to the reader.
``readout:referee`` works too, but the testbed experiment reserves the referee for grading (which
symbol an output shows), so that ``readout:classifier`` is never graded by its own network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.checks import check_lr_scale
from srjudge.judges.base import CandidateSetJudge, Judge, Verdict
from srjudge.judges.registry import register_judge
from srjudge.metrics.noref import upsample_lr
from srjudge.readers.base import CLASSES, Reader, Reading, create_reader
from srjudge.spec import Spec

DEFAULT_W_CONSENSUS = 0.5
DEFAULT_W_LR = 0.5


@dataclass(frozen=True)
class ReadoutScores:
    """The formula's parts for N candidates (see the module docstring)."""

    scores: np.ndarray  # (N,) in [0, 1]; NaN where the candidate read nothing
    agree_consensus: np.ndarray  # (N,) <d_i, c>
    agree_lr: np.ndarray | None  # (N,) <d_i, d_lr>, None when the LR term is dropped
    consensus: np.ndarray  # (36,), zeros when no candidate read anything


def readout_scores(
    dists: np.ndarray,
    confidences: Sequence[float],
    lr_dist: np.ndarray | None,
    *,
    w_consensus: float = DEFAULT_W_CONSENSUS,
    w_lr: float = DEFAULT_W_LR,
) -> ReadoutScores:
    """Scores from per-candidate distributions ``dists`` (N, K), their confidences and the LR's (K,).

    A row of zeros means the candidate read nothing (its score is NaN); ``lr_dist`` None or all zeros
    drops the LR term.
    """
    d = np.asarray(dists, dtype=np.float64)
    conf = np.asarray(confidences, dtype=np.float64)
    if d.ndim != 2 or conf.shape != (d.shape[0],):
        raise ValueError(f"dists must be (N, K) with N confidences; got {d.shape} and {conf.shape}")
    mass = d.sum(axis=1)
    read = mass > 0
    weights = np.where(read, conf, 0.0)
    consensus = np.zeros(d.shape[1])
    if weights.sum() > 0:
        normalised = d[read] / mass[read, None]
        consensus = (weights[read, None] * normalised).sum(axis=0) / weights.sum()
    elif read.any():  # readings with zero confidence: an unweighted mean
        consensus = (d[read] / mass[read, None]).mean(axis=0)
    agree_c = d @ consensus
    use_lr = lr_dist is not None and float(np.sum(lr_dist)) > 0 and w_lr > 0
    agree_lr = d @ np.asarray(lr_dist, dtype=np.float64) if use_lr and lr_dist is not None else None
    if agree_lr is not None:
        scores = (w_consensus * agree_c + w_lr * agree_lr) / (w_consensus + w_lr)
    else:
        scores = agree_c.copy()
    scores = np.where(read, np.clip(scores, 0.0, 1.0), np.nan)
    return ReadoutScores(scores=scores, agree_consensus=agree_c, agree_lr=agree_lr, consensus=consensus)


def _describe(reading: Reading) -> str:
    return f"'{reading.label}' ({reading.confidence:.2f})" if reading.label is not None else "nothing"


class ReadoutJudge(CandidateSetJudge):
    """Candidates score by agreement of their reading with the candidates' consensus and the LR's reading."""

    def __init__(
        self,
        reader: Reader,
        *,
        w_consensus: float = DEFAULT_W_CONSENSUS,
        w_lr: float = DEFAULT_W_LR,
        reader_spec: str | None = None,
    ) -> None:
        """``reader_spec``: how the reader is written in this judge's spec (``vlm,backend=hf,model=...``)."""
        for key, value in (("w_consensus", w_consensus), ("w_lr", w_lr)):
            if not (value >= 0 and math.isfinite(value)):
                raise SpecError(f"readout {key} must be a finite number >= 0; got {value}.")
        if w_consensus + w_lr <= 0:
            raise SpecError("readout weights w_consensus and w_lr must not both be 0.")
        self.reader = reader
        self.w_consensus, self.w_lr = float(w_consensus), float(w_lr)
        shown = reader_spec or reader.spec
        extra = [
            f"{k}={v:g}"
            for k, v, default in (
                ("w_consensus", self.w_consensus, DEFAULT_W_CONSENSUS),
                ("w_lr", self.w_lr, DEFAULT_W_LR),
            )
            if v != default
        ]
        self.spec = "readout:" + ",".join([shown, *extra])
        self.config: dict[str, Any] = {
            "reader": reader.spec,
            "reader_config": dict(reader.config),
            "w_consensus": self.w_consensus,
            "w_lr": self.w_lr,
        }

    def readings(self, images: Sequence[np.ndarray], lr: np.ndarray) -> tuple[list[Reading], Reading]:
        """The reader's readings of the candidates and of the LR upsampled to their size (one call)."""
        for image in images:
            check_lr_scale(image, lr, "SR candidate", "LR input")
        up = upsample_lr(lr, images[0].shape[:2])
        read = self.reader.read([*images, up])
        return read[:-1], read[-1]

    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        if lr is None:
            raise SrjudgeError(
                "The readout judge compares each candidate's reading with the LR input's: give it (--lr)."
            )
        if not images:
            return []
        cand, lr_read = self.readings(images, lr)
        dists = np.stack([r.distribution() for r in cand])
        lr_dist = lr_read.distribution() if lr_read.label is not None else None
        parts = readout_scores(
            dists, [r.confidence for r in cand], lr_dist, w_consensus=self.w_consensus, w_lr=self.w_lr
        )
        top = int(np.argmax(parts.consensus))
        consensus_label = CLASSES[top] if parts.consensus.sum() > 0 else None
        consensus_note = (
            f"consensus '{consensus_label}' ({parts.consensus[top]:.2f})"
            if consensus_label
            else "no consensus"
        )
        lr_note = f"LR {_describe(lr_read)}"
        if lr_read.label is None:
            lr_note += f" ({lr_read.note or 'unreadable'}; LR term dropped)"
        elif parts.agree_lr is None and self.w_lr > 0:
            lr_note += " (no mass; LR term dropped)"
        verdicts = []
        for i, reading in enumerate(cand):
            if reading.label is None:
                verdicts.append(
                    self.abstention(
                        f"the reader read nothing: {reading.note or 'no label'}",
                        tags=("unreadable",),
                        rationale=f"reads nothing; {consensus_note}; {lr_note}",
                    )
                )
                continue
            value = float(parts.scores[i])
            if not math.isfinite(value):  # a label read with confidence 0: its distribution has no mass
                verdicts.append(
                    self.abstention(
                        (
                            f"the reader read '{reading.label}' with confidence "
                            f"{float(reading.confidence):g}: no evidence to score"
                        ),
                        tags=("unreadable", f"reads:{reading.label}"),
                        rationale=f"reads {_describe(reading)} with no weight; {consensus_note}; {lr_note}",
                    )
                )
                continue
            tags = [f"reads:{reading.label}"]
            if consensus_label is not None and reading.label != consensus_label:
                tags.append("consensus-outlier")
            if lr_read.label is not None and reading.label != lr_read.label:
                tags.append("semantic-change")
            components = {
                "agree_consensus": float(parts.agree_consensus[i]),
                "reader_confidence": float(reading.confidence),
                "consensus_share": float(parts.consensus[CLASSES.index(reading.label)]),
            }
            if parts.agree_lr is not None:
                components["agree_lr"] = float(parts.agree_lr[i])
                components["lr_confidence"] = float(lr_read.confidence)
            verdicts.append(
                self.verdict(
                    100.0 * value,
                    value,
                    confidence=float(reading.confidence),
                    tags=tuple(tags),
                    rationale=f"reads {_describe(reading)}; {consensus_note}; {lr_note}",
                    components=components,
                )
            )
        return verdicts


_WEIGHT_KEYS = ("w_consensus", "w_lr")


def readout_from_spec(spec: Spec) -> ReadoutJudge:
    """``readout:<reader>[,w_consensus=..][,w_lr=..][,<reader options>]``."""
    if spec.arg is None:
        raise SpecError(
            "readout names its reader first: readout:classifier, readout:ocr, readout:vlm,model=/path "
            "(readout:referee exists, but the testbed reserves the referee for grading)."
        )
    weights: dict[str, float] = {}
    reader_options = {}
    for key, raw in spec.options.items():
        if key in _WEIGHT_KEYS:
            try:
                weights[key] = float(raw)
            except ValueError:
                raise SpecError(f"Option {key}={raw!r} for judge 'readout' is not a valid float.") from None
        else:
            reader_options[key] = raw
    reader_name = spec.arg.strip().lower()
    if reader_name == "vlm":
        reader_options = {"backend": reader_options.pop("backend", "hf"), **reader_options}
    shown = ",".join([reader_name, *(f"{k}={v}" for k, v in reader_options.items())])
    return ReadoutJudge(create_reader(Spec(reader_name, None, reader_options)), reader_spec=shown, **weights)


@register_judge(
    "readout",
    "Read-out (diffusion-SR selection paper): a reader (classifier, ocr, vlm) reads each candidate; "
    "score = agreement with the candidates' consensus reading and with the LR input's reading; "
    "other options go to the reader.",
    options={"w_consensus": (float, DEFAULT_W_CONSENSUS), "w_lr": (float, DEFAULT_W_LR)},
    needs_lr=True,
)
def _make_readout(spec: Spec) -> Judge:
    return readout_from_spec(spec)
