"""The one progress helper of clinseg: a rich progress bar that library code may use without printing.

The bar goes to stderr and is drawn only when stderr is a terminal, unless ``CLINSEG_PROGRESS=1`` (always)
or ``CLINSEG_PROGRESS=0`` (never). Where no bar is drawn (nohup, SLURM, CI, a pipe), progress becomes log
lines (logger ``clinseg.progress``, INFO): one every twentieth of the work or every minute, with the rate and
the time left (:class:`TextProgress`), so a log shows how far a long job is.
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


def track(items: Iterable[T], description: str, total: int | None = None, what: str = "items") -> Iterator[T]:
    """Iterate over ``items`` while showing progress.

    On a terminal a rich bar is drawn (stderr); otherwise (nohup, SLURM, CI, a pipe) :class:`TextProgress`
    logs a line every twentieth of the work or every minute, with the rate and the time left, e.g.
    ``predicting: 4/80 cases (0.52/s, 2m26s left)``. ``what`` names the items in those lines.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not progress_enabled():
        report = TextProgress(total, what=what, label=description)
        for done, item in enumerate(items, start=1):
            yield item
            report.update(done)
        return
    with make_progress() as progress:
        task = progress.add_task(description, total=total, status="")
        for item in items:
            yield item
            progress.advance(task)


#: Plain progress lines come at most this often (a fast loop of 20 items logs its end only).
MIN_SECONDS = 5.0


class TextProgress:
    """Progress as plain log lines when no bar is drawn (nohup, SLURM, CI): one line every twentieth of the
    work (at most every :data:`MIN_SECONDS`) or every ``seconds``, whichever comes first, and at the end, with
    the rate and the time left.

    Examples
    --------
    >>> report = TextProgress(total=100, what="iterations")   # doctest: +SKIP
    >>> report.update(10, "loss 0.52")                         # doctest: +SKIP
    training: 10/100 iterations (2.1 it/s, 43 s left) loss 0.52
    """

    def __init__(self, total: int | None, start: int = 0, what: str = "iterations", seconds: float = 60.0,
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
        """Report ``done`` of ``total`` (logged only when due; every ``seconds`` when the total is unknown)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        total = self.total
        step = max(1, total // 20) if total else None
        finished = total is not None and done >= total
        stepped = step is not None and done - self._last_done >= step and now - self._last_time >= MIN_SECONDS
        if not (finished or stepped or now - self._last_time >= self.seconds):
            return
        rate = (done - self.start) / max(now - self._began, 1e-9)
        log = logging.getLogger("clinseg.progress")
        if total is None:
            log.info("%s: %d %s (%.2f/s) %s", self.label, done, self.what, rate, status)
        else:
            left = (total - done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d %s (%.2f/s, %s left) %s", self.label, done, total, self.what, rate,
                     _duration(left), status)
        self._last_time, self._last_done = now, done


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")
