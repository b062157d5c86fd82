"""Dataclass configs as YAML: typed values, nested dataclasses, did-you-mean on unknown keys, round trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from srjudge.config import config_to_dict, load_config_yaml, save_config_yaml
from srjudge.errors import SpecError


@dataclass(frozen=True)
class Lora:
    r: int = 8
    alpha: float = 16.0


@dataclass(frozen=True)
class Job:
    lr: float = 1e-3
    mode: Literal["fast", "slow"] = "fast"
    out: Path = Path("runs/x")
    sizes: tuple[int, ...] = (1, 2)
    lora: Lora | None = field(default_factory=Lora)


def test_a_config_round_trips_through_yaml(tmp_path: Path) -> None:
    job = Job(lr=2e-4, mode="slow", out=Path("a/b"), sizes=(3,), lora=Lora(r=4))
    assert config_to_dict(job) == {
        "lr": 2e-4,
        "mode": "slow",
        "out": "a/b",
        "sizes": [3],
        "lora": {"r": 4, "alpha": 16.0},
    }
    save_config_yaml(job, tmp_path / "job.yaml")
    assert load_config_yaml(Job, tmp_path / "job.yaml") == job


def test_values_are_typed_and_left_out_keys_keep_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("lr: 1e-4\nlora: null\n")  # YAML 1.1 reads 1e-4 as a string
    assert load_config_yaml(Job, path) == Job(lr=1e-4, lora=None)
    path.write_text("")
    assert load_config_yaml(Job, path) == Job()


@pytest.mark.parametrize(
    "text,message",
    [
        ("learning_rate: 0.1\n", r"unknown key\(s\) 'learning_rate' \(did you mean 'lr'\?\)"),
        ("mod: fast\n", r"'mod' \(did you mean 'mode'\?\)"),
        ("mode: medium\n", r"job\.yaml: mode: 'medium' is not one of 'fast', 'slow'"),
        ("lr: high\n", r"lr: expected a number, got 'high'"),
        ("sizes: [1, two]\n", r"sizes\[1\]: expected an integer, got 'two'"),
        ("lora: {r: 4, alpah: 1}\n", r"lora: unknown key\(s\) 'alpah' \(did you mean 'alpha'\?\)"),
        ("- 1\n", "expected a mapping of Job keys"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_config_yaml(Job, path)


def test_a_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"does not exist; write a default one with --write-config"):
        load_config_yaml(Job, tmp_path / "missing.yaml")
