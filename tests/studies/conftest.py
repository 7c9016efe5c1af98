"""Fixtures of the study tests: a study spec over the tiny dataset of ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.studies._helpers import TINY_BASE


@pytest.fixture
def write_spec(make_dataset, tmp_path: Path) -> Callable[..., Path]:
    """Write a study spec over the tiny dataset (4 training cases: case_1 lacks B; case_3 validates)."""
    root = make_dataset(cases=4)

    def write(name: str = "study.yaml", **overrides: object) -> Path:
        spec = {"name": "tiny", "dataset": str(root), "validation": ["case_3"], "sizes": [1],
                "modes": ["concentrated", "distributed"], "repeats": 1, "base": TINY_BASE,
                "arms": ["baseline"], **overrides}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec))
        return path

    return write
