"""Constants shared by the degradation tests."""

from __future__ import annotations

PIPELINE_NAMES = ("realesrgan", "face", "bicubic")
