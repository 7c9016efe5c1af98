"""The cores this process may use: those of its affinity mask."""

from __future__ import annotations

import os

from clinseg.cores import available_cores


def test_available_cores_is_the_affinity_mask() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))
