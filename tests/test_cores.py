"""Cores and OpenMP: the cores of the affinity mask; torch's OpenMP threads sleep instead of spinning unless
the user says otherwise (a spinning 2-thread step slowed ~10x beside one busy process, issue 21)."""

from __future__ import annotations

import os
import subprocess
import sys

from clinseg.cores import available_cores, openmp_environment

SHOW = "import clinseg, os, torch; torch.ones(64, 64) @ torch.ones(64, 64); print(os.environ['OMP_WAIT_POLICY'])"


def _env_without_openmp() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}


def test_available_cores_is_the_affinity_mask() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))


def test_importing_clinseg_makes_openmp_threads_sleep_unless_the_user_chose() -> None:
    ours = subprocess.run([sys.executable, "-c", SHOW], env=_env_without_openmp(), capture_output=True,
                          text=True, check=True).stdout.split()
    assert ours == ["PASSIVE"]
    theirs = subprocess.run([sys.executable, "-c", SHOW], env={**_env_without_openmp(), "OMP_WAIT_POLICY": "ACTIVE"},
                            capture_output=True, text=True, check=True).stdout.split()
    assert theirs == ["ACTIVE"]
    assert openmp_environment()["OMP_WAIT_POLICY"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
