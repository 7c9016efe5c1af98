"""The CPU cores this process may use: one answer for threads, data workers and preprocessing pools."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores in this process's affinity mask (Linux), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: OpenMP settings clinseg starts torch with where the user has not set them. ``PASSIVE``: torch's OpenMP
#: threads sleep between parallel regions instead of spinning. Alone on its cores a step costs about the
#: same; beside a busy process, spinning threads wait for a sibling that is not running and a 2-core step
#: slowed ~10x (issue 21; ``bench/contention.py`` measures both, figures in docs/benchmarks.md).
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def openmp_environment() -> dict[str, str]:
    """The OpenMP variables of :data:`OPENMP_DEFAULTS` as they are in effect: the user's value, else ours."""
    return {name: os.environ.get(name, value) for name, value in OPENMP_DEFAULTS.items()}


def set_openmp_defaults() -> None:
    """Put :data:`OPENMP_DEFAULTS` into the environment where the user has not set them. OpenMP reads them
    once, when torch first starts it, so this runs when ``clinseg`` is imported; a program that started torch
    before keeps its own settings."""
    for name, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(name, value)
