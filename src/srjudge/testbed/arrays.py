"""Testbed items made in memory: HR glyphs rendered and degraded, as arrays (for training and the builder)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.degrade.ops import apply_steps
from srjudge.errors import SpecError
from srjudge.testbed.glyphs import GlyphParams, draw_glyph, sample_glyph_params
from srjudge.testbed.items import (
    ItemSpec,
    TestbedConfig,
    check_split,
    digit_to_lr,
    digits_raw,
    font_specs,
)
from srjudge.testbed.severity import check_severity, plan_severity, record_dict


@dataclass(frozen=True)
class GeneratedItem:
    """One item with its arrays (HR None for sklearn digits) and its record; nothing on disk."""

    spec: ItemSpec
    hr: np.ndarray | None
    lr: np.ndarray
    record: dict[str, Any]


def render_spec_glyph(spec: ItemSpec, config: TestbedConfig) -> tuple[np.ndarray, GlyphParams]:
    """The HR glyph of a font item (shared by its severities) and its drawn parameters."""
    params = sample_glyph_params(np.random.default_rng(spec.glyph_seed), config.jitter)
    assert spec.face is not None
    return draw_glyph(spec.label, spec.face, params, size=config.hr_size), params


def generate_items(
    specs: Iterator[ItemSpec], config: TestbedConfig, *, records: bool = True
) -> Iterator[GeneratedItem]:
    """Make the arrays of each spec; consecutive severities of one glyph share its rendering.

    ``records=False`` (in-memory training data) runs the same sampled steps through the same executor
    but skips building record dicts (the LR bytes are identical; ``record`` is then empty).
    """
    key: tuple[str, str, str, int] | None = None
    hr: np.ndarray | None = None
    params: GlyphParams | None = None
    for spec in specs:
        if spec.source == "sklearn-digits":
            import sklearn  # type: ignore[import-untyped]

            record = {
                "pipeline": "sklearn-digits",
                "index": spec.digit_index,
                "conversion": "lr = 1 - value/16 (8x8, values 0..16), rounded to 8-bit, gray to RGB",
                "sklearn_version": sklearn.__version__,
                "note": "real handwriting: 32x32 bitmaps counted in 4x4 blocks by the dataset; no HR",
            }
            yield GeneratedItem(spec, None, digit_to_lr(digits_raw()[0][spec.digit_index]), record)
            continue
        if spec.glyph_key != key or hr is None or params is None:
            hr, params = render_spec_glyph(spec, config)
            key = spec.glyph_key
        if not records:
            steps = plan_severity(np.random.default_rng(spec.seed), spec.severity, hr.shape[:2], 4)
            yield GeneratedItem(spec, hr, apply_steps(hr, steps), {})
            continue
        glyph = {
            "char": spec.label,
            "face": spec.face,
            "copy": spec.copy,
            "glyph_seed": spec.glyph_seed,
            "size": config.hr_size,
            "params": params.to_dict(),
        }
        rec = record_dict(hr.shape[:2], spec.severity, spec.seed, extra={"glyph": glyph})
        # the executor replay() runs, on the record's own steps (sizes are fixed by record_dict)
        yield GeneratedItem(spec, hr, apply_steps(hr, rec["steps"]), rec)


@dataclass(frozen=True)
class GlyphArrays:
    """A split's font items in memory: ``hr`` (N, 32, 32, 3) and ``lr`` (N, 8, 8, 3) float32 in [0, 1]
    at 8-bit levels, dark ink on light paper; ``labels``, ``severities`` (int array), ``faces``, ``ids``."""

    hr: np.ndarray
    lr: np.ndarray
    labels: tuple[str, ...]
    severities: np.ndarray
    faces: tuple[str, ...]
    ids: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.hr.shape[0])


def iter_glyph_items(
    config: TestbedConfig,
    split: str,
    *,
    severities: Sequence[int | str] | None = None,
    copies: int | None = None,
    records: bool = True,
) -> Iterator[GeneratedItem]:
    """Font items of ``split`` one at a time (``copies=None``: an endless stream, for training).

    ``records=False`` skips the record dicts (faster; same arrays)."""
    check_split(split)
    if not config.faces_of(split):
        raise SpecError(f"split {split!r} has no font faces in this config; give TestbedConfig.{split}_faces")
    sev = config.severities if severities is None else tuple(check_severity(s) for s in severities)
    if not sev:
        raise SpecError("severities must not be empty")
    return generate_items(font_specs(config, split, sev, copies), config, records=records)


def glyph_arrays(
    config: TestbedConfig,
    split: str,
    *,
    count: int | None = None,
    severities: Sequence[int | str] | None = None,
) -> GlyphArrays:
    """The first ``count`` font items of ``split`` (default: the config's, as :func:`build_testbed` writes).

    Items are ordered copy -> face -> class -> severity, so any prefix is balanced over faces and
    classes to within one block. Memory: about 12.5 KB per item.
    """
    sev = config.severities if severities is None else tuple(check_severity(s) for s in severities)
    if count is None:
        count = config.copies_of(split) * len(config.faces_of(split)) * len(config.classes) * len(sev)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SpecError(f"count must be an integer >= 0, got {count!r}")
    n = int(count)
    hr = np.zeros((n, config.hr_size, config.hr_size, 3), np.float32)
    lr = np.zeros((n, config.hr_size // 4, config.hr_size // 4, 3), np.float32)
    labels: list[str] = []
    faces: list[str] = []
    ids: list[str] = []
    sevs = np.zeros(n, np.int64)
    if n:
        for i, item in enumerate(iter_glyph_items(config, split, severities=sev, records=False)):
            assert item.hr is not None and item.spec.face is not None
            hr[i], lr[i], sevs[i] = item.hr, item.lr, item.spec.severity
            labels.append(item.spec.label)
            faces.append(item.spec.face)
            ids.append(item.spec.id)
            if i + 1 == n:
                break
    return GlyphArrays(
        hr=hr, lr=lr, labels=tuple(labels), severities=sevs, faces=tuple(faces), ids=tuple(ids)
    )
