"""The execution layer on its own: specs, the local and process pools, per-worker loading, a killed
worker, Ray missing. (Ray itself and every command: tests/execute/test_commands.py.)"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Iterator

import pytest

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.execute import ExecutorSpec, PerWorker, create_executor, parse_executor
from tests.execute.helpers import CountBuilds, slow_square, square


@pytest.mark.parametrize(
    ("text", "canonical", "kind", "workers", "address"),
    [
        ("local", "local", "local", None, None),
        ("processes:2", "processes:2", "processes", 2, None),
        ("processes,workers=3", "processes:3", "processes", 3, None),
        ("ray", "ray", "ray", None, None),
        ("ray:auto", "ray:auto", "ray", None, "auto"),
        ("ray,gpus=1", "ray:gpus=1", "ray", None, None),
        (
            "ray:10.0.0.5:6379,workers=8,gpus=0.5",
            "ray:10.0.0.5:6379,workers=8,gpus=0.5",
            "ray",
            8,
            "10.0.0.5:6379",
        ),
        ("ray:ray://head:10001,retries=1", "ray:ray://head:10001,retries=1", "ray", None, "ray://head:10001"),
        ("ray:auto,cpus=0.25,threads=16", "ray:auto,cpus=0.25,threads=16", "ray", None, "auto"),
    ],
)
def test_executor_specs_parse_and_print_back(
    text: str, canonical: str, kind: str, workers: int | None, address: str | None
) -> None:
    spec = parse_executor(text)
    assert (str(spec), spec.kind, spec.workers, spec.address) == (canonical, kind, workers, address)
    assert parse_executor(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proceses:2", "Did you mean: processes?"),
        ("processes:two", "takes a number of worker processes, got 'two'"),
        ("processes:0", "at least one worker"),
        ("processes:2,gpus=1", "use --executor ray,gpus=G"),
        ("ray:auto,workrs=2", "did you mean workers?"),
        ("local:4", "local takes no argument"),
        ("ray:auto,cpus=0", "cpus must be > 0"),
        ("", "--executor is empty"),
        ("processes:2,threads=0", "threads must be >= 1"),
    ],
)
def test_bad_executor_specs_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_executor(text)
    assert message in str(info.value)


def _counted(n: int, pulled: list[int]) -> Iterator[int]:
    for i in range(n):
        pulled.append(i)
        yield i


def test_local_map_streams_in_order_with_error_records() -> None:
    pulled: list[int] = []
    with create_executor("local") as executor:
        stream = executor.map(square, _counted(8, pulled))
        first = next(stream)
        assert first.value == 0 and pulled == [0]  # items are drawn one at a time
        rest = list(stream)
    outcomes = [first, *rest]
    assert [o.index for o in outcomes] == list(range(8))
    assert [o.value for o in outcomes if o.ok] == [0, 1, 4, 16, 36, 49]
    assert outcomes[3].error == "three is not welcome" and outcomes[3].error_type == "SrjudgeError"
    assert outcomes[5].error is not None and outcomes[5].error.startswith(
        "ZeroDivisionError: five (at helpers.py:"
    )
    stats = executor.last_stats
    assert stats is not None and (stats.items, stats.errors, stats.retried) == (8, 2, 0)


def test_processes_give_the_local_outcomes_and_build_shared_objects_once_per_process() -> None:
    pulled: list[int] = []
    with create_executor("processes:2,threads=3") as threaded:
        in_threads = list(threaded.map(square, range(40)))
    with create_executor("processes:2") as executor:
        assert executor.workers == 2
        stream = executor.map(square, _counted(40, pulled), window=4)
        first = next(stream)
        assert first.index == 0 and len(pulled) <= 5  # a bounded window, not the whole input
        ordered = [first, *stream]
        unordered = list(executor.map(square, range(40), ordered=False))
        builds = list(executor.map(CountBuilds(), range(30)))
    local = list(create_executor("local").map(square, range(40)))
    strip = [(o.index, o.value, o.error, o.error_type) for o in local]
    assert [(o.index, o.value, o.error, o.error_type) for o in ordered] == strip
    assert [(o.index, o.value, o.error, o.error_type) for o in in_threads] == strip
    assert sorted((o.index, o.value, o.error) for o in unordered) == [(i, v, e) for i, v, e, _ in strip]
    assert {o.value[1] for o in builds if o.value} == {1}  # each process built it once, then reused it
    assert all(o.worker != "driver" and o.worker.rsplit(":", 1)[1].isdigit() for o in ordered)


def test_a_killed_worker_process_loses_and_duplicates_nothing() -> None:
    with create_executor("processes:2,retries=2") as executor:
        seen: list[int] = []
        killed = None
        for outcome in executor.map(slow_square, range(40)):
            seen.append(outcome.index)
            assert outcome.ok, outcome.error
            assert outcome.value is not None and outcome.value[0] == outcome.index**2
            if killed is None and len(seen) == 4:
                killed = outcome.value[1]
                os.kill(killed, signal.SIGKILL)
        stats = executor.last_stats
    assert seen == list(range(40))
    assert stats is not None and stats.workers_lost >= 1 and stats.retried >= 1


def test_per_worker_handles_pickle_without_the_drivers_instance() -> None:
    handle = PerWorker("test:x", dict, local={"big": "model"})
    assert handle.get() == {"big": "model"}
    clone = pickle.loads(pickle.dumps(handle))
    assert clone.local is None and clone.key == "test:x" and clone.get() == {}


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'srjudge\[ray\]'"):
        create_executor("ray")
    assert parse_executor(None) == ExecutorSpec()
