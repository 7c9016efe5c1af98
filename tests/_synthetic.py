"""Tiny synthetic datasets on disk for the planning, preprocessing and cache tests.

A "head" of soft tissue in air (CT: -1000 HU outside, ~40 HU inside, a bright 'bone' slab; MR: 0 outside,
positive inside), with a sphere structure ``Organ`` near its centre and a left/right pair ``Eye_L``/``Eye_R``
at lower and higher X (the array's X axis runs towards the patient's left with the default direction).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clinseg.io import Geometry, write_image


def sphere(shape: tuple[int, int, int], centre: tuple[float, float, float], radius_zyx: tuple[float, float, float]) -> np.ndarray:
    """A uint8 ellipsoid mask of radii ``radius_zyx`` voxels."""
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d = ((z - centre[0]) / radius_zyx[0]) ** 2 + ((y - centre[1]) / radius_zyx[1]) ** 2 + \
        ((x - centre[2]) / radius_zyx[2]) ** 2
    return (d <= 1.0).astype(np.uint8)


def write_case(root: Path, split: str, case: str, shape: tuple[int, int, int], spacing: tuple[float, float, float],
               modality: str = "CT", seed: int = 0, eyes: bool = True) -> None:
    """One case of the synthetic head; ``spacing`` is ``(x, y, z)`` mm."""
    rng = np.random.default_rng(seed)
    geometry = Geometry(spacing=spacing, shape=shape)
    centre = tuple(s / 2 for s in shape)
    head = sphere(shape, centre, tuple(s * 0.38 for s in shape)).astype(bool)
    if modality == "CT":
        image = np.full(shape, -1000.0, np.float32)
        image[head] = 40.0
        image[head & (np.arange(shape[0])[:, None, None] < shape[0] * 0.35)] = 700.0  # bone at the top
    else:
        image = np.zeros(shape, np.float32)
        image[head] = 300.0
    image += rng.normal(0, 5, shape).astype(np.float32)
    write_image(image, geometry, root / f"images{split}" / f"{case}_0000.nii.gz")
    r = tuple(max(1.5, s * 0.12) for s in shape)
    write_image(sphere(shape, centre, r), geometry, root / f"structures{split}" / case / "Organ.nii.gz")
    if eyes:
        for name, x in (("Eye_R", shape[2] * 0.35), ("Eye_L", shape[2] * 0.65)):
            eye = sphere(shape, (centre[0], centre[1] * 0.8, x), tuple(max(1.2, s * 0.07) for s in shape))
            write_image(eye, geometry, root / f"structures{split}" / case / f"{name}.nii.gz")


def write_dataset(root: Path, cases: int = 3, shape: tuple[int, int, int] = (16, 20, 24),
                  spacing: tuple[float, float, float] = (1.0, 1.0, 2.0), modality: str = "CT", test_cases: int = 1,
                  eyes: bool = True, spacings: list[tuple[float, float, float]] | None = None) -> Path:
    """A dataset of ``cases`` training and ``test_cases`` test cases (``spacings``: one per training case)."""
    root.mkdir(parents=True, exist_ok=True)
    labels = ["Organ", "Eye_L", "Eye_R"] if eyes else ["Organ"]
    (root / "dataset.json").write_text(json.dumps({
        "name": "Synthetic", "channel_names": {"0": modality}, "labels": labels, "label_mode": "multilabel"}))
    for i in range(cases):
        write_case(root, "Tr", f"case_{i}", shape, spacings[i] if spacings else spacing, modality, seed=i, eyes=eyes)
    for i in range(test_cases):
        write_case(root, "Ts", f"test_{i}", shape, spacing, modality, seed=100 + i, eyes=eyes)
    return root
