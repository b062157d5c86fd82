"""Progress reporting: bars on a terminal, periodic plain lines (done/total, rate, ETA) elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import srjudge.cli.testbed_cmd  # noqa: F401  (registers `srjudge testbed`)
from srjudge.cli.common import (
    DEFAULT_PROGRESS_INTERVAL,
    PROGRESS_INTERVAL_ENV,
    LoggedProgress,
    _progress,
    app,
    progress_interval,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logged(
    clock: _Clock, interval: float = 10.0, log_lines: bool = True
) -> tuple[LoggedProgress, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, force_terminal=False, color_system=None)
    progress = LoggedProgress(
        console=console, disable=True, log_lines=log_lines, interval=interval, get_time=clock
    )
    return progress, buffer


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_lines_are_throttled_and_give_rate_and_eta() -> None:
    clock = _Clock()
    progress, buffer = _logged(clock)
    with progress:
        task = progress.add_task("bench", total=233)
        progress.update(task, completed=0)  # the start: one line at once
        for second in range(1, 30):
            clock.now = float(second)
            progress.update(task, completed=int(second * 4.1))  # at most one line per 10 s
        clock.now = 30.0
        progress.update(task, completed=123)
        clock.now = 40.0
        progress.update(task, description="niqe", completed=0, total=10)  # a new stage closes the last
        clock.now = 45.0
        progress.update(task, completed=10)  # complete: its final line now, none again at the end
    assert _lines(buffer) == [
        "bench: 0/233 items, ETA ?",
        "bench: 41/233 items, 4.1 items/s, ETA 0:00:47",
        "bench: 82/233 items, 4.1 items/s, ETA 0:00:37",
        "bench: 123/233 items, 4.1 items/s, ETA 0:00:27",
        "bench: 123/233 items, 4.1 items/s, ended after 0:00:30",
        "niqe: 0/10 items, ETA ?",
        "niqe: 10/10 items, 2 items/s, done in 0:00:05",
    ]


def test_every_update_with_interval_zero_and_slow_rates_per_item() -> None:
    clock = _Clock()
    progress, buffer = _logged(clock, interval=0.0)
    with progress:
        task = progress.add_task("judging", total=None)
        for done in range(3):
            clock.now = 20.0 * done
            progress.update(task, completed=done)
    assert _lines(buffer) == [
        "judging: 0 items",
        "judging: 1 items, 20 s/item",
        "judging: 2 items, 20 s/item",
        "judging: 2 items, 20 s/item, done in 0:00:40",  # the final line when the block ends
    ]


def test_an_error_ends_with_a_stopped_line_and_advance_is_seen() -> None:
    clock = _Clock()
    progress, buffer = _logged(clock, interval=0.0)
    with pytest.raises(RuntimeError), progress:
        task = progress.add_task("generating", total=4)
        progress.advance(task)
        clock.now = 8.0
        progress.advance(task)
        clock.now = 9.0
        raise RuntimeError("boom")
    assert _lines(buffer) == [
        "generating: 1/4 items, ETA ?",
        "generating: 2/4 items, 8 s/item, ETA 0:00:16",
        "generating: 2/4 items, 8 s/item, stopped after 0:00:08",
    ]


def test_no_lines_on_a_terminal() -> None:
    clock = _Clock()
    progress, buffer = _logged(clock, interval=0.0, log_lines=False)
    with progress:
        task = progress.add_task("x", total=3)
        progress.update(task, completed=3)
    assert buffer.getvalue() == ""


@pytest.mark.parametrize(
    "raw,expected",
    [
        (None, DEFAULT_PROGRESS_INTERVAL),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-1", 0.0),
        ("soon", DEFAULT_PROGRESS_INTERVAL),
    ],
)
def test_interval_from_the_environment(
    raw: str | None, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    if raw is None:
        monkeypatch.delenv(PROGRESS_INTERVAL_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_INTERVAL_ENV, raw)
    assert progress_interval() == expected


def test_shared_helper_logs_to_stderr_when_it_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PROGRESS_INTERVAL_ENV, "0")
    with _progress() as progress:
        task = progress.add_task("scoring", total=3)
        for done in range(4):
            progress.update(task, completed=done)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == "scoring: 0/3 items, ETA ?"
    assert any("1/3 items" in line and "ETA" in line for line in lines)
    assert lines[-1].startswith("scoring: 3/3 items") and "done in" in lines[-1]


TINY_TESTBED = """\
classes: "38OQB17"
test_copies: 1
splits: [test]
severities: [0, 3]
sklearn_limit: 6
"""


def test_testbed_build_reports_progress_in_a_log(tmp_path: Path) -> None:
    """`srjudge testbed build` with stderr captured (not a terminal) writes plain progress lines."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TESTBED)
    args = ["testbed", "build", "--out", str(tmp_path / "tb"), "--config", str(cfg), "--seed", "3"]
    result = CliRunner().invoke(app, args, env={PROGRESS_INTERVAL_ENV: "0"})
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "build: 0/46 items, ETA ?"
    assert lines[-1].startswith("build: 46/46 items") and "done in" in lines[-1]
    assert "46 items" in result.stdout
