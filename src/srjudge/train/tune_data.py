"""The tuning stages' training data (file I/O): ``srjudge degrade`` folders for stage 1; MOS datasets or
pseudo-label JSONL, described by their degradation records or by the stage-1 model, for stage 2."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge.degrade.record import DegradationRecord
from srjudge.errors import SpecError, SrjudgeError
from srjudge.jsonl import open_for_append, read_jsonl
from srjudge.judges.vlm.parsing import ParseError
from srjudge.judges.vlm.protocols.perceive_infer import parse_perception
from srjudge.train.tune_prompts import TrainExample, infer_example, perceive_example, protocol_messages
from srjudge.train.tune_targets import (
    DEFAULT_QUANTILES,
    degradation_distortions,
    levels_from_scores,
    scores_from_pairs,
)
from srjudge.vlm.images import fit_longest_side
from srjudge.vlm.prompts import PROMPTS
from srjudge.vlm.request import ChatRequest, GenerationParams, ImagePart, TextPart

if TYPE_CHECKING:
    from srjudge.train.tune import TuneConfig


def read_degrade_folder(folder: Path) -> list[tuple[Path, DegradationRecord]]:
    """(LR image, record) pairs of a ``srjudge degrade`` output folder (recursively), sorted by path.

    A sidecar is ``<stem>.json`` holding a degradation record next to ``<stem>.png``. Raises
    :class:`SrjudgeError` naming the folder when none is found, or naming a sidecar without its image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SrjudgeError(f"{folder}: not a folder; give the output folder of `srjudge degrade`")
    pairs: list[tuple[Path, DegradationRecord]] = []
    for sidecar in sorted(folder.rglob("*.json")):
        if sidecar.name.startswith("."):
            continue
        try:
            record = DegradationRecord.from_json(sidecar.read_text(encoding="utf-8"))
        except (SpecError, UnicodeDecodeError):
            continue  # dataset.json, a training record, ...: not a degradation sidecar
        image = sidecar.with_suffix(".png")
        if not image.is_file():
            raise SrjudgeError(
                f"{sidecar}: degradation sidecar without its image {image.name}; rerun srjudge degrade"
            )
        pairs.append((image, record))
    if not pairs:
        raise SrjudgeError(
            f"{folder}: no degradation sidecars (<name>.json next to <name>.png); make them with "
            f"`srjudge degrade HR_FOLDER --out {folder}`"
        )
    return pairs


def read_label_source(
    path: Path, quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> list[tuple[Path, str, float]]:
    """(image, level, score) from a bench MOS dataset or a pseudo-label JSONL, levels by quantiles.

    A ``.jsonl`` whose rows hold ``image_a`` is read as pairwise pseudo-labels (Bradley-Terry scores,
    image paths relative to the JSONL's folder unless absolute); anything else goes through
    :func:`srjudge.bench.datasets.load_dataset` and must be a MOS dataset.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl" and path.is_file():
        rows: list[dict[str, Any]] = []
        for n, row in read_jsonl(path):  # only a cut last line is left out; other bad lines raise
            if not isinstance(row, dict):
                raise SpecError(f"{path}:{n}: expected a JSON object per line")
            rows.append(row)
        if rows and "image_a" in rows[0]:
            scores = scores_from_pairs(rows)
            names = list(scores)
            levels = levels_from_scores([scores[k] for k in names], quantiles)
            out = []
            for name, level in zip(names, levels, strict=True):
                image = Path(name) if Path(name).is_absolute() else path.parent / name
                if not image.is_file():
                    raise SrjudgeError(f"{path}: image {name!r} not found (looked for {image})")
                out.append((image, level, scores[name]))
            return out
    from srjudge.bench.datasets import MOSDataset, load_dataset

    dataset = load_dataset(path)
    if not isinstance(dataset, MOSDataset):
        raise SpecError(
            f"{path}: a {type(dataset).__name__} cannot label stage infer; give a MOS dataset or a "
            "pseudo-label JSONL (image_a, image_b, winner)"
        )
    levels = levels_from_scores(
        [item.score for item in dataset.items], quantiles, higher_is_better=dataset.higher_is_better
    )
    return [(item.image, level, item.score) for item, level in zip(dataset.items, levels, strict=True)]


def _sidecar_record(image: Path) -> DegradationRecord | None:
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        return DegradationRecord.from_json(sidecar.read_text(encoding="utf-8"))
    except (SpecError, UnicodeDecodeError):
        return None


def build_perceive_examples(cfg: TuneConfig) -> list[TrainExample]:
    """Stage-1 examples from the degrade folder ``cfg.data`` (targets from the records)."""
    from srjudge.images.io import load_image

    return [
        perceive_example(
            load_image(image),
            cfg.content,
            degradation_distortions(record),
            max_side=cfg.max_side,
            source=str(image),
        )
        for image, record in read_degrade_folder(Path(cfg.data))
    ]


class _Perceiver:
    """The stage-1 model's perception of images (greedy, the protocol's prompt), cached in a JSONL.

    The cache is keyed by model revision and image digest, so an interrupted stage 2 resumes without
    asking the model again.
    """

    def __init__(self, model: str, device: str, cache: Path, max_side: int) -> None:
        from srjudge.vlm.backends.base import create_backend

        dev = "cpu" if device == "auto" else device
        if device == "auto":
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.backend: Any = create_backend("hf", {"model": model, "device": dev})
        self.max_side = max_side
        self.cache = cache
        self.rows: dict[str, dict[str, Any]] = {}
        if cache.is_file():
            for n, row in read_jsonl(cache):  # only a cut last line is left out; other bad lines raise
                if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                    raise SrjudgeError(f"{cache}:{n}: not a cache row (no 'key'); delete {cache} to redo it.")
                self.rows[row["key"]] = row

    def __call__(self, image: np.ndarray) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        template = PROMPTS.get("perceive")
        fitted, _ = fit_longest_side(image, self.max_side)
        part = ImagePart.of(fitted)
        key = f"{self.backend.revision}:{template.ref}:{part.digest}"
        if key not in self.rows:
            params = GenerationParams(
                max_tokens=256, temperature=0.0, seed=0, json_schema=template.schema, schema_name="perceive"
            )
            request = ChatRequest(
                messages=protocol_messages(template, [part, TextPart(template.render())]),
                params=params,
                template=template.ref,
            )
            text = self.backend.complete([request])[0].text
            row = {"key": key, "text": text}
            with open_for_append(self.cache) as fh:
                fh.write(json.dumps(row) + "\n")
            self.rows[key] = row
        try:
            return parse_perception(str(self.rows[key]["text"]))
        except ParseError:
            return None

    def close(self) -> None:
        self.backend.close()


def build_infer_examples(cfg: TuneConfig, out_dir: Path) -> tuple[list[TrainExample], dict[str, Any]]:
    """Stage-2 examples: labelled images -> their description (record or model) -> infer prompt -> level."""
    from srjudge.images.io import load_image

    labelled = read_label_source(Path(cfg.data), cfg.level_quantiles)
    examples: list[TrainExample] = []
    stats = {"labelled": len(labelled), "from_record": 0, "from_model": 0, "unreadable_perception": 0}
    perceiver: _Perceiver | None = None
    try:
        for image_path, level, _score in labelled:
            record = _sidecar_record(image_path) if cfg.description_source != "model" else None
            if record is not None:
                d = degradation_distortions(record)
                reading: tuple[str, tuple[tuple[str, str], ...]] = (
                    cfg.content,
                    tuple((x.label, x.severity) for x in d),
                )
                stats["from_record"] += 1
            elif cfg.description_source == "record":
                raise SrjudgeError(
                    f"{image_path}: no degradation sidecar ({image_path.with_suffix('.json').name}); "
                    "use description_source auto or model to describe it with the stage-1 model"
                )
            else:
                if perceiver is None:
                    perceiver = _Perceiver(
                        cfg.perceive_model or cfg.base_model,
                        cfg.device,
                        out_dir / "perceptions.jsonl",
                        cfg.max_side,
                    )
                perceived = perceiver(load_image(image_path))
                if perceived is None:
                    stats["unreadable_perception"] += 1
                    continue
                reading = perceived
                stats["from_model"] += 1
            examples.append(infer_example(reading[0], reading[1], level, source=str(image_path)))
    finally:
        if perceiver is not None:
            perceiver.close()
    if not examples:
        raise SrjudgeError(
            f"stage infer: none of the {len(labelled)} labelled images got a readable description "
            f"({stats['unreadable_perception']} unreadable perceptions by "
            f"{cfg.perceive_model or cfg.base_model}); "
            "train stage perceive first, or give images with degradation sidecars"
        )
    return examples, stats
