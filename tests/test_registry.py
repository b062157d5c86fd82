"""Registries: one registration style (lazy package loading, strict import errors, option schemas), aliases
and did-you-mean errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from srjudge.errors import SpecError, SrjudgeError, UnknownNameError
from srjudge.registry import REQUIRED, Entry, Registry, did_you_mean
from srjudge.spec import Choice, Spec, coerce_options, parse_spec


@pytest.fixture
def plugin_package(tmp_path: Path) -> Iterator[Path]:
    """An importable package ``toyplugins`` on sys.path, removed afterwards."""
    root = tmp_path / "toyplugins"
    root.mkdir()
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        yield root
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "toyplugins" or m.startswith("toyplugins.")]:
            del sys.modules[name]


def test_components_are_found_in_their_package_only_when_first_asked(plugin_package: Path) -> None:
    (plugin_package / "_kinds.py").write_text(
        "from srjudge.registry import Entry, Registry\n"
        "TOY = Registry[Entry]('toy', packages=('toyplugins',))\n"
    )
    (plugin_package / "blur.py").write_text(
        "from srjudge.registry import Entry\n"
        "from toyplugins._kinds import TOY\n"
        "def make_blur(**options):\n    return ('blur', options)\n"
        "TOY.add(Entry(name='blur', factory=make_blur, description='A blur.',\n"
        "              options={'sigma': (float, 1.0)}))\n"
    )
    import importlib

    registry = importlib.import_module("toyplugins._kinds").TOY
    assert "toyplugins.blur" not in sys.modules
    assert registry.names() == ["blur"]  # the first question imports the package's modules
    entry = registry.get("blur")
    assert entry.target == "toyplugins.blur:make_blur"
    assert entry.factory(sigma=2.0) == ("blur", {"sigma": 2.0})
    assert entry.option_lines() == ["sigma: float (default 1.0)"]
    assert entry.summary()["options"] == {"sigma": {"type": "float", "default": 1.0, "required": False}}


def test_a_module_that_fails_to_import_is_an_error_never_skipped(plugin_package: Path) -> None:
    (plugin_package / "broken.py").write_text("import a_module_that_does_not_exist\n")
    registry = Registry[Entry]("toy", packages=("toyplugins",))
    with pytest.raises(
        SrjudgeError,
        match=r"toy module toyplugins.broken could not be imported.*a_module_that_does_not_exist",
    ):
        registry.names()


def test_every_builtin_registry_lists_targets_descriptions_and_options() -> None:
    from srjudge.judges import JUDGES
    from srjudge.judges.vlm.protocols import PROTOCOLS
    from srjudge.metrics import METRICS
    from srjudge.readers import READERS
    from srjudge.sr.base import SR_BACKENDS
    from srjudge.vlm.backends import BACKENDS

    expected = {
        METRICS: {"psnr", "ssim", "lpips", "niqe", "natural-detail"},
        JUDGES: {"trust", "tws", "vlm", "reward", "readout", "fitted"},
        SR_BACKENDS: {"bicubic", "realesrgan", "diffusion", "diffusers", "spandrel", "esrgan"},
        BACKENDS: {"openai", "hf"},
        READERS: {"classifier", "referee", "ocr", "vlm"},
        PROTOCOLS: {"level", "pairwise", "audit", "readout"},
    }
    for registry, names in expected.items():
        assert names <= set(registry.names()), registry.kind
        for entry in registry.entries():
            module, _, factory = entry.target.partition(":")
            assert module.startswith("srjudge.") and factory, (registry.kind, entry.name)
            assert entry.description, (registry.kind, entry.name)
    assert BACKENDS.get("openai").options["model"][1] is REQUIRED
    assert "structured: auto|json_schema|vllm|none (default 'auto')" in BACKENDS.get("openai").option_lines()


def test_options_are_checked_against_the_declared_schema_with_a_hint() -> None:
    schema = {"channel": (Choice("rgb", "y"), "rgb"), "crop_border": (int, 0)}
    assert coerce_options(parse_spec("psnr:channel=y"), schema, kind="metric") == {"channel": "y"}
    with pytest.raises(SpecError, match=r"crop_boder \(did you mean crop_border\?\)"):
        coerce_options(parse_spec("psnr:crop_boder=4"), schema, kind="metric")
    with pytest.raises(SpecError, match=r"channel='lab'.*use one of rgb, y"):
        coerce_options(parse_spec("psnr:channel=lab"), schema, kind="metric")
    assert did_you_mean("trsut", ["trust", "tws"]) == " Did you mean: trust?"
    assert did_you_mean("zzz", ["trust"]) == ""


def test_unknown_sr_backend_option_fails_before_any_model_is_built() -> None:
    from srjudge.sr.base import create_sr_backend

    with pytest.raises(
        SpecError, match=r"modle \(did you mean model\?\).*Allowed: gpuid, model, threads, tile"
    ):
        create_sr_backend("realesrgan:modle=x4plus")


def _entry(name: str, *aliases: str) -> Entry:
    return Entry(name=name, factory=dict, aliases=aliases)


def test_registry_did_you_mean_and_aliases() -> None:
    reg: Registry[Entry] = Registry("thing")
    niqe = reg.add(_entry("niqe", "niqe-matlab"))
    brisque = reg.add(_entry("brisque"))
    assert reg.get("NIQE") is niqe and reg.get("niqe-matlab") is niqe and reg.get("brisque") is brisque
    with pytest.raises(UnknownNameError) as info:
        reg.get("nique")
    assert str(info.value) == "Unknown thing 'nique'. Did you mean: niqe? Available: brisque, niqe."
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(_entry("niqe"))


def test_an_option_given_as_a_name_is_explained() -> None:
    with pytest.raises(SpecError, match=r"'model=gpt-4o' instead of a name.*separate them with ';'"):
        parse_spec("model=gpt-4o")
    assert parse_spec("tws:clip=/m/a=b") == Spec("tws", None, {"clip": "/m/a=b"})  # '=' in a value is fine
    reg: Registry[Entry] = Registry("judge")
    reg.add(_entry("niqe"))
    with pytest.raises(
        UnknownNameError, match=r"'model=gpt-4o' looks like a key=value option, not a judge name"
    ):
        reg.get("model=gpt-4o")
