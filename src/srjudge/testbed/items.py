"""What a testbed holds: its config, the splits by font face, and every item it enumerates (cheap: no pixels).

Every item is fixed by the config's seed and its position: glyph seeds and degradation seeds are derived
by SHA-256 from ``(config.seed, split, face, class, copy)`` and the item id, never from a shared stream.
scikit-learn's 8x8 handwritten digits are LR-only items (:func:`digits_lr`).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from srjudge.config import config_to_dict
from srjudge.degrade.core import check_seed
from srjudge.errors import ImageError, SpecError
from srjudge.provenance import config_hash
from srjudge.testbed.glyphs import CLASSES, Jitter, check_char, get_face
from srjudge.testbed.severity import check_severity

SPLITS = ("train", "val", "test")
SOURCES = ("font", "sklearn-digits")
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
        """Every field in order, tuples as lists and the jitter as a dict (what :meth:`hash` hashes)."""
        return config_to_dict(self)

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
class ItemIdentity:
    """What names an item: the fields its spec, the built item and its ``items.jsonl`` row share."""

    id: str
    split: str
    source: str
    label: str
    face: str | None
    seed: int
    severity: int

    def identity(self) -> dict[str, Any]:
        """The identity fields as a dict, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(ItemIdentity)}


@dataclass(frozen=True)
class ItemSpec(ItemIdentity):
    """Where an item comes from, before any pixel is made (cheap to enumerate)."""

    copy: int = 0
    glyph_seed: int = 0
    digit_index: int = -1

    @property
    def glyph_key(self) -> tuple[str, str, str, int]:
        return (self.split, self.face or "", self.label, self.copy)


def font_specs(
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
    labels = digits_raw()[1]
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
        yield from font_specs(config, split, config.severities, config.copies_of(split))
        if config.include_sklearn_digits:
            yield from _digit_specs(config, split, len(digits_raw()[1]))


_DIGITS: tuple[np.ndarray, np.ndarray] | None = None


def digits_raw() -> tuple[np.ndarray, np.ndarray]:
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
    images, labels = digits_raw()
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
