"""Shared pieces of the command line: the Typer app, consoles, progress bars and formatting."""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    GetTimeCallable,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from srjudge.execute import Executor
    from srjudge.judges.base import Judge

T = TypeVar("T")

app = typer.Typer(
    name="srjudge",
    help="Judge super-resolution outputs: calibrated metrics, a trustworthiness score, VLM judges.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def sub_app(name: str, help: str, *, no_args_is_help: bool = True) -> typer.Typer:
    """A command group, registered as ``srjudge NAME``."""
    group = typer.Typer(
        name=name,
        help=help,
        no_args_is_help=no_args_is_help,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.add_typer(group, name=name)
    return group


class ScoreFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    jsonl = "jsonl"


class RankFormat(StrEnum):
    table = "table"
    json = "json"


#: Seconds between two plain progress lines when stderr is not a terminal (a log file, CI).
PROGRESS_INTERVAL_ENV = "SRJUDGE_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL = 10.0


def progress_interval() -> float:
    """Seconds between plain progress lines: ``$SRJUDGE_PROGRESS_INTERVAL`` (0 = every update), else 10."""
    raw = os.environ.get(PROGRESS_INTERVAL_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_PROGRESS_INTERVAL
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL
    return max(0.0, value) if math.isfinite(value) else DEFAULT_PROGRESS_INTERVAL


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=max(0, round(seconds))))


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


@dataclass
class _Stage:
    """What the line log knows of one task's current stage (a description; a new one restarts the rate)."""

    description: str
    total: float | None
    completed: float
    start: float  # first observation: the rate counts from here (a resumed run's jump is not "speed")
    start_completed: float
    now: float
    last_line: float | None = None
    closed: bool = False  # its final line is written

    def rate(self) -> float | None:
        elapsed = self.now - self.start
        done = self.completed - self.start_completed
        return done / elapsed if elapsed > 0 and done > 0 else None

    def line(self, *, final: bool = False, failed: bool = False) -> str:
        done = _count(self.completed)
        text = (
            f"{self.description}: {done}/{_count(self.total)} items"
            if self.total
            else f"{self.description}: {done} items"
        )
        rate = self.rate()
        if rate is not None:
            text += f", {rate:.3g} items/s" if rate >= 1 else f", {1 / rate:.3g} s/item"
        took = _clock(self.now - self.start)
        if failed:
            return text + f", stopped after {took}"
        if final:
            complete = not self.total or self.completed >= self.total
            return text + (f", done in {took}" if complete else f", ended after {took}")
        if self.total:
            left = max(0.0, self.total - self.completed)
            text += ", ETA " + ("?" if rate is None else _clock(left / rate))
        return text


class LoggedProgress(Progress):
    """A rich :class:`Progress` that, when ``log_lines`` is set, also writes one plain line per task.

    On a terminal the bars show and ``log_lines`` is off. Elsewhere (a log file, CI) the bars are disabled
    and every task gets a line when it starts, then at most one every ``interval`` seconds (items done,
    rate, ETA), and a final line when its stage (description) changes or the block ends.
    """

    def __init__(
        self,
        *columns: Any,
        log_lines: bool = False,
        interval: float = DEFAULT_PROGRESS_INTERVAL,
        log_console: Console | None = None,
        get_time: GetTimeCallable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*columns, get_time=get_time, **kwargs)
        self._log_lines = log_lines
        self._interval = interval
        self._log_console = log_console or self.console
        self._stages: dict[TaskID, _Stage] = {}
        self._line_lock = threading.Lock()

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
        refresh: bool = False,
        **fields: Any,
    ) -> None:
        super().update(
            task_id,
            total=total,
            completed=completed,
            advance=advance,
            description=description,
            visible=visible,
            refresh=refresh,
            **fields,
        )
        self._observe(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._observe(task_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        try:
            self._close_all(failed=exc_type is not None)
        finally:
            super().__exit__(exc_type, exc_val, exc_tb)

    def _write(self, text: str) -> None:
        self._log_console.print(text, markup=False, highlight=False, emoji=False)

    def _observe(self, task_id: TaskID) -> None:
        if not self._log_lines:
            return
        task = next((t for t in self.tasks if t.id == task_id), None)
        if task is None:
            return
        now = self.get_time()
        with self._line_lock:
            stage = self._stages.get(task_id)
            if stage is not None and (
                task.description != stage.description or task.completed < stage.completed
            ):
                if not stage.closed:
                    self._write(stage.line(final=True))
                stage = None
            if stage is None:
                stage = _Stage(task.description, task.total, task.completed, now, task.completed, now)
                self._stages[task_id] = stage
            elif stage.closed:
                if not (task.total and task.completed < task.total):
                    return  # nothing new since its final line
                stage.closed = False  # its total grew: more to do
            stage.total, stage.completed, stage.now = task.total, task.completed, now
            if stage.total and stage.completed >= stage.total:
                stage.closed = True
                self._write(stage.line(final=True))
            elif stage.last_line is None or now - stage.last_line >= self._interval:
                stage.last_line = now
                self._write(stage.line())

    def _close_all(self, *, failed: bool) -> None:
        if not self._log_lines:
            return
        with self._line_lock:
            for stage in self._stages.values():
                if not stage.closed:
                    stage.closed = True
                    self._write(stage.line(final=True, failed=failed))


def _progress() -> LoggedProgress:
    """Progress bars on a terminal; elsewhere periodic plain lines (see :class:`LoggedProgress`)."""
    terminal = err.is_terminal
    return LoggedProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not terminal,
        log_lines=not terminal,
        interval=progress_interval(),
    )


@contextmanager
def _progress_task(description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
    """One progress task for the block; yields ``update(completed, total=None, description=None)``
    (``None`` leaves that field as it is)."""
    with _progress() as progress:
        task = progress.add_task(description, total=total)

        def update(completed: float, total: float | None = None, description: str | None = None) -> None:
            progress.update(task, completed=completed, total=total, description=description)

        yield update


@contextmanager
def _executor(spec: str) -> Iterator[Executor]:
    """The ``--executor`` of a command for the block; its workers stop at the end, and (unless local) a
    summary line of the job (items, workers, time, error records, lost workers) goes to stderr."""
    from srjudge.execute import create_executor

    with create_executor(spec) as executor:
        yield executor
        if not executor.spec.is_local:
            for stats in executor.history:
                err.print(stats.line(), highlight=False)


def _exit_if_failed(failed: Sequence[tuple[str, str]]) -> None:
    """List the items that failed (name: reason) on stderr and exit with status 1 if there are any."""
    for name, reason in failed:
        err.print(f"[red]failed:[/] {name}: {reason}")
    if failed:
        raise typer.Exit(1)


def _create_judges(specs: str) -> list[Judge]:
    """The judges of a ``--judges`` list (``,`` or ``;`` between specs)."""
    from srjudge.judges import create_judge
    from srjudge.spec import iter_specs

    return [create_judge(s) for s in iter_specs(specs, option="--judges")]


def _load_config(cls: type[T], path: Path | None) -> T:
    """The dataclass config ``cls`` from a YAML file, or its defaults when there is none."""
    from srjudge.train.common import load_config_yaml

    return load_config_yaml(cls, path) if path is not None else cls()


def _write_config(config: Any, path: Path) -> None:
    """``--write-config``: save the config as YAML and say so on stderr."""
    from srjudge.train.common import save_config_yaml

    save_config_yaml(config, path)
    err.print(f"wrote {path}")


def _emit(text: str, out_file: Path | None) -> None:
    if out_file is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        err.print(f"wrote {out_file}")


def _fmt(value: float | str | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}"
