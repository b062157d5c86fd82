"""Executor specs: where the items of a command run (``--executor``).

``local``
    One process, one item after another: srjudge's behaviour before executors (the default).
``processes[:N]``
    N worker processes on this machine (default: one per CPU core).
``ray``
    A Ray instance started on this machine for the run (stopped at the end).
``ray:auto`` or ``ray:ADDRESS``
    A running Ray cluster (``ray start --head`` on one node, ``ray start --address=...`` on the others);
    ``auto`` finds the cluster of this node (or ``$RAY_ADDRESS``), ``ADDRESS`` is ``host:6379`` or a
    Ray client address ``ray://host:10001``.

Options follow after commas, as in every srjudge spec: ``workers=N`` (default: as many as the CPUs, or
GPUs, allow), ``cpus=C`` and ``gpus=G`` per worker (Ray's resource request of each worker actor;
``gpus=0.5`` packs two workers on one GPU), ``threads=T`` (items each worker runs at once, in threads:
for work that waits on a server, such as a VLM judge behind vLLM; default 1), ``retries=R`` (times an
item whose worker died is run again; default 3). Examples: ``processes:2``, ``ray:auto,gpus=1``,
``ray:10.0.0.5:6379,workers=64``, ``ray:auto,cpus=0.25,threads=16``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

from srjudge.errors import SpecError
from srjudge.registry import did_you_mean
from srjudge.spec import coerce_options, parse_spec

ExecutorKind = Literal["local", "processes", "ray"]
KINDS: tuple[ExecutorKind, ...] = ("local", "processes", "ray")
DEFAULT_RETRIES = 3

_OPTIONS: dict[str, type] = {"workers": int, "cpus": float, "gpus": float, "threads": int, "retries": int}
_FORMS = (
    "local, processes[:N] or ray[:auto|ADDRESS] (options: workers=N, cpus=C, gpus=G, threads=T, retries=R)"
)


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor`` value; :meth:`__str__` gives back a canonical spec string."""

    kind: ExecutorKind = "local"
    workers: int | None = None
    """Worker processes or actors; None: one per CPU core (per ``cpus``), or per GPU share with ``gpus``."""
    address: str | None = None
    """Ray only: ``auto`` or a cluster address; None starts a local instance for the run."""
    cpus: float = 1.0
    gpus: float = 0.0
    threads: int = 1
    """Items each worker runs at once (threads), for work that mostly waits (HTTP calls)."""
    retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"--executor {self.kind!r}: use {_FORMS}.{did_you_mean(self.kind, KINDS)}")
        if self.workers is not None and self.workers < 1:
            raise SpecError(f"--executor {self}: give at least one worker, got {self.workers}.")
        if not (math.isfinite(self.cpus) and self.cpus > 0) or not (
            math.isfinite(self.gpus) and self.gpus >= 0
        ):
            raise SpecError(
                f"--executor: cpus must be > 0 and gpus >= 0 per worker, got cpus={self.cpus:g}, "
                f"gpus={self.gpus:g}."
            )
        if self.retries < 0:
            raise SpecError(f"--executor: retries must be >= 0, got {self.retries}.")
        if self.threads < 1:
            raise SpecError(f"--executor: threads must be >= 1, got {self.threads}.")
        if self.kind == "local" and (
            self.workers not in (None, 1) or self.gpus or self.address or self.threads != 1
        ):
            raise SpecError("--executor local runs one item at a time in this process; it takes no options.")
        if self.kind == "processes" and self.gpus:
            raise SpecError(
                "--executor processes takes no gpus= option: give each model-backed judge or SR backend "
                "its device in its spec (device=cuda:N), or use --executor ray,gpus=G to have Ray place "
                "workers on GPUs."
            )
        if self.kind != "ray" and self.address is not None:
            raise SpecError(
                f"--executor {self.kind} takes no address; only ray does (ray:auto, ray:HOST:PORT)."
            )

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def default_workers(self) -> int:
        """Workers for ``processes`` without a count: one per CPU core (per ``cpus`` cores)."""
        return self.workers or max(1, int((os.cpu_count() or 1) // max(1.0, self.cpus)))

    def __str__(self) -> str:
        head = self.kind
        arg = (
            self.address
            if self.kind == "ray"
            else (str(self.workers) if self.kind == "processes" and self.workers else None)
        )
        options: list[str] = []
        if self.kind == "ray" and self.workers is not None:
            options.append(f"workers={self.workers}")
        if self.cpus != 1.0:
            options.append(f"cpus={self.cpus:g}")
        if self.gpus:
            options.append(f"gpus={self.gpus:g}")
        if self.threads != 1:
            options.append(f"threads={self.threads}")
        if self.retries != DEFAULT_RETRIES:
            options.append(f"retries={self.retries}")
        parts = ([arg] if arg else []) + options
        return head + (":" + ",".join(parts) if parts else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": str(self),
            "kind": self.kind,
            "workers": self.workers,
            "address": self.address,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "threads": self.threads,
            "retries": self.retries,
        }


def parse_executor(text: str | ExecutorSpec | None) -> ExecutorSpec:
    """``local``, ``processes:4``, ``ray``, ``ray:auto,gpus=1``...; malformed: :class:`SpecError`."""
    if text is None:
        return ExecutorSpec()
    if isinstance(text, ExecutorSpec):
        return text
    if not text.strip():
        raise SpecError(f"--executor is empty: use {_FORMS}.")
    head, comma, rest = text.partition(",")
    if comma and ":" not in head:  # ray,gpus=1 means ray:gpus=1
        text = f"{head}:{rest}"
    parsed = parse_spec(text)
    kind = parsed.name
    if kind not in KINDS:
        raise SpecError(
            f"--executor {text!r}: unknown executor {kind!r}; use {_FORMS}.{did_you_mean(kind, KINDS)}"
        )
    options = coerce_options(parsed, _OPTIONS, kind="executor")
    workers: int | None = options.get("workers")
    address: str | None = None
    if kind == "processes" and parsed.arg is not None:
        if workers is not None:
            raise SpecError(f"--executor {text!r}: give the worker count once (processes:N or workers=N).")
        try:
            workers = int(parsed.arg)
        except ValueError:
            raise SpecError(
                f"--executor {text!r}: processes:N takes a number of worker processes, got {parsed.arg!r}."
            ) from None
    elif kind == "ray":
        address = parsed.arg
    elif parsed.arg is not None:
        raise SpecError(f"--executor {text!r}: local takes no argument; use {_FORMS}.")
    return ExecutorSpec(
        kind=kind,
        workers=workers,
        address=address,
        cpus=float(options.get("cpus", 1.0)),
        gpus=float(options.get("gpus", 0.0)),
        threads=int(options.get("threads", 1)),
        retries=int(options.get("retries", DEFAULT_RETRIES)),
    )
