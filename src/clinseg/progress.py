"""The one progress helper of clinseg: a rich progress bar that library code may use without printing.

Progress goes to stderr and is disabled automatically when stderr is not a terminal (CI, pipes) unless
``CLINSEG_PROGRESS=1``; ``CLINSEG_PROGRESS=0`` always disables it.
"""

from __future__ import annotations

import os
import sys
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
