"""Prompt templates: a prompt file replaces the built-in prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srjudge.errors import SpecError
from srjudge.vlm.prompts import load_prompt_file


def test_a_prompt_file_replaces_the_builtin_prompt(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps({"id": "my-read", "version": "2", "user": "Read ({tags}).", "tags_vocabulary": ["a"]})
    )
    prompt = load_prompt_file(path)
    assert prompt.ref == "my-read@2" and prompt.render() == "Read (a)." and prompt.system == ""
    with pytest.raises(SpecError, match="does not exist"):
        load_prompt_file(tmp_path / "missing.json")
    path.write_text('{"id": "x"}')
    with pytest.raises(SpecError, match="lacks version, user"):
        load_prompt_file(path)
    path.write_text("[1]")
    with pytest.raises(SpecError, match="must hold a JSON object"):
        load_prompt_file(path)
