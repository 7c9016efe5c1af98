"""Shared fixtures: tiny datasets built on disk in tmp_path with real files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from clinseg.io import Geometry, write_image

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0), shape=(8, 10, 12))


def _blob(shape: tuple[int, int, int], center: tuple[int, int, int], r: int) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 <= r * r).astype(np.uint8)


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Build a tiny multilabel dataset: 3 training cases, 1 test case, 1 channel, structures A and B.

    ``case_1`` lacks B (partial delineation). Returns the dataset root.
    """

    def build(name: str = "ds", ending: str = ".nii.gz", cases: int = 3) -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(0)
        spec = {
            "name": "Tiny",
            "channel_names": {"0": "T1"},
            "labels": {"A": 1, "B": 2},
            "label_mode": "multilabel",
            "file_ending": ending,
            "cases": {"case_0": {"weak_labels": {"tumour": True}}},
        }
        (root).mkdir(parents=True)
        (root / "dataset.json").write_text(json.dumps(spec))
        for split, prefix, n in (("Tr", "case", cases), ("Ts", "test", 1)):
            for i in range(n):
                case = f"{prefix}_{i}"
                img = rng.normal(size=GEOM.shape).astype(np.float32)
                write_image(img, GEOM, root / f"images{split}" / f"{case}_0000{ending}")
                write_image(_blob(GEOM.shape, (4, 5, 4), 2), GEOM, root / f"structures{split}" / case / f"A{ending}")
                if case != "case_1":
                    write_image(_blob(GEOM.shape, (4, 5, 8), 2), GEOM, root / f"structures{split}" / case / f"B{ending}")
        return root

    return build


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Preprocessed cases and fingerprints go to a folder of the test session, never to ~/.cache."""
    import os

    os.environ["CLINSEG_CACHE"] = str(tmp_path_factory.mktemp("clinseg-cache"))
