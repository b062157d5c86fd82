"""Options that several commands share: each flag's names and help text in one place.

Use them in ``Annotated`` with the command's own type and default, e.g.
``judge: Annotated[str, JUDGE] = "trust"`` or ``scale: Annotated[int | None, SCALE] = None``
(Typer copies the option for every parameter, so one object serves them all).
"""

from __future__ import annotations

import typer

JUDGE = typer.Option("--judge", "-j", help="Judge spec.")
JUDGES = typer.Option(
    "--judges", "-j", help="Comma-separated judge specs; ';' between specs that contain commas."
)
BOOTSTRAP = typer.Option("--bootstrap", help="Bootstrap resamples for the 95 % CIs.")
OUT_DIR = typer.Option("--out", "-o", help="Output folder.")
OUT_FILE = typer.Option("--out", "-o", help="Write to this file.")
FORMAT = typer.Option("--format", "-f", help="Output format.")
RECURSIVE = typer.Option("--recursive", "-r", help="Descend into sub-folders.")
MAX_PIXELS = typer.Option("--max-pixels", help="Refuse larger images.")
SCALE = typer.Option("--scale", "-s", help="Upscaling factor.")
SAMPLES = typer.Option("--samples", "-n", help="Samples per stochastic backend.")
TOP_K = typer.Option("--top-k", "-k", help="How many of the best to fuse.")
FUSE = typer.Option("--fuse", help="none, mean, median or weighted.")
EXECUTOR = typer.Option(
    "--executor",
    "-x",
    help="Where items run: local (default: here, one at a time), processes[:N] (N processes here), "
    "ray (a Ray instance started for the run) or ray:auto|ADDRESS (a running cluster); options after "
    "commas: workers=N, cpus=C, gpus=G per worker, threads=T items at once per worker (VLM judges "
    "behind a server), retries=R.",
)

# Training commands (tune, evolve).
CONFIG = typer.Option("--config", "-c", help="YAML config (see --write-config); flags override it.")
DEVICE = typer.Option("--device", help="auto, cpu, cuda or cuda:N.")
