"""The glyph testbed: seeded HR glyphs, LR inputs at four severities, splits by font face, on-disk builder.

Pure part (arrays only): :func:`degrade_glyph` (HR 32x32 -> LR 8x8 with srjudge's own degradation ops at
one severity, returning a replayable :class:`~srjudge.degrade.DegradationRecord` dict),
:func:`glyph_arrays` (a split's items in memory, for training), :func:`digits_lr` (scikit-learn's
8x8 handwritten digits as LR inputs). File part: :func:`build_testbed` writes ``hr/<id>.png``,
``lr/<id>.png``, ``items.jsonl`` (streamed, one row per item) and ``manifest.json``; it is idempotent and
resumes an interrupted build; :func:`load_manifest` reads a folder back and verifies it.

Every item is fixed by the config's seed and its position: glyph seeds and degradation seeds are derived
by SHA-256 from ``(config.seed, split, face, class, copy)`` and the item id, never from a shared stream.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srjudge import atomic
from srjudge.degrade.core import as_float_image, check_seed, replay
from srjudge.degrade.ops import JPEG_ENCODER, apply_steps
from srjudge.degrade.record import SCHEMA as RECORD_SCHEMA
from srjudge.degrade.record import DegradationRecord, Step
from srjudge.errors import ImageError, SpecError, SrjudgeError
from srjudge.images.io import load_image, to_uint8
from srjudge.provenance import Provenance, config_hash
from srjudge.testbed.glyphs import (
    CLASSES,
    GlyphParams,
    Jitter,
    check_char,
    draw_glyph,
    get_face,
    sample_glyph_params,
)

SEVERITIES = ("clean", "mild", "moderate", "severe")
"""Severity names; an item's ``severity`` is the index into this tuple."""

SPLITS = ("train", "val", "test")

SOURCES = ("font", "sklearn-digits")

MANIFEST_FORMAT = "srjudge-testbed"
MANIFEST_SCHEMA = 1

TRAIN_FACES = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSansMono",
    "DejaVuSansMono-Oblique",
    "DejaVuSansMono-BoldOblique",
)
VAL_FACES = ("DejaVuSerif-BoldItalic",)
TEST_FACES = ("DejaVuSans-BoldOblique", "DejaVuSerif-Italic", "DejaVuSansMono-Bold")
"""Default split by font face: every family's regular face is in train; val and test faces are held out."""


class TestbedError(SrjudgeError):
    """A testbed folder is missing, incomplete, changed, or was built with another config."""

    __test__ = False


# --------------------------------------------------------------------------------------------------
# Severities: step plans built from srjudge.degrade's primitives (blur, bicubic, noise, jpeg, quantise)


@dataclass(frozen=True)
class SeveritySpec:
    """Ranges one severity draws from. Blur sigmas in HR pixels, noise sigma in 0..255 units.

    The plan is: optional Gaussian blur (``aniso`` draws sigma_x, sigma_y and an angle independently),
    MATLAB bicubic x4 (the ``bicubic`` op), optional gray Gaussian noise, optional JPEG, 8-bit quantise.
    """

    name: str
    blur_sigma: tuple[float, float] | None = None
    blur_aniso: bool = False
    blur_size: int = 7
    noise_sigma: tuple[float, float] | None = None
    jpeg_quality: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blur_sigma": None if self.blur_sigma is None else list(self.blur_sigma),
            "blur_aniso": self.blur_aniso,
            "blur_size": self.blur_size,
            "noise_sigma": None if self.noise_sigma is None else list(self.noise_sigma),
            "jpeg_quality": None if self.jpeg_quality is None else list(self.jpeg_quality),
        }


SEVERITY_SPECS: tuple[SeveritySpec, ...] = (
    SeveritySpec("clean"),
    SeveritySpec("mild", blur_sigma=(0.5, 1.0), blur_size=7, noise_sigma=(1.0, 4.0)),
    SeveritySpec(
        "moderate",
        blur_sigma=(1.0, 1.8),
        blur_aniso=True,
        blur_size=11,
        noise_sigma=(4.0, 10.0),
        jpeg_quality=(60, 85),
    ),
    SeveritySpec(
        "severe",
        blur_sigma=(1.6, 2.4),
        blur_aniso=True,
        blur_size=15,
        noise_sigma=(7.0, 14.0),
        jpeg_quality=(30, 55),
    ),
)
"""The four severities (index = ``severity``)."""


def check_severity(severity: Any) -> int:
    """Validate a severity: an int 0..3 or one of the names in :data:`SEVERITIES`."""
    if isinstance(severity, str):
        key = severity.strip().lower()
        if key in SEVERITIES:
            return SEVERITIES.index(key)
        raise SpecError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)} (or 0..3)")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise SpecError(f"severity must be an int 0..3 or a name ({', '.join(SEVERITIES)}), got {severity!r}")
    if not 0 <= int(severity) < len(SEVERITIES):
        raise SpecError(f"severity must be in 0..{len(SEVERITIES) - 1}, got {severity!r}")
    return int(severity)


def plan_severity(
    rng: np.random.Generator, severity: int, hr_size: tuple[int, int], scale: int = 4
) -> list[Step]:
    """The degradation steps of one severity for an HR image of ``hr_size``; draws only from ``rng``."""
    spec = SEVERITY_SPECS[check_severity(severity)]
    lr = [hr_size[0] // scale, hr_size[1] // scale]
    steps: list[Step] = []
    if spec.blur_sigma is not None:
        lo, hi = spec.blur_sigma
        sx = float(rng.uniform(lo, hi))
        if spec.blur_aniso:
            sy, theta = float(rng.uniform(lo, hi)), float(rng.uniform(-math.pi, math.pi))
            kernel = "aniso"
        else:
            sy, theta, kernel = sx, 0.0, "iso"
        steps.append(
            {
                "name": "blur",
                "op": "blur",
                "kernel": kernel,
                "size": spec.blur_size,
                "sigma_x": sx,
                "sigma_y": sy,
                "theta": theta,
            }
        )
    steps.append({"name": "bicubic", "op": "bicubic", "size": lr})
    if spec.noise_sigma is not None:
        steps.append(
            {
                "name": "noise",
                "op": "noise",
                "type": "gaussian",
                "sigma": float(rng.uniform(*spec.noise_sigma)),
                "gray": True,
                "noise_seed": int(rng.integers(0, 2**63 - 1)),
            }
        )
    if spec.jpeg_quality is not None:
        q = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
        steps.append(
            {"name": "jpeg", "op": "jpeg", "quality": q, "encoder": JPEG_ENCODER, "subsampling": "4:2:0"}
        )
    steps.append({"name": "quantise", "op": "quantise", "bits": 8})
    return steps


def record_dict(
    hr_size: tuple[int, int], severity: int, seed: int, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Sample one severity's complete record for an HR image of ``hr_size``, as a JSON-ready dict.

    The dict has exactly the layout of :meth:`DegradationRecord.to_dict` (so ``from_dict`` reads it and
    :func:`srjudge.degrade.replay` replays it); built directly because it is made once per item.
    """
    from srjudge import __version__

    severity, seed = check_severity(severity), check_seed(seed)
    h, w = int(hr_size[0]), int(hr_size[1])
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise ImageError(f"testbed HR images must be at least 8x8 and a multiple of 4 in size, got {h}x{w}")
    return {
        "schema": RECORD_SCHEMA,
        "pipeline": f"testbed-{SEVERITIES[severity]}",
        "scale": 4,
        "seed": seed,
        "input_size": [h, w],
        "output_size": [h // 4, w // 4],
        "version": __version__,
        "source": None,
        "source_sha256": None,
        "extra": {"testbed_severity": severity, "severity_name": SEVERITIES[severity], **dict(extra or {})},
        "steps": plan_severity(np.random.default_rng(seed), severity, (h, w), 4),
    }


def degradation_record(
    hr_size: tuple[int, int], severity: int, seed: int, *, extra: Mapping[str, Any] | None = None
) -> DegradationRecord:
    """Sample the complete record of one severity for an HR image of ``hr_size`` (no pixels touched)."""
    return DegradationRecord.from_dict(record_dict(hr_size, severity, seed, extra=extra))


def degrade_glyph(hr: np.ndarray, severity: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """HR glyph (H, W, 3) -> LR (H/4, W/4, 3) float32 at 8-bit levels, and its record as a dict.

    The record is a :class:`~srjudge.degrade.DegradationRecord` dict; ``replay_glyph(hr, record)`` (or
    ``srjudge.degrade.replay(hr, DegradationRecord.from_dict(record))``) reproduces the LR byte for byte.
    """
    image = as_float_image(hr)
    record = degradation_record(image.shape[:2], severity, seed)
    return replay(image, record), record.to_dict()


def replay_glyph(hr: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """Re-run a recorded degradation (a record dict from :func:`degrade_glyph` or a testbed item)."""
    return replay(as_float_image(hr), DegradationRecord.from_dict(record))


# --------------------------------------------------------------------------------------------------
# Config and item enumeration


def derive_seed(base_seed: int, name: str) -> int:
    """A stable 63-bit seed from the config seed and a name (SHA-256; independent of enumeration order)."""
    digest = hashlib.sha256(f"srjudge.testbed:{int(base_seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _str_tuple(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"TestbedConfig.{what} must be a list of names, got {value!r}")
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class TestbedConfig:
    """What a testbed holds. Splits are by font face (disjoint face sets) and by seed.

    ``<split>_copies``: jittered glyphs per (class, face) in that split; each glyph appears once at
    every severity in ``severities``. ``splits``: the splits :func:`build_testbed` writes.
    scikit-learn digits (LR only) go to val when ``index % sklearn_val_every == 0``, else to test;
    ``sklearn_limit`` keeps only the first N digits (for tiny builds).
    """

    __test__ = False

    seed: int = 0
    hr_size: int = 32
    scale: int = 4
    train_faces: tuple[str, ...] = TRAIN_FACES
    val_faces: tuple[str, ...] = VAL_FACES
    test_faces: tuple[str, ...] = TEST_FACES
    train_copies: int = 1
    val_copies: int = 2
    test_copies: int = 1
    severities: tuple[int, ...] = (0, 1, 2, 3)
    classes: str = CLASSES
    splits: tuple[str, ...] = SPLITS
    include_sklearn_digits: bool = True
    sklearn_val_every: int = 3
    sklearn_limit: int | None = 120
    jitter: Jitter = field(default_factory=Jitter)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.hr_size != 32 or self.scale != 4:
            raise SpecError(
                f"the glyph testbed is defined at HR 32x32 -> LR 8x8 (hr_size=32, scale=4); "
                f"got hr_size={self.hr_size!r}, scale={self.scale!r}"
            )
        seen: dict[str, str] = {}
        for split in SPLITS:
            names = tuple(
                get_face(n).name for n in _str_tuple(getattr(self, f"{split}_faces"), f"{split}_faces")
            )
            object.__setattr__(self, f"{split}_faces", names)
            for name in names:
                if name in seen:
                    raise SpecError(
                        f"font face {name!r} is in both {seen[name]} and {split}; "
                        "splits must not share a face"
                    )
                seen[name] = split
            copies = getattr(self, f"{split}_copies")
            if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
                raise SpecError(f"TestbedConfig.{split}_copies must be an integer >= 0, got {copies!r}")
        if isinstance(self.severities, str) or not isinstance(self.severities, Sequence):
            raise SpecError(
                f"TestbedConfig.severities must be a list of 0..3 or names, got {self.severities!r}"
            )
        sev = tuple(check_severity(s) for s in self.severities)
        if not sev or len(set(sev)) != len(sev):
            raise SpecError(
                f"TestbedConfig.severities must be distinct values of 0..3, got {self.severities!r}"
            )
        object.__setattr__(self, "severities", sev)
        classes = str(self.classes)
        for c in classes:
            check_char(c)
        if not classes or len(set(classes)) != len(classes):
            raise SpecError(f"TestbedConfig.classes must be distinct symbols of {CLASSES!r}, got {classes!r}")
        splits = _str_tuple(self.splits, "splits")
        bad = [s for s in splits if s not in SPLITS]
        if bad or len(set(splits)) != len(splits):
            raise SpecError(
                f"TestbedConfig.splits must be distinct names of {', '.join(SPLITS)}, got {splits!r}"
            )
        object.__setattr__(self, "splits", splits)
        if (
            isinstance(self.sklearn_val_every, bool)
            or not isinstance(self.sklearn_val_every, int)
            or (self.sklearn_val_every < 1)
        ):
            raise SpecError(
                f"TestbedConfig.sklearn_val_every must be an integer >= 1, got {self.sklearn_val_every!r}"
            )
        if self.sklearn_limit is not None and (
            not isinstance(self.sklearn_limit, int) or self.sklearn_limit < 0
        ):
            raise SpecError(
                f"TestbedConfig.sklearn_limit must be None or an integer >= 0, got {self.sklearn_limit!r}"
            )
        if not isinstance(self.jitter, Jitter):
            raise SpecError(f"TestbedConfig.jitter must be a Jitter, got {type(self.jitter).__name__}")

    def faces_of(self, split: str) -> tuple[str, ...]:
        """Font face names of ``split``."""
        return tuple(getattr(self, f"{check_split(split)}_faces"))

    def copies_of(self, split: str) -> int:
        return int(getattr(self, f"{check_split(split)}_copies"))

    def split_of_face(self, face: str) -> str | None:
        """The split a face belongs to, None if it is in none."""
        name = get_face(face).name
        return next((s for s in SPLITS if name in self.faces_of(s)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "hr_size": self.hr_size,
            "scale": self.scale,
            "train_faces": list(self.train_faces),
            "val_faces": list(self.val_faces),
            "test_faces": list(self.test_faces),
            "train_copies": self.train_copies,
            "val_copies": self.val_copies,
            "test_copies": self.test_copies,
            "severities": list(self.severities),
            "classes": self.classes,
            "splits": list(self.splits),
            "include_sklearn_digits": self.include_sklearn_digits,
            "sklearn_val_every": self.sklearn_val_every,
            "sklearn_limit": self.sklearn_limit,
            "jitter": self.jitter.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestbedConfig:
        if not isinstance(data, Mapping):
            raise SpecError(f"testbed config must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"testbed config: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "jitter":
                kwargs[key] = Jitter.from_dict(dict(value))
            elif isinstance(value, list):
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def hash(self) -> str:
        """Short stable hash of :meth:`to_dict`."""
        return config_hash(self.to_dict())


def check_split(split: Any) -> str:
    if split not in SPLITS:
        raise SpecError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return str(split)


@dataclass(frozen=True)
class ItemSpec:
    """Where an item comes from, before any pixel is made (cheap to enumerate)."""

    id: str
    split: str
    source: str
    label: str
    face: str | None
    seed: int
    severity: int
    copy: int = 0
    glyph_seed: int = 0
    digit_index: int = -1

    @property
    def glyph_key(self) -> tuple[str, str, str, int]:
        return (self.split, self.face or "", self.label, self.copy)


def _font_specs(
    config: TestbedConfig, split: str, severities: Sequence[int], copies: int | None
) -> Iterator[ItemSpec]:
    """Font items of ``split`` (``copies=None``: unbounded).

    Order: copy, then ``rotation`` r over the faces, then class c with face ``(c + r) % n_faces``, then
    severity. Each (rotation, copy) block covers every class once with faces rotating, so any prefix is
    balanced over classes and faces to within one glyph each.
    """
    faces = config.faces_of(split)
    counter = itertools.count() if copies is None else range(copies)
    for copy in counter:
        for rotation in range(len(faces)):
            for c, char in enumerate(config.classes):
                face = faces[(c + rotation) % len(faces)]
                glyph_seed = derive_seed(config.seed, f"glyph/{split}/{face}/{char}/{copy}")
                for severity in severities:
                    item_id = f"{split}_{face}_{char}_{copy:04d}_s{severity}"
                    yield ItemSpec(
                        id=item_id,
                        split=split,
                        source="font",
                        label=char,
                        face=face,
                        seed=derive_seed(config.seed, f"degrade/{item_id}"),
                        severity=severity,
                        copy=copy,
                        glyph_seed=glyph_seed,
                    )


def sklearn_split(index: int, config: TestbedConfig) -> str:
    """The split of scikit-learn digit ``index``: val when ``index % sklearn_val_every == 0``, else test."""
    return "val" if index % config.sklearn_val_every == 0 else "test"


def _digit_specs(config: TestbedConfig, split: str, n_digits: int) -> Iterator[ItemSpec]:
    labels = _digits_raw()[1]
    n = min(n_digits, config.sklearn_limit) if config.sklearn_limit is not None else n_digits
    for index in range(n):
        if sklearn_split(index, config) == split:
            yield ItemSpec(
                id=f"{split}_digits_{index:04d}",
                split=split,
                source="sklearn-digits",
                label=str(int(labels[index])),
                face=None,
                seed=0,
                severity=0,
                digit_index=index,
            )


def item_specs(config: TestbedConfig) -> Iterator[ItemSpec]:
    """Every item :func:`build_testbed` writes, in order: per split, font items then sklearn digits."""
    for split in config.splits:
        yield from _font_specs(config, split, config.severities, config.copies_of(split))
        if config.include_sklearn_digits:
            yield from _digit_specs(config, split, len(_digits_raw()[1]))


# --------------------------------------------------------------------------------------------------
# Pure generation


_DIGITS: tuple[np.ndarray, np.ndarray] | None = None


def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits (values 0..16, ink high) and labels; bundled with scikit-learn."""
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]

        data = load_digits()
        _DIGITS = (np.asarray(data.images, dtype=np.float64), np.asarray(data.target, dtype=np.int64))
    return _DIGITS


def digit_to_lr(values: np.ndarray) -> np.ndarray:
    """One sklearn digit (8x8, 0..16, ink high) -> LR RGB ``1 - value/16`` (dark ink), at 8-bit levels."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (8, 8):
        raise ImageError(f"a scikit-learn digit is 8x8, got shape {arr.shape}")
    gray = np.round(np.clip(1.0 - arr / 16.0, 0.0, 1.0) * 255.0).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2), dtype=np.float32)


@dataclass(frozen=True)
class DigitArrays:
    """scikit-learn digits as LR inputs: ``lr`` (N, 8, 8, 3) float32, ``labels`` ('0'..'9'), ``indices``."""

    lr: np.ndarray
    labels: tuple[str, ...]
    indices: np.ndarray


def digits_lr(split: str | None = None, config: TestbedConfig | None = None) -> DigitArrays:
    """scikit-learn's handwritten digits converted to LR inputs; ``split`` ('val'/'test') filters by index.

    They have no HR: use them as val/test material for LR-only evaluation (never for training here).
    """
    images, labels = _digits_raw()
    cfg = config or TestbedConfig()
    if split is not None:
        check_split(split)
    idx = [i for i in range(len(labels)) if split is None or sklearn_split(i, cfg) == split]
    if cfg.sklearn_limit is not None:
        idx = [i for i in idx if i < cfg.sklearn_limit]
    lr = np.stack([digit_to_lr(images[i]) for i in idx]) if idx else np.zeros((0, 8, 8, 3), np.float32)
    return DigitArrays(
        lr=lr, labels=tuple(str(int(labels[i])) for i in idx), indices=np.asarray(idx, np.int64)
    )


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


def _generate(
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
            yield GeneratedItem(spec, None, digit_to_lr(_digits_raw()[0][spec.digit_index]), record)
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
    return _generate(_font_specs(config, split, sev, copies), config, records=records)


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


# --------------------------------------------------------------------------------------------------
# Manifest and items


@dataclass(frozen=True)
class TestbedItem:
    """One LR input of a built testbed (paths are absolute; ``record`` replays the LR from the HR).

    ``seed``: the item's degradation seed (0 for sklearn digits); the glyph's own seed and drawn
    parameters are in ``record['extra']['glyph']``. ``severity`` is 0 for sklearn digits (no synthetic
    degradation; ``source`` tells them apart).
    """

    __test__ = False

    id: str
    split: str
    source: str
    label: str
    face: str | None
    seed: int
    severity: int
    lr_path: Path
    hr_path: Path | None
    record: dict[str, Any]
    lr_sha256: str = ""
    hr_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A built testbed: its folder, config, items in order, counts and data digest."""

    folder: Path
    config: TestbedConfig
    items: tuple[TestbedItem, ...]
    counts: dict[str, Any]
    digest: str
    version: str
    data: dict[str, Any] = field(default_factory=dict)

    def lr(self, item: TestbedItem) -> np.ndarray:
        """The item's LR image, float32 (8, 8, 3)."""
        return load_image(item.lr_path)

    def hr(self, item: TestbedItem) -> np.ndarray | None:
        """The item's HR image, float32 (32, 32, 3), or None for LR-only items."""
        return None if item.hr_path is None else load_image(item.hr_path)

    def select(
        self, *, split: str | None = None, source: str | None = None, severity: int | None = None
    ) -> tuple[TestbedItem, ...]:
        """Items matching every given filter, in manifest order."""
        return tuple(
            it
            for it in self.items
            if (split is None or it.split == split)
            and (source is None or it.source == source)
            and (severity is None or it.severity == severity)
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def _row(gen: GeneratedItem, lr_sha: str, hr_sha: str | None) -> dict[str, Any]:
    s = gen.spec
    return {
        "id": s.id,
        "split": s.split,
        "source": s.source,
        "label": s.label,
        "face": s.face,
        "seed": s.seed,
        "severity": s.severity,
        "lr": f"lr/{s.id}.png",
        "hr": None if gen.hr is None else f"hr/{s.id}.png",
        "lr_sha256": lr_sha,
        "hr_sha256": hr_sha,
        "record": gen.record,
    }


def _row_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), allow_nan=False)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a float RGB image as 8-bit RGB PNG bytes (the same bytes srjudge's ``save_png`` writes)."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_split: dict[str, int] = {}
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        by_split[r["split"]] = by_split.get(r["split"], 0) + 1
        sev = SEVERITIES[int(r["severity"])] if r["source"] == "font" else "none"
        inner = nested.setdefault(r["split"], {}).setdefault(r["source"], {})
        inner[sev] = inner.get(sev, 0) + 1
    return {"total": len(rows), "by_split": by_split, "by_split_source_severity": nested}


def _environment() -> dict[str, Any]:
    import cv2
    import PIL
    import sklearn
    from PIL import features

    return {
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "freetype": features.version("freetype2"),
        "opencv": cv2.__version__,
        "jpeg_encoder": JPEG_ENCODER,
        "scikit-learn": sklearn.__version__,
    }


# --------------------------------------------------------------------------------------------------
# File I/O


ProgressFn = Callable[[int, int], None]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TestbedError(
            f"{path}: cannot read it as JSON ({exc}). Rebuild the testbed in a new folder."
        ) from None
    if not isinstance(data, dict):
        raise TestbedError(f"{path}: expected a JSON object. Rebuild the testbed in a new folder.")
    return data


def _read_rows(path: Path, *, repair: bool) -> list[dict[str, Any]]:
    """Complete rows of items.jsonl; a torn last line is cut off when ``repair`` (resume), else an error."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    good = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                break
            if not isinstance(row, dict):
                break
            rows.append(row)
            good += len(raw)
    if good != path.stat().st_size:
        if not repair:
            raise TestbedError(
                f"{path}: line {len(rows) + 1} is incomplete or not JSON. Rebuild the testbed."
            )
        with path.open("r+b") as fh:
            fh.truncate(good)
    return rows


def _file_ok(path: Path, sha: str | None) -> bool:
    return sha is not None and path.is_file() and _sha(path.read_bytes()) == sha


def build_testbed(
    config: TestbedConfig, out_dir: str | os.PathLike[str], *, progress: ProgressFn | None = None
) -> Manifest:
    """Write the testbed of ``config`` to ``out_dir``; idempotent and resumable.

    A folder holding a (partial) build of another config is refused with a :class:`TestbedError`.
    Rows of ``items.jsonl`` are appended as items are written; on a rerun, rows whose PNGs exist with the
    recorded SHA-256 are kept, missing or damaged PNGs are rewritten, and the build continues after the
    last complete row. ``progress(done, total)`` is called as items are checked or written.
    """
    from srjudge import __version__

    if not isinstance(config, TestbedConfig):
        raise SpecError(f"build_testbed needs a TestbedConfig, got {type(config).__name__}")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise TestbedError(f"{folder}: exists and is not a folder; choose a folder path for the testbed.")
    manifest_path, state_path, items_path = (
        folder / "manifest.json",
        folder / "build.json",
        folder / "items.jsonl",
    )
    cfg = config.to_dict()
    for marker in (manifest_path, state_path):
        if marker.exists():
            other = _read_json(marker).get("config")
            if other != cfg:
                raise TestbedError(
                    f"{folder} holds a testbed built with a different config (hash "
                    f"{config_hash(other) if isinstance(other, dict) else '?'}, this one {config.hash()}). "
                    "Build into a new folder, or delete this one first."
                )
    if folder.is_dir() and not manifest_path.exists() and not state_path.exists() and any(folder.iterdir()):
        raise TestbedError(
            f"{folder} is not empty and holds no testbed build; build into a new or empty folder."
        )
    (folder / "hr").mkdir(parents=True, exist_ok=True)
    (folder / "lr").mkdir(parents=True, exist_ok=True)
    if not state_path.exists():
        atomic.write_bytes(state_path, json.dumps({"config": cfg, "version": __version__}, indent=2).encode())
    manifest_path.unlink(missing_ok=True)

    rows = _read_rows(items_path, repair=True)
    specs = list(item_specs(config))
    total = len(specs)
    if len(rows) > total:
        raise TestbedError(
            f"{items_path} has {len(rows)} rows, more than the {total} this config makes. Use a new folder."
        )
    for i, row in enumerate(rows):
        if row.get("id") != specs[i].id:
            raise TestbedError(
                f"{items_path}: row {i + 1} is {row.get('id')!r}, expected {specs[i].id!r}. Use a new folder."
            )
    # the indices whose files must be (re)made: rows present with damaged files, and all rows not yet written
    todo = [
        i
        for i, row in enumerate(rows)
        if not _file_ok(folder / row["lr"], row.get("lr_sha256"))
        or (row.get("hr") is not None and not _file_ok(folder / row["hr"], row.get("hr_sha256")))
    ]
    todo += list(range(len(rows), total))
    done = total - len(todo)
    by_id = {r["id"]: r for r in rows}
    if progress is not None:
        progress(done, total)
    with items_path.open("a", encoding="utf-8") as out:
        last_hr: tuple[np.ndarray | None, bytes | None] = (None, None)
        for gen in _generate((specs[i] for i in todo), config):
            lr_png = png_bytes(gen.lr)
            if gen.hr is not None and gen.hr is not last_hr[0]:
                last_hr = (gen.hr, png_bytes(gen.hr))  # a glyph's severities share one HR array
            hr_png = None if gen.hr is None else last_hr[1]
            row = _row(gen, _sha(lr_png), None if hr_png is None else _sha(hr_png))
            (folder / row["lr"]).write_bytes(lr_png)
            if hr_png is not None:
                (folder / row["hr"]).write_bytes(hr_png)
            existing = by_id.get(gen.spec.id)
            if existing is None:
                out.write(_row_line(row) + "\n")
                out.flush()
                rows.append(row)
                by_id[row["id"]] = row
            elif existing != row:
                raise TestbedError(
                    f"item {gen.spec.id}: regenerating it gave different content than {items_path} records "
                    "(another library version?). Build into a new folder."
                )
            done += 1
            if progress is not None and (done % 256 == 0 or done == total):
                progress(done, total)
    digest = _digest(folder, rows)
    data = {
        "format": MANIFEST_FORMAT,
        "schema": MANIFEST_SCHEMA,
        "config": cfg,
        "config_hash": config.hash(),
        "counts": _counts(rows),
        "digest": digest,
        "items_file": "items.jsonl",
        "version": __version__,
        "provenance": Provenance.of("testbed-data", cfg).to_dict(),
        "severities": [s.to_dict() for s in SEVERITY_SPECS],
        "split_faces": {s: list(config.faces_of(s)) for s in SPLITS},
        "environment": _environment(),
    }
    atomic.write_bytes(manifest_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return _manifest(folder, data, rows)


def _digest(folder: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over the items in order: each row's JSON line, then its LR PNG bytes, then its HR PNG bytes."""
    h = hashlib.sha256()
    for row in rows:
        h.update(_row_line(row).encode() + b"\n")
        for key in ("lr", "hr"):
            rel = row.get(key)
            if rel is None:
                continue
            path = folder / rel
            if not path.is_file():
                raise TestbedError(f"{path}: missing. Rerun the build on this folder to restore it.")
            data = path.read_bytes()
            if _sha(data) != row.get(f"{key}_sha256"):
                raise TestbedError(
                    f"{path}: its content differs from the SHA-256 in items.jsonl (changed or damaged). "
                    "Rerun the build on this folder to restore it."
                )
            h.update(data)
    return "sha256:" + h.hexdigest()


def _manifest(folder: Path, data: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Manifest:
    config = TestbedConfig.from_dict(data["config"])
    items = tuple(
        TestbedItem(
            id=str(r["id"]),
            split=str(r["split"]),
            source=str(r["source"]),
            label=str(r["label"]),
            face=r.get("face"),
            seed=int(r["seed"]),
            severity=int(r["severity"]),
            lr_path=(folder / r["lr"]).resolve(),
            hr_path=None if r.get("hr") is None else (folder / r["hr"]).resolve(),
            record=dict(r["record"]),
            lr_sha256=str(r.get("lr_sha256", "")),
            hr_sha256=r.get("hr_sha256"),
        )
        for r in rows
    )
    return Manifest(
        folder=folder.resolve(),
        config=config,
        items=items,
        counts=dict(data["counts"]),
        digest=str(data["digest"]),
        version=str(data["version"]),
        data=dict(data),
    )


def load_manifest(folder: str | os.PathLike[str], *, verify: bool = True) -> Manifest:
    """Read a built testbed. With ``verify`` (default) every PNG is checked against its SHA-256 and the
    data digest is recomputed; any difference raises :class:`TestbedError` naming the file and the fix."""
    root = Path(folder)
    if not root.is_dir():
        raise TestbedError(f"{root}: no such folder. Build it first: srjudge testbed build --out {root}")
    path = root / "manifest.json"
    if not path.is_file():
        hint = (
            " (an interrupted build: rerun the build on this folder to finish it)"
            if (root / "build.json").exists() or (root / "items.jsonl").exists()
            else ""
        )
        raise TestbedError(
            f"{path}: missing{hint}. Build the testbed with: srjudge testbed build --out {root}"
        )
    data = _read_json(path)
    if data.get("format") != MANIFEST_FORMAT or data.get("schema") != MANIFEST_SCHEMA:
        raise TestbedError(
            f"{path}: not a {MANIFEST_FORMAT} manifest of schema {MANIFEST_SCHEMA} "
            f"(format={data.get('format')!r}, schema={data.get('schema')!r}). Rebuild with this srjudge."
        )
    missing = [k for k in ("config", "counts", "digest", "version", "items_file") if k not in data]
    if missing:
        raise TestbedError(f"{path}: missing field(s) {', '.join(missing)}. Rebuild the testbed.")
    items_path = root / str(data["items_file"])
    if not items_path.is_file():
        raise TestbedError(f"{items_path}: missing. Rerun the build on {root} to restore it.")
    rows = _read_rows(items_path, repair=False)
    if len(rows) != data["counts"].get("total"):
        raise TestbedError(
            f"{items_path}: holds {len(rows)} items, the manifest says {data['counts'].get('total')}. "
            f"Rerun the build on {root}."
        )
    if verify:
        digest = _digest(root, rows)
        if digest != data["digest"]:
            raise TestbedError(
                f"{root}: data digest {digest} does not match the manifest's {data['digest']} "
                "(items.jsonl or images were changed). Rerun the build on this folder, or rebuild it."
            )
    return _manifest(root, data, rows)
