"""Degradation synthesis: make LR inputs from HR images, seeded, recorded and replayable.

::

    from srjudge.degrade import degrade, replay, DegradationRecord

    lr, record = degrade(hr, pipeline="realesrgan", scale=4, seed=7)
    same = replay(hr, DegradationRecord.from_json(record.to_json()))   # byte-identical to lr

Pipelines (:data:`PIPELINES`): ``realesrgan`` (second-order Real-ESRGAN degradation), ``face`` (milder
one-stage), ``bicubic`` (MATLAB imresize). Pure functions take arrays; :func:`degrade_folder` does the
file work (LR PNGs, JSON sidecars, a resumable run CSV).
"""

from __future__ import annotations

from srjudge.degrade.core import SCALES, ReplayVersionWarning, degrade, replay, sample_record
from srjudge.degrade.kernels import make_kernel
from srjudge.degrade.ops import EncoderMismatchWarning
from srjudge.degrade.pipelines import PIPELINES, Pipeline
from srjudge.degrade.record import DegradationRecord
from srjudge.degrade.run import DegradeSummary, FolderItem, degrade_folder, derive_seed

__all__ = [
    "PIPELINES",
    "SCALES",
    "DegradationRecord",
    "DegradeSummary",
    "EncoderMismatchWarning",
    "FolderItem",
    "Pipeline",
    "ReplayVersionWarning",
    "degrade",
    "degrade_folder",
    "derive_seed",
    "make_kernel",
    "replay",
    "sample_record",
]
