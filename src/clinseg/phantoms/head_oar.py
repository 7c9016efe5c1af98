"""The embedded default dataset: a procedural head-and-neck OAR phantom on T1-weighted MRI.

It imitates the data of seed 000, section 2: one T1-weighted head scan per radiotherapy patient, with
up to 11 organs at risk (brainstem, pituitary, optic chiasm, left/right optic nerve, eye, cochlea, lens),
each delineated only when it lies near the tumour (on average ~9.4 of 11, about a third of the patients
complete), training delineations carrying CT->MR propagation errors, and a clean, complete test set.

Layout written (the clinseg format, nnU-Net v2 compatible)::

    OUT/dataset.json
    OUT/imagesTr/head_000_0000.nii.gz               one T1 channel, int16
    OUT/structuresTr/head_000/<structure>.nii.gz    uint8, only the delineated structures
    OUT/imagesTs/head_test_000_0000.nii.gz, OUT/structuresTs/head_test_000/<structure>.nii.gz (all 11)
    OUT/preview.png

Geometry: identity direction (LPS: +x patient left, +y posterior, +z superior), isotropic voxels of
``spacing_mm`` (2 mm: 96 x 96 x 80 voxels X x Y x Z on a 192 x 192 x 160 mm field of view), grid centred
on the head's mid-sagittal plane.

Examples
--------
>>> from clinseg.phantoms import generate_phantom
>>> generate_phantom("head-oar", "data/HeadOAR", cases=16, test_cases=6, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinseg.io import Geometry
from clinseg.phantoms._acquisition import acquire
from clinseg.phantoms._delineation import (
    DelineationRule,
    choose_delineated,
    propagation_error,
    tumour_gaps,
)
from clinseg.phantoms._head_anatomy import (
    PAIRS,
    STRUCTURES,
    HeadModel,
    render_head,
    sample_head,
)
from clinseg.phantoms._shapes import PoseGrid, SymmetricWarp, rotation_matrix
from clinseg.phantoms._writer import check_options, dataset_spec, write_phantom
from clinseg.phantoms.registry import register_phantom
from clinseg.viz.overlay import OverlayCase, overlay_grid, save_figure

logger = logging.getLogger(__name__)

#: Field of view in mm ``(x, y, z)`` and its centre in the head frame (the head is not centred in y/z).
FOV_MM = (192.0, 192.0, 160.0)
FOV_CENTRE_MM = (0.0, 12.0, 14.0)
VERSION = 1
_SPLITS = {"train": 0, "test": 1}
_STREAMS = ("anatomy", "tumour", "pose", "scanner", "delineation", "propagation")


@dataclass(frozen=True)
class PhantomCase:
    """One simulated case.

    Attributes
    ----------
    case_id : ``head_000`` … (train) or ``head_test_000`` … (test).
    image : ``(Z, Y, X)`` int16 T1 image.
    geometry : its grid (spacing ``(x, y, z)`` mm).
    masks : the delineations as written, name -> ``(Z, Y, X)`` bool (train: delineated ones only, with
        propagation errors; test: all 11, clean).
    clean : all 11 exact masks.
    model : the anatomy the case was drawn from (canonical frame).
    """

    case_id: str
    image: np.ndarray
    geometry: Geometry
    masks: dict[str, np.ndarray]
    clean: dict[str, np.ndarray]
    model: HeadModel


def grid_geometry(spacing_mm: float) -> Geometry:
    """The output grid for an isotropic ``spacing_mm``: FOV ~192 x 192 x 160 mm, symmetric about x = 0."""
    shape_xyz = [max(8, int(round(f / spacing_mm))) for f in FOV_MM]
    origin = tuple(c - (n - 1) * spacing_mm / 2 for c, n in zip(FOV_CENTRE_MM, shape_xyz))
    return Geometry((spacing_mm,) * 3, origin, shape=(shape_xyz[2], shape_xyz[1], shape_xyz[0]))  # type: ignore[arg-type]


def case_streams(seed: int, split: str, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one case, derived from ``(seed, split, index)`` only.

    A case is therefore the same whatever the number of cases generated, and switching an option that
    uses one stream (pose jitter, propagation errors) leaves the draws of the others unchanged.
    """
    root = np.random.SeedSequence(entropy=seed, spawn_key=(_SPLITS[split], index))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, root.spawn(len(_STREAMS)))}


def _pose_grid(geometry: Geometry, rng: np.random.Generator, pose_jitter: bool) -> PoseGrid:
    """Random head pose (±~3° rotations, ±~3 mm shifts), global scale (±~3 %) and symmetric warp."""
    angles = np.deg2rad(np.clip(rng.normal(0.0, 3.0, 3), -7.0, 7.0))
    shift = np.clip(rng.normal(0.0, 3.0, 3), -8.0, 8.0)
    scale = float(np.clip(rng.normal(1.0, 0.03), 0.94, 1.06))
    warp = SymmetricWarp(tuple(np.clip(rng.normal(0.0, 1.5, 3), -3.5, 3.5)), tuple(rng.uniform(0, 2 * np.pi, 6)))
    rotation = rotation_matrix(*angles) if pose_jitter else None
    translation = tuple(shift) if pose_jitter else (0.0, 0.0, 0.0)
    return PoseGrid(geometry.shape, geometry.spacing, geometry.origin, rotation, translation, scale, warp)  # type: ignore[arg-type]


def simulate_case(
    seed: int,
    split: str,
    index: int,
    spacing_mm: float = 2.0,
    pose_jitter: bool = True,
    propagation_errors: bool = True,
    rule: DelineationRule = DelineationRule(),
) -> PhantomCase:
    """Simulate one case in memory (no files).

    Parameters
    ----------
    seed, split, index : identify the case (``split`` is ``"train"`` or ``"test"``).
    spacing_mm : isotropic voxel size in mm.
    pose_jitter : random rotation/translation of the head (off: mid-sagittal plane at x = 0).
    propagation_errors : add CT->MR propagation errors to training delineations.
    rule : which structures a clinician delineates, from their distance to the tumour.
    """
    streams = case_streams(seed, split, index)
    geometry = grid_geometry(spacing_mm)
    model = sample_head(streams["anatomy"], streams["tumour"])
    grid = _pose_grid(geometry, streams["pose"], pose_jitter)
    signal, clean = render_head(model, grid)
    image = acquire(signal, streams["scanner"], reference=model.intensity["wm"])
    case_id = f"head_{index:03d}" if split == "train" else f"head_test_{index:03d}"
    if split == "test":
        return PhantomCase(case_id, image, geometry, dict(clean), clean, model)
    gaps = tumour_gaps(model.anchors, model.tumour.center, model.tumour.radius)
    delineated = choose_delineated(gaps, PAIRS, streams["delineation"], rule)
    prop = streams["propagation"]
    # One registration error per case (CT->MR), each axis -1/0/+1 voxel, plus per-structure errors.
    case_shift = prop.choice([-1, 0, 1], size=3, p=[0.2, 0.6, 0.2])
    masks = {}
    for name in STRUCTURES:
        if name in delineated:
            masks[name] = propagation_error(clean[name], prop, case_shift) if propagation_errors else clean[name]
    return PhantomCase(case_id, image, geometry, masks, clean, model)


@register_phantom("head-oar")
def generate_head_oar(
    out_dir: Path,
    *,
    cases: int = 16,
    test_cases: int = 6,
    seed: int = 0,
    spacing_mm: float = 2.0,
    pose_jitter: bool = True,
    propagation_errors: bool = True,
    preview: bool = True,
) -> Path:
    """Write the head-OAR phantom dataset to ``out_dir`` and return it.

    The folder is built beside ``out_dir`` and renamed into place at the end, so a reader never sees a
    half-written dataset and no stale structure file of an earlier run survives (a missing file means
    "not delineated"). An existing ``out_dir`` is replaced only if it is empty or a generated phantom.

    Parameters
    ----------
    out_dir : dataset folder to write.
    cases, test_cases : number of training and test cases (ids ``head_000`` …, ``head_test_000`` …).
    seed : the dataset is identical for identical arguments.
    spacing_mm : isotropic voxel size in mm, 1.0-8.0; the field of view stays ~192 x 192 x 160 mm.
    pose_jitter : random head pose per case (off: the mid-sagittal plane is the grid's x = 0 plane).
    propagation_errors : CT->MR propagation errors on training delineations (test set is always clean).
    preview : write ``preview.png`` (first training and first test case with their structures).

    Raises
    ------
    ConfigError
        For invalid options or an ``out_dir`` that is not a phantom folder.
    """
    check_options("head-oar", cases, test_cases, seed, spacing_mm)

    def spec(info: dict[str, dict]) -> dict:
        return dataset_spec(
            "HeadOAR",
            (
                "Procedural T1-weighted head MRI (clinseg head-oar phantom) with 11 organs at risk for brain "
                "radiotherapy. Training delineations are partial (only OARs near the tumour) and carry CT->MR "
                "propagation errors; the test set is clean and complete."
            ),
            "imitates seed 000, section 2 (52 RT patients, 9.4 of 11 OARs delineated on average)",
            "T1", STRUCTURES, cases, test_cases, info,
            phantom={"name": "head-oar", "seed": int(seed), "spacing_mm": float(spacing_mm), "version": VERSION,
                     "pose_jitter": bool(pose_jitter), "propagation_errors": bool(propagation_errors)},
        )

    return write_phantom(
        Path(out_dir), "head-oar", cases, test_cases,
        simulate=lambda split, index: simulate_case(seed, split, index, spacing_mm, pose_jitter, propagation_errors),
        case_info=lambda case: {"annotated": list(case.masks), "weak_labels": {"tumour": True}},
        spec=spec, preview=_write_preview if preview else None)


def _write_preview(path: Path, cases: list[PhantomCase]) -> None:
    """One row per shown case: axial slice through the eyes, coronal through the pituitary, mid-sagittal."""
    rows = []
    for case in cases:
        eyes = np.argwhere(case.clean["Eye_L"] | case.clean["Eye_R"]).mean(axis=0)
        pituitary = np.argwhere(case.clean["Pituitary"]).mean(axis=0)
        centre = (int(round(eyes[0])), int(round(pituitary[1])), case.image.shape[2] // 2)
        kind = "delineated, propagated from CT" if case.case_id.startswith("head_0") else "clean reference"
        title = f"{case.case_id}: {len(case.masks)}/11 {kind}"
        rows.append(OverlayCase(case.image, case.masks, case.geometry.spacing_zyx, title, centre))
    save_figure(overlay_grid(rows, order=STRUCTURES), path)
