"""The one progress helper of clinseg: a rich progress bar that library code may use without printing.

Progress goes to stderr and is disabled automatically when stderr is not a terminal (CI, pipes) unless
``CLINSEG_PROGRESS=1``; ``CLINSEG_PROGRESS=0`` always disables it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars should be drawn (env ``CLINSEG_PROGRESS`` overrides the tty check)."""
    env = os.environ.get("CLINSEG_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def make_progress() -> Progress:
    """A configured :class:`rich.progress.Progress` (description, bar, count, elapsed, ETA, fields)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        disable=not progress_enabled(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` while showing a progress bar (no-op display when disabled)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as progress:
        task = progress.add_task(description, total=total, status="")
        for item in items:
            yield item
            progress.advance(task)


class TextProgress:
    """Progress as plain log lines when no bar is drawn (nohup, SLURM, CI): one line every twentieth of the
    work or every ``seconds``, whichever comes first, with the rate and the time left.

    Examples
    --------
    >>> report = TextProgress(total=100, what="iterations")   # doctest: +SKIP
    >>> report.update(10, "loss 0.52")                         # doctest: +SKIP
    training: 10/100 iterations (2.1 it/s, 43 s left) loss 0.52
    """

    def __init__(self, total: int, start: int = 0, what: str = "iterations", seconds: float = 60.0,
                 label: str = "training") -> None:
        self.total = total
        self.start = start
        self.what = what
        self.seconds = seconds
        self.label = label
        self.enabled = not progress_enabled()
        self._began = time.perf_counter()
        self._last_time = self._began
        self._last_done = start

    def update(self, done: int, status: str = "") -> None:
        """Report ``done`` of ``total`` (logged only when due)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        step = max(1, self.total // 20)
        if done < self.total and done - self._last_done < step and now - self._last_time < self.seconds:
            return
        rate = (done - self.start) / max(now - self._began, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("inf")
        logging.getLogger("clinseg.progress").info(
            "%s: %d/%d %s (%.2f/s, %s left) %s", self.label, done, self.total, self.what, rate,
            _duration(left), status)
        self._last_time, self._last_done = now, done


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")
