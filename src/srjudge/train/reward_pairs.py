"""Preference pairs for the LR-conditioned reward model: the JSONL format, its validation, and sources.

One JSON object per line (paths relative to the JSONL file's folder, or absolute)::

    {"lr": "lr/x.png", "preferred": "sr/x_a.png", "rejected": "sr/x_b.png", "source": "human", "margin": 1.0}

``source`` is ``human``, ``pseudo-label`` (from ``srjudge evolve``'s pseudo-labels, see
:func:`pairs_from_pseudo_labels`) or ``synthetic`` (from :func:`make_synthetic_pairs`); ``margin``
(optional, >= 0) is how much more the preferred one is preferred, used by the margin term of the loss;
``meta`` (optional) is a free-form object kept with the row. :func:`load_pairs` checks every row before
anything trains and reports ALL problems with their row numbers (missing files, a pair of identical
images, an HR that is not the LR times one integer factor, preferred/rejected sizes that differ).

A ``dataset.json`` beside the JSONL (written by the generator and the converter) says whether the pairs
are synthetic; :func:`load_pairs` also treats a file whose rows are all ``synthetic`` as synthetic.

The graded synthetic pairs are known-by-construction preferences, NOT human opinion: per HR photo the
LR is made with :func:`srjudge.degrade.degrade`, and candidates of graded quality (the HR itself, mild
and strong blur/noise/JPEG, a patch pasted from another photo, another photo entirely) are paired
across grades, the better grade preferred. Pure functions (:func:`graded_candidates`,
:func:`split_by_lr`) take arrays and records; file work sits in the ``load``/``make``/``write`` functions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srjudge import atomic
from srjudge.errors import SrjudgeError
from srjudge.provenance import file_sha256

PAIRS_SCHEMA = "srjudge.reward-pairs/1"
PAIRS_FORMAT = "reward-pairs"
DATASET_JSON = "dataset.json"
SOURCES = ("human", "pseudo-label", "synthetic")
_ROW_KEYS = {"lr", "preferred", "rejected", "source", "margin", "meta"}
_MAX_SHOWN = 20


# ----------------------------------------------------------------------------------------------------------
# Records and errors
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreferencePair:
    """One validated pair: absolute paths, the source, the optional margin, the 1-based JSONL line."""

    lr: Path
    preferred: Path
    rejected: Path
    source: str
    row: int
    margin: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_row(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The JSONL row, with paths relative to ``relative_to`` when given."""

        def rel(p: Path) -> str:
            if relative_to is None:
                return str(p)
            return Path(os.path.relpath(p, relative_to)).as_posix()

        row: dict[str, Any] = {
            "lr": rel(self.lr),
            "preferred": rel(self.preferred),
            "rejected": rel(self.rejected),
            "source": self.source,
        }
        if self.margin is not None:
            row["margin"] = self.margin
        if self.meta:
            row["meta"] = dict(self.meta)
        return row


@dataclass(frozen=True)
class PairsProblem:
    """One validation problem; ``row`` is the 1-based line of the JSONL file (0: the file itself)."""

    row: int
    message: str


class PairsError(SrjudgeError):
    """A pairs file failed validation; ``problems`` lists every problem found, with row numbers."""

    def __init__(self, path: Path, problems: Sequence[PairsProblem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        n = len(self.problems)
        head = f"{path}: {n} problem{'s' if n != 1 else ''} in the preference pairs"
        lines = [head + " (rows are JSONL lines):"]
        for p in self.problems[:_MAX_SHOWN]:
            lines.append(f"  - {'row ' + str(p.row) + ': ' if p.row else ''}{p.message}")
        if n > _MAX_SHOWN:
            lines.append(f"  - ... and {n - _MAX_SHOWN} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class PairsDataset:
    """The validated pairs of one JSONL file."""

    path: Path
    pairs: tuple[PreferencePair, ...]
    synthetic: bool
    meta: Mapping[str, Any]

    @property
    def sources(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.pairs:
            counts[p.source] = counts.get(p.source, 0) + 1
        return counts


# ----------------------------------------------------------------------------------------------------------
# Reading and validating
# ----------------------------------------------------------------------------------------------------------


def _image_size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the file header, or a message saying why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            return int(pil.size[0]), int(pil.size[1])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"{path}: not a readable image ({type(exc).__name__})"


def _check_row(
    raw: Any,
    row: int,
    root: Path,
    sizes: dict[Path, tuple[int, int] | str],
    digests: dict[Path, str],
) -> tuple[PreferencePair | None, list[PairsProblem]]:
    problems: list[PairsProblem] = []

    def bad(message: str) -> None:
        problems.append(PairsProblem(row, message))

    if not isinstance(raw, dict):
        bad(f"expected a JSON object, got {type(raw).__name__}")
        return None, problems
    unknown = sorted(set(raw) - _ROW_KEYS)
    if unknown:
        bad(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ROW_KEYS))}")
    paths: dict[str, Path] = {}
    for key in ("lr", "preferred", "rejected"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            bad(f'"{key}" must be a non-empty path string, got {value!r}')
            continue
        p = Path(value)
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            bad(f'"{key}" file {p} does not exist')
            continue
        if p not in sizes:
            sizes[p] = _image_size(p)
        size = sizes[p]
        if isinstance(size, str):
            bad(f'"{key}": {size}')
            continue
        paths[key] = p
    source = raw.get("source")
    if source not in SOURCES:
        bad(f'"source" must be one of {", ".join(SOURCES)}, got {source!r}')
    margin = raw.get("margin")
    if margin is not None and (
        isinstance(margin, bool)
        or not isinstance(margin, int | float)
        or not math.isfinite(margin)
        or margin < 0
    ):
        bad(f'"margin" must be a finite number >= 0 (or left out), got {margin!r}')
    meta = raw.get("meta", {})
    if not isinstance(meta, dict):
        bad(f'"meta" must be a JSON object, got {type(meta).__name__}')
    if "preferred" in paths and "rejected" in paths:
        a, b = paths["preferred"], paths["rejected"]
        if a.resolve() == b.resolve():
            bad(f'"preferred" and "rejected" are the same file ({a}): a pair needs two different images')
        else:
            for p in (a, b):
                if p not in digests:
                    digests[p] = file_sha256(p)
            if digests[a] == digests[b]:
                bad(f'"preferred" {a.name} and "rejected" {b.name} are byte-identical: nothing to prefer')
        sa, sb = sizes[a], sizes[b]
        assert not isinstance(sa, str) and not isinstance(sb, str)
        if sa != sb:
            bad(
                f'"preferred" is {sa[0]}x{sa[1]} but "rejected" is {sb[0]}x{sb[1]} (WxH): '
                "candidates of one LR input must have the same size"
            )
        if "lr" in paths:
            lr_size = sizes[paths["lr"]]
            assert not isinstance(lr_size, str)
            lw, lh = lr_size
            for key, (w, h) in (("preferred", sa), ("rejected", sb)):
                if w % lw or h % lh or w // lw != h // lh or w < lw:
                    bad(
                        f'"{key}" is {w}x{h} and "lr" is {lw}x{lh} (WxH): the HR must be the LR size times '
                        "one integer factor in both directions. Check the pairing or crop the HR to a "
                        "multiple of the LR size; nothing is resized silently"
                    )
    if problems:
        return None, problems
    return (
        PreferencePair(
            lr=paths["lr"],
            preferred=paths["preferred"],
            rejected=paths["rejected"],
            source=str(source),
            row=row,
            margin=None if margin is None else float(margin),
            meta=dict(meta),
        ),
        [],
    )


def read_pairs_meta(path: Path) -> dict[str, Any]:
    """dataset.json beside the JSONL (an empty mapping when there is none)."""
    meta_path = Path(path).parent / DATASET_JSON
    if not meta_path.is_file():
        return {}
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PairsError(Path(path), [PairsProblem(0, f"{meta_path}: not valid JSON ({exc})")]) from None
    return data if isinstance(data, dict) else {}


def load_pairs(path: str | os.PathLike[str]) -> PairsDataset:
    """Read and validate a pairs JSONL; raises :class:`PairsError` listing every problem with its row."""
    p = Path(path)
    if p.is_dir():
        hint = next(iter(sorted(p.glob("*.jsonl"))), None)
        raise PairsError(
            p,
            [PairsProblem(0, "is a folder; pass the pairs JSONL file" + (f", e.g. {hint}" if hint else ""))],
        )
    if not p.is_file():
        raise PairsError(
            p,
            [
                PairsProblem(
                    0, "no such file; write one (see `srjudge reward pairs --help`) or check the path"
                )
            ],
        )
    root = p.parent
    problems: list[PairsProblem] = []
    pairs: list[PreferencePair] = []
    sizes: dict[Path, tuple[int, int] | str] = {}
    digests: dict[Path, str] = {}
    with p.open(encoding="utf-8") as handle:
        for row, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError as exc:
                problems.append(PairsProblem(row, f"not valid JSON ({exc})"))
                continue
            pair, found = _check_row(raw, row, root, sizes, digests)
            problems.extend(found)
            if pair is not None:
                pairs.append(pair)
    if not problems and not pairs:
        problems.append(PairsProblem(0, "holds no pairs"))
    if problems:
        raise PairsError(p, problems)
    meta = read_pairs_meta(p)
    synthetic = bool(meta.get("synthetic", False)) or all(q.source == "synthetic" for q in pairs)
    return PairsDataset(path=p, pairs=tuple(pairs), synthetic=synthetic, meta=meta)


def pairs_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of the JSONL's bytes (the dataset digest recorded with a trained model)."""
    return file_sha256(Path(path))


def write_pairs(
    path: Path, pairs: Iterable[PreferencePair | Mapping[str, Any]], meta: Mapping[str, Any] | None = None
) -> Path:
    """Write a pairs JSONL (paths relative to its folder) and, with ``meta``, its dataset.json; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for pair in pairs:
        row = pair.to_row(path.parent) if isinstance(pair, PreferencePair) else dict(pair)
        lines.append(json.dumps(row, sort_keys=False))
    atomic.write_text(path, "".join(line + "\n" for line in lines))
    if meta is not None:
        meta_path = path.parent / DATASET_JSON
        meta_path.write_text(json.dumps(dict(meta), indent=2) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------
# Held-out split by LR image
# ----------------------------------------------------------------------------------------------------------


def split_by_lr(
    pairs: Sequence[PreferencePair], heldout_fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out): a seeded split of the distinct LR images, so no LR is in both parts.

    ``ceil(fraction * n_lr)`` LR images go to the held-out part (at least one when the fraction is
    positive and there are two or more LR images; none when there is only one).
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise SrjudgeError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    lrs = sorted({str(p.lr.resolve()) for p in pairs})
    n_held = math.ceil(heldout_fraction * len(lrs)) if heldout_fraction > 0 else 0
    n_held = min(n_held, len(lrs) - 1) if len(lrs) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(lrs))
    held = {lrs[i] for i in order[:n_held]}
    train = [p for p in pairs if str(p.lr.resolve()) not in held]
    heldout = [p for p in pairs if str(p.lr.resolve()) in held]
    return train, heldout


# ----------------------------------------------------------------------------------------------------------
# Pseudo-labels from `srjudge evolve`
# ----------------------------------------------------------------------------------------------------------


def pairs_from_pseudo_labels(
    rows: Iterable[Mapping[str, Any]], *, root: Path, fallback_root: Path | None = None
) -> tuple[list[dict[str, Any]], list[PairsProblem], int]:
    """Pseudo-label rows (``image_a``, ``image_b``, ``lr``, ``winner`` A/B, ``vote_share``) to pair rows.

    Returns (pair rows with absolute paths, problems with 1-based row numbers, skipped count). Rows the
    labeller recorded as skipped (``skipped`` set, or a winner that is neither A nor B, e.g. a tie) are
    counted, not converted. A row without an ``lr`` is a problem: the reward model is LR-conditioned and
    cannot learn from a pair whose input is unknown. ``vote_share`` is kept in ``meta``.

    A relative path is taken relative to ``root`` (the labels file's folder) when it exists there, else
    relative to ``fallback_root`` (the folder the labeller ran in, which wrote paths as it found them).
    """
    out: list[dict[str, Any]] = []
    problems: list[PairsProblem] = []
    skipped = 0
    for row, raw in enumerate(rows, 1):
        if not isinstance(raw, Mapping):
            problems.append(PairsProblem(row, f"expected a JSON object, got {type(raw).__name__}"))
            continue
        winner = raw.get("winner")
        if raw.get("skipped") or winner not in ("A", "B"):
            skipped += 1
            continue
        lr = raw.get("lr")
        if not isinstance(lr, str) or not lr.strip():
            problems.append(
                PairsProblem(
                    row,
                    "has no 'lr': the reward model judges an HR given its LR input, so a pseudo-label "
                    "without its LR cannot train it. Label candidates in the select folder layout (one LR "
                    "per group) so that each row records its LR",
                )
            )
            continue
        paths = {}
        for key in ("image_a", "image_b"):
            value = raw.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(PairsProblem(row, f"'{key}' must be a path string, got {value!r}"))
                break
            paths[key] = value
        if len(paths) < 2:
            continue

        def absolute(value: str) -> str:
            p = Path(value)
            if p.is_absolute():
                return str(p)
            if not (root / p).exists() and fallback_root is not None and (fallback_root / p).exists():
                return str(fallback_root / p)
            return str(root / p)

        preferred, rejected = (
            (paths["image_a"], paths["image_b"]) if winner == "A" else (paths["image_b"], paths["image_a"])
        )
        meta: dict[str, Any] = {"winner": winner}
        if isinstance(raw.get("vote_share"), int | float):
            meta["vote_share"] = float(raw["vote_share"])
        out.append(
            {
                "lr": absolute(lr),
                "preferred": absolute(preferred),
                "rejected": absolute(rejected),
                "source": "pseudo-label",
                "meta": meta,
            }
        )
    return out, problems, skipped


def convert_pseudo_labels(labels_path: Path, out_path: Path) -> tuple[Path, int, int]:
    """Convert a pseudo-labels JSONL into a pairs JSONL at ``out_path``; returns (path, written, skipped).

    The file is read as ``srjudge evolve`` reads it (:func:`srjudge.train.evolve.summary_from_file`):
    one labelling run's rows only (a file mixing several is refused), the latest row per pair. Problems
    are numbered by pseudo-label (in file order) and reported at once (:class:`PairsError`); the
    written file is validated like any other (:func:`load_pairs`).
    """
    from srjudge.train.evolve import summary_from_file

    labels_path = Path(labels_path)
    if not labels_path.is_file():
        raise PairsError(labels_path, [PairsProblem(0, "no such pseudo-labels file")])
    labels, _ = summary_from_file(labels_path)
    converted, problems, skipped = pairs_from_pseudo_labels(
        [label.to_dict() for label in labels], root=labels_path.parent.resolve(), fallback_root=Path.cwd()
    )
    if problems:
        raise PairsError(labels_path, sorted(problems, key=lambda p: p.row))
    if not converted:
        raise PairsError(labels_path, [PairsProblem(0, f"no usable pseudo-label (all {skipped} skipped)")])
    out_path = Path(out_path)
    relative = [
        {
            **r,
            **{
                k: Path(os.path.relpath(r[k], out_path.parent.resolve())).as_posix()
                for k in ("lr", "preferred", "rejected")
            },
        }
        for r in converted
    ]
    meta = {
        "format": PAIRS_FORMAT,
        "schema": PAIRS_SCHEMA,
        "synthetic": False,
        "source": "pseudo-label",
        "description": f"Pseudo-labels from srjudge evolve ({labels_path.name}); not human opinion.",
        "file": out_path.name,
    }
    write_pairs(out_path, relative, meta)
    load_pairs(out_path)
    return out_path, len(converted), skipped


# ----------------------------------------------------------------------------------------------------------
# Graded synthetic pairs
# ----------------------------------------------------------------------------------------------------------

#: Bundled scikit-image photos used by default (colour or gray photos, at least 256 px on each side).
SYNTHETIC_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "coins")

#: Candidate kinds and their grade (0 best). Pairs are made across grades only, the lower grade preferred.
GRADES: dict[str, int] = {
    "hr": 0,
    "blur-mild": 1,
    "noise-mild": 1,
    "jpeg-mild": 1,
    "blur-strong": 2,
    "noise-strong": 2,
    "jpeg-strong": 2,
    "patch-swap": 3,
    "other-photo": 4,
}
_MILD = {"blur": 1.0, "noise": 0.03, "jpeg": 60}
_STRONG = {"blur": 3.0, "noise": 0.12, "jpeg": 10}

SYNTHETIC_DESCRIPTION = (
    "SYNTHETIC preference pairs, NOT human opinion: preferences known by construction. Per HR photo, the LR "
    "is made with srjudge.degrade (pipeline and scale recorded below); the candidates are the HR itself "
    "(grade 0); mild Gaussian blur sigma 1.0 / Gaussian noise std 0.03 / JPEG quality 60 of the HR "
    "(grade 1); "
    "strong blur sigma 3.0 / noise std 0.12 / JPEG quality 10 (grade 2); the HR with a rectangle (35-50 % of "
    "each side) pasted from another photo (grade 3, content the LR does not support); another photo "
    "entirely (grade 4). Every pair of candidates of different grades is a row, the lower grade preferred; "
    "margin = the grade difference. They teach 'faithful to the LR and clean beats degraded beats "
    "invented content'; they do not say how people rank real SR outputs (e.g. sharp-but-hallucinated vs. "
    "soft-but-faithful), which needs human or pseudo-labelled pairs."
)


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.asarray(gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0)), dtype=np.float32)


def graded_candidates(
    hr: np.ndarray, donor: np.ndarray, rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, int]]:
    """Candidates of graded quality for one HR photo: ``{kind: (image, grade)}``, see :data:`GRADES`.

    ``donor`` is another photo of the same size (the source of wrong content). Images are float32 RGB,
    quantised to 8 bits; all randomness comes from ``rng``.
    """
    from srjudge.degrade.ops import add_noise, jpeg
    from srjudge.images.checks import check_same_size
    from srjudge.images.io import quantize_8bit

    check_same_size(hr, donor, "HR photo", "donor photo")
    h, w = hr.shape[:2]
    out: dict[str, np.ndarray] = {"hr": hr}
    for tag, levels in (("mild", _MILD), ("strong", _STRONG)):
        out[f"blur-{tag}"] = _gaussian_blur(hr, float(levels["blur"]))
        noise_params = {
            "type": "gaussian",
            "sigma": float(levels["noise"]) * 255.0,
            "gray": False,
            "noise_seed": int(rng.integers(0, 2**31 - 1)),
        }
        out[f"noise-{tag}"] = add_noise(hr, noise_params)
        out[f"jpeg-{tag}"] = jpeg(hr, {"quality": int(levels["jpeg"])})
    ph = round(h * float(rng.uniform(0.35, 0.5)))
    pw = round(w * float(rng.uniform(0.35, 0.5)))
    y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    dy, dx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    swapped = hr.copy()
    swapped[y : y + ph, x : x + pw] = donor[dy : dy + ph, dx : dx + pw]
    out["patch-swap"] = swapped
    out["other-photo"] = donor
    return {k: (quantize_8bit(v), GRADES[k]) for k, v in out.items()}


def graded_pair_kinds() -> list[tuple[str, str]]:
    """(preferred kind, rejected kind) for every pair of kinds of different grades, in a fixed order."""
    kinds = list(GRADES)
    return [(a, b) for a in kinds for b in kinds if GRADES[a] < GRADES[b]]


def centre_crop(image: np.ndarray, size: int, scale: int) -> np.ndarray:
    """A centre crop of at most ``size`` x ``size`` whose sides are multiples of ``scale``."""
    h, w = image.shape[:2]
    ch = (min(h, size) // scale) * scale
    cw = (min(w, size) // scale) * scale
    if ch == 0 or cw == 0:
        raise SrjudgeError(f"an HR photo of {w}x{h} is smaller than the scale {scale}; use larger photos")
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])


def _hr_photos(hr_dir: Path | None, photos: Sequence[str] | None, size: int) -> list[tuple[str, np.ndarray]]:
    if hr_dir is not None:
        from srjudge.images.io import expand_image_paths, load_image

        paths = expand_image_paths([hr_dir])
        return [(p.stem, load_image(p)) for p in paths]
    from srjudge.images.samples import bundled_photo

    return [(name, bundled_photo(name, size)) for name in (photos or SYNTHETIC_PHOTOS)]


def make_synthetic_pairs(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    scale: int = 4,
    size: int = 256,
    pipeline: str = "face",
    photos: Sequence[str] | None = None,
    hr_dir: Path | None = None,
) -> Path:
    """Write graded SYNTHETIC preference pairs under ``out_dir``; returns ``out_dir/'pairs.jsonl'``.

    HR photos are scikit-image's bundled photos (``photos``, default :data:`SYNTHETIC_PHOTOS`) or every
    image in ``hr_dir``, centre-cropped to ``size`` (a multiple of ``scale``). Writes ``lr/NAME.png``,
    ``candidates/NAME/KIND.png``, ``pairs.jsonl`` (every row ``"source": "synthetic"``) and
    ``dataset.json`` (``"synthetic": true`` and the rule). The same arguments write the same bytes.
    """
    from srjudge.degrade import degrade, derive_seed
    from srjudge.images.io import save_png
    from srjudge.images.resize import imresize

    root = Path(out_dir)
    loaded = _hr_photos(hr_dir, photos, size)
    if len(loaded) < 2:
        raise SrjudgeError(
            f"synthetic pairs need at least 2 HR photos (wrong-content candidates come from another photo); "
            f"got {len(loaded)}" + (f" in {hr_dir}" if hr_dir else "")
        )
    names = [name for name, _ in loaded]
    if len(set(names)) != len(names):
        raise SrjudgeError(f"HR photo names must be unique (file stems); got {names}")
    hrs = [centre_crop(image, size, scale) for _, image in loaded]
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for index, (name, hr) in enumerate(zip(names, hrs, strict=True)):
        donor = hrs[(index + 1) % len(hrs)]
        if donor.shape[:2] != hr.shape[:2]:
            donor = imresize(donor, output_shape=hr.shape[:2]).astype(np.float32)
        lr, _record = degrade(hr, pipeline=pipeline, scale=scale, seed=derive_seed(seed, name))
        lr_path = save_png(root / "lr" / f"{name}.png", lr)
        (root / "lr" / f"{name}.json").write_text(_record.to_json(), encoding="utf-8")
        made = graded_candidates(hr, np.clip(donor, 0.0, 1.0).astype(np.float32), rng)
        paths = {
            kind: save_png(root / "candidates" / name / f"{kind}.png", img) for kind, (img, _) in made.items()
        }
        for good, poor in graded_pair_kinds():
            rows.append(
                {
                    "lr": lr_path.relative_to(root).as_posix(),
                    "preferred": paths[good].relative_to(root).as_posix(),
                    "rejected": paths[poor].relative_to(root).as_posix(),
                    "source": "synthetic",
                    "margin": float(GRADES[poor] - GRADES[good]),
                    "meta": {"photo": name, "preferred_kind": good, "rejected_kind": poor},
                }
            )
    meta = {
        "format": PAIRS_FORMAT,
        "schema": PAIRS_SCHEMA,
        "name": "synthetic graded reward pairs (not human opinion)",
        "synthetic": True,
        "source": "synthetic",
        "description": SYNTHETIC_DESCRIPTION,
        "file": "pairs.jsonl",
        "seed": seed,
        "scale": scale,
        "size": size,
        "pipeline": pipeline,
        "photos": names,
        "hr_dir": str(hr_dir) if hr_dir is not None else None,
        "grades": GRADES,
    }
    return write_pairs(root / "pairs.jsonl", rows, meta)
