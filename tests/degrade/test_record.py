"""DegradationRecord: JSON round trip, malformed input, immutability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srjudge.degrade import DegradationRecord, degrade
from srjudge.errors import SpecError
from tests.degrade.helpers import PIPELINE_NAMES


def test_record_json_round_trip(hr: np.ndarray) -> None:
    for pipeline in PIPELINE_NAMES:
        _, record = degrade(hr[:95], pipeline, 4, seed=21, crop=True)
        text = record.to_json()
        back = DegradationRecord.from_json(text)
        assert back == record
        assert back.to_json() == text
        parsed = json.loads(text)
        assert parsed["pipeline"] == pipeline and parsed["scale"] == 4 and parsed["seed"] == 21
        assert parsed["input_size"] == [95, 120] and parsed["output_size"] == [23, 30]
        assert parsed["version"]
        assert record.cropped


def test_record_rejects_malformed_json() -> None:
    with pytest.raises(SpecError):
        DegradationRecord.from_json("{not json")
    with pytest.raises(SpecError, match="missing"):
        DegradationRecord.from_dict({"pipeline": "bicubic"})


def test_record_is_frozen(hr: np.ndarray) -> None:
    _, record = degrade(hr, "bicubic", 2)
    with pytest.raises(AttributeError):
        record.seed = 3  # type: ignore[misc]
