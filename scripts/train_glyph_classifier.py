#!/usr/bin/env python
"""Train the glyph testbed's two bundled readers: ``glyph-reader`` (the ``classifier`` reader) and
``glyph-referee`` (the ``referee``, a second CNN of another width and seed that only grades outputs).

Each model trains in a few minutes on one CPU thread and is written, with its record (recipe, seed,
data digest, held-out accuracy per split/face/severity, wall time), to
``src/srjudge/data/testbed/glyph-reader/`` and ``glyph-referee/``. Rerunning skips a finished model;
an interrupted one resumes from its last epoch. Usage::

    .venv/bin/python scripts/train_glyph_classifier.py                 # both models
    .venv/bin/python scripts/train_glyph_classifier.py --only referee  # one of them
    .venv/bin/python scripts/train_glyph_classifier.py --out /tmp/glyphs --epochs 1 --train-items 2000
    .venv/bin/python scripts/train_glyph_classifier.py --evaluate ocr --copies 2 --json ocr.json

``--evaluate SPEC`` trains nothing: it measures any reader (``ocr``, ``classifier``, ``vlm:hf,model=...``)
on the held-out val/test faces and scikit-learn digits, the same way the records do, and prints JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from srjudge.readers import create_reader
from srjudge.readers.classifier import BUNDLED
from srjudge.train.glyph_classifier import (
    READER_CONFIG,
    REFEREE_CONFIG,
    evaluate,
    reader_read,
    train_glyph_classifier,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("classifier", "referee"), help="train one of the two models")
    parser.add_argument("--out", type=Path, help="parent folder (default: the package's data/testbed/)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--train-items", type=int, help="override the number of train-split items")
    parser.add_argument("--threads", type=int, help="torch threads (default 1)")
    parser.add_argument("--evaluate", metavar="SPEC", help="only measure this reader on held-out data")
    parser.add_argument(
        "--copies", type=int, default=2, help="held-out copies per face and class (--evaluate)"
    )
    parser.add_argument(
        "--split", choices=("val", "test"), action="append", help="splits to measure (--evaluate)"
    )
    parser.add_argument("--json", type=Path, help="also write the --evaluate result to this file")
    args = parser.parse_args(argv)
    if args.evaluate:
        started = time.perf_counter()
        reader = create_reader(args.evaluate)
        result = evaluate(
            reader_read(reader), copies=args.copies, splits=tuple(args.split or ("val", "test"))
        )
        result = {
            "reader": reader.spec,
            "copies": args.copies,
            "wall_time_s": round(time.perf_counter() - started, 1),
            **result,
        }
        text = json.dumps(result, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
        return 0
    jobs = {"classifier": READER_CONFIG, "referee": REFEREE_CONFIG}
    for kind, config in jobs.items():
        if args.only and kind != args.only:
            continue
        overrides = {
            k: v
            for k, v in {
                "epochs": args.epochs,
                "train_items": args.train_items,
                "threads": args.threads,
            }.items()
            if v is not None
        }
        config = dataclasses.replace(config, **overrides)
        out = (args.out / BUNDLED[kind].name) if args.out else BUNDLED[kind]
        record = train_glyph_classifier(config, out, progress=lambda m: print(m, flush=True))
        test = record["heldout"]["test"]
        summary = {
            "model": kind,
            "folder": str(out),
            "test_hr_clean": test["hr_clean"],
            "test_lr_up_by_severity": test["lr_up_by_severity"],
            "test_sklearn_digits": test["sklearn_digits_lr_up"],
            "wall_time_s": record["wall_time_s"],
        }
        print(json.dumps(summary, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
