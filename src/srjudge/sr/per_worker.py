"""SR backends in worker processes: each worker rebuilds the driver's backend from its spec, once."""

from __future__ import annotations

import functools
from typing import Any

from srjudge.errors import SrjudgeError
from srjudge.execute.worker import PerWorker
from srjudge.sr.base import SRBackend, create_sr_backend


def backend_handle(backend: SRBackend) -> PerWorker[SRBackend]:
    """``backend`` for work objects: used as is in the driver, rebuilt once per worker from its spec
    (loading its weights there); a rebuilt backend whose settings differ from the driver's is refused."""
    settings = backend.settings()
    return PerWorker(
        f"sr:{backend.spec}",
        functools.partial(create_sr_backend, backend.spec),
        local=backend,
        check=functools.partial(_same_backend, settings),
    )


def _same_backend(expected: dict[str, Any], built: SRBackend) -> None:
    found = built.settings()
    if found != expected:
        raise SrjudgeError(
            f"the SR backend {built.spec!r} rebuilt in a worker has settings {found}, the driver's "
            f"{expected}: install the same srjudge, weights and environment on every node."
        )
