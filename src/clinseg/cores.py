"""The CPU cores this process may use: one answer for threads, data workers and preprocessing pools."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores in this process's affinity mask (Linux), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1

