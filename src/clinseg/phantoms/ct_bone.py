"""A procedural lower-leg CT phantom: the fibula beside a similar, larger tibia, in scaled Hounsfield units.

It imitates the setting of seed 002 (limited-data long-bone segmentation with restoration pretraining and
interactive clicks): CT of the fibula and its surroundings (seed 002 Section 2.4, Figure 3) with the data
"in Hounsfield units clipped to <-1024, 3000> and then scaled within the range of <0, 1>", which is what
the images hold, so training uses normalisation ``none``. The target is the fibula alone (binary, one
multilabel structure, delineated in every case, train and test). The tibia has the same cortical shell
and marrow but is larger and triangular, and the contralateral leg (option ``second_leg``, unlabelled)
often shows its own tibia at the edge of the field of view: "which bone?" is part of the task, which is
where a click on the intended bone (seed 002 Section 2.3) helps.

Each case varies leg size, the level imaged along the shin (flared metaphyses with thin cortex and
cancellous bone, the fibular head or the lateral malleolus near the ends), bone positions, bowing and
diameters, the side (left or right leg), the leg's rotation on the table, the HU of each tissue, the CT
blur (sometimes a thick-slice partial-volume blur along z) and Gaussian noise of 10-30 HU.

Fibula foreground, percent of the volume, measured on ``ct-bone`` seed 0, 16 + 6 cases at the default
1.5 mm (``dataset.json`` states the values of each generated dataset under ``phantom``)::

    structure   mean   min    max     (1 % of the 5.1 l field of view = 51 ml)
    Fibula      0.50   0.34   0.75

Layout written (the clinseg format, nnU-Net v2 compatible)::

    OUT/dataset.json
    OUT/imagesTr/leg_000_0000.nii.gz              one CT channel, float32 in [0, 1] (HU + 1024) / 4024
    OUT/structuresTr/leg_000/Fibula.nii.gz        uint8
    OUT/imagesTs/leg_test_000_0000.nii.gz, OUT/structuresTs/leg_test_000/Fibula.nii.gz
    OUT/preview.png

Geometry: identity direction (LPS: +x patient left, +y posterior, +z superior), isotropic voxels of
``spacing_mm`` (1.5 mm: 107 x 107 x 133 voxels X x Y x Z on a 160 x 160 x 200 mm field of view).

Examples
--------
>>> from clinseg.phantoms import generate_phantom
>>> generate_phantom("ct-bone", "data/CtBone", cases=16, test_cases=6, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from clinseg.io import Geometry
from clinseg.phantoms._head_anatomy import _n
from clinseg.phantoms._leg_anatomy import render_legs, sample_legs
from clinseg.phantoms._shapes import PoseGrid, rotation_matrix
from clinseg.phantoms._writer import check_options, dataset_spec, write_phantom
from clinseg.phantoms.abdomen_ct import scan
from clinseg.phantoms.registry import register_phantom
from clinseg.viz.overlay import OverlayCase, overlay_grid, save_figure

logger = logging.getLogger(__name__)

#: Field of view in mm ``(x, y, z)``, centred on the world origin.
FOV_MM = (160.0, 160.0, 200.0)
#: The HU range kept (seed 002 Section 2.4); it maps linearly onto [0, 1].
HU_RANGE = (-1024.0, 3000.0)
INTENSITY = "HU clipped to [-1024, 3000], scaled to [0, 1]"
STRUCTURE = "Fibula"
VERSION = 1
_SPLITS = {"train": 0, "test": 1}
_STREAMS = ("anatomy", "pose", "scanner")
#: Soft-tissue-to-bone window (HU) of the preview.
_WINDOW_HU = (-250.0, 1500.0)


@dataclass(frozen=True)
class LegCase:
    """One simulated case.

    Attributes
    ----------
    case_id : ``leg_000`` … (train) or ``leg_test_000`` … (test).
    image : ``(Z, Y, X)`` float32 CT, HU clipped to :data:`HU_RANGE` and scaled to [0, 1].
    geometry : its grid (spacing ``(x, y, z)`` mm).
    masks : ``{"Fibula": (Z, Y, X) bool}``, the delineated target (complete and exact).
    tibia : ``(Z, Y, X)`` bool mask of the same leg's tibia (not written; for checks and studies).
    side : ``"left"`` or ``"right"``: the imaged (labelled) leg.
    noise_hu : standard deviation of the image noise in HU.
    """

    case_id: str
    image: np.ndarray
    geometry: Geometry
    masks: dict[str, np.ndarray]
    tibia: np.ndarray
    side: str
    noise_hu: float


def hu_to_unit(hu: np.ndarray) -> np.ndarray:
    """HU -> [0, 1] as in seed 002: clip to [-1024, 3000], then ``(hu + 1024) / 4024`` (float32, new array)."""
    lo, hi = HU_RANGE
    return ((np.clip(np.asarray(hu, dtype=np.float32), lo, hi) - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)


def unit_to_hu(unit: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hu_to_unit` on [0, 1] (float32 HU)."""
    lo, hi = HU_RANGE
    return (np.asarray(unit, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)).astype(np.float32)


def grid_geometry(spacing_mm: float) -> Geometry:
    """The output grid for an isotropic ``spacing_mm``: FOV ~160 x 160 x 200 mm centred on the origin."""
    shape_xyz = [max(8, round(f / spacing_mm)) for f in FOV_MM]
    origin = tuple(-(n - 1) * spacing_mm / 2 for n in shape_xyz)
    return Geometry((spacing_mm,) * 3, origin, shape=(shape_xyz[2], shape_xyz[1], shape_xyz[0]))  # type: ignore[arg-type]


def case_streams(seed: int, split: str, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one case, derived from ``(seed, split, index)`` only.

    Seeded apart from the other phantoms (spawn key 2), and a case is the same whatever the number of
    cases generated.
    """
    root = np.random.SeedSequence(entropy=seed, spawn_key=(2, _SPLITS[split], index))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, root.spawn(len(_STREAMS)))}


def _pose_grid(geometry: Geometry, rng: np.random.Generator, pose_jitter: bool) -> tuple[PoseGrid, str]:
    """The leg on the table and its side: a right leg mirrors the grid (canonical frame = left leg).

    The leg turns ±~7° about z (foot rotation; the axis tilt lives in the centrelines) and lies 4-22 mm
    off centre towards its lateral side, leaving room for the other leg; off: on the grid's axis.
    """
    side = "left" if rng.random() < 0.5 else "right"
    rz = np.deg2rad(float(_n(rng, 7.0)))
    shift = (float(rng.uniform(4.0, 22.0)), float(_n(rng, 3.0)))
    rotation = np.diag([1.0 if side == "left" else -1.0, 1.0, 1.0])
    if pose_jitter:
        rotation = rotation @ rotation_matrix(0.0, 0.0, rz)
    sign = 1.0 if side == "left" else -1.0
    translation = (sign * shift[0], -9.0 + shift[1], 0.0) if pose_jitter else (0.0, -9.0, 0.0)
    return PoseGrid(geometry.shape, geometry.spacing, geometry.origin, rotation, translation), side  # type: ignore[arg-type]


def simulate_case(seed: int, split: str, index: int, spacing_mm: float = 1.5, second_leg: bool = True,
                  pose_jitter: bool = True) -> LegCase:
    """Simulate one case in memory (no files).

    Parameters
    ----------
    seed, split, index : identify the case (``split`` is ``"train"`` or ``"test"``).
    spacing_mm : isotropic voxel size in mm.
    second_leg : show the contralateral leg (unlabelled) beside the medial side.
    pose_jitter : random rotation and lateral offset of the leg (off: leg axis near the grid's centre).
    """
    streams = case_streams(seed, split, index)
    geometry = grid_geometry(spacing_mm)
    model = sample_legs(streams["anatomy"], second_leg)
    grid, side = _pose_grid(geometry, streams["pose"], pose_jitter)
    # The pose is a rotation about z: canonical x, y are the same on every slice and z is per slice.
    hu, masks = render_legs(model, grid.x[0], grid.y[0], grid.z[:, 0, 0], ramp=float(spacing_mm))
    rng = streams["scanner"]
    if rng.random() < 0.3:  # thick-slice reconstruction: extra partial volume along z
        hu = ndimage.gaussian_filter1d(hu, float(rng.uniform(1.0, 2.0)) / spacing_mm, axis=0)
    noise = float(rng.uniform(10.0, 30.0))
    image = hu_to_unit(scan(hu, rng, noise_hu=(noise, noise), blur_vox=float(rng.uniform(0.5, 0.8))))
    case_id = f"leg_{index:03d}" if split == "train" else f"leg_test_{index:03d}"
    return LegCase(case_id, image, geometry, {STRUCTURE: masks["Fibula"]}, masks["Tibia"], side, noise)


def foreground_percent(mask: np.ndarray) -> float:
    """Percent of the volume a mask covers."""
    return round(100.0 * float(mask.mean()), 3)


@register_phantom("ct-bone")
def generate_ct_bone(
    out_dir: Path,
    *,
    cases: int = 16,
    test_cases: int = 6,
    seed: int = 0,
    spacing_mm: float = 1.5,
    second_leg: bool = True,
    pose_jitter: bool = True,
    preview: bool = True,
) -> Path:
    """Write the lower-leg CT phantom dataset (target: the fibula) to ``out_dir`` and return it.

    The folder is built beside ``out_dir`` and renamed into place at the end, so a reader never sees a
    half-written dataset. An existing ``out_dir`` is replaced only if it is empty or a generated phantom.

    Parameters
    ----------
    out_dir : dataset folder to write.
    cases, test_cases : number of training and test cases (ids ``leg_000`` …, ``leg_test_000`` …).
    seed : the dataset is identical for identical arguments.
    spacing_mm : isotropic voxel size in mm, 1.0-8.0; the field of view stays ~160 x 160 x 200 mm.
    second_leg : show part of the contralateral leg (unlabelled bones: a "which bone?" distractor).
    pose_jitter : random leg rotation and offset per case.
    preview : write ``preview.png`` (first training and first test case with the fibula).

    Raises
    ------
    ConfigError
        For invalid options or an ``out_dir`` that is not a phantom folder.
    """
    check_options("ct-bone", cases, test_cases, seed, spacing_mm)

    def spec(info: dict[str, dict]) -> dict:
        percent = [v["foreground_percent"][STRUCTURE] for v in info.values()]
        return dataset_spec(
            "CtBone",
            (
                "Procedural lower-leg CT (clinseg ct-bone phantom): the fibula, delineated in every case, beside "
                "the larger tibia with the same cortical shell and marrow, muscle compartments, fat and part of "
                "the other leg (unlabelled bones), for limited-data, restoration-pretraining and click studies."
            ),
            "imitates seed 002 (limited-data fibula segmentation in CT; pretraining and clicks)",
            "CT", [STRUCTURE], cases, test_cases, info, intensity=INTENSITY,
            phantom={"name": "ct-bone", "seed": int(seed), "spacing_mm": float(spacing_mm), "version": VERSION,
                     "second_leg": bool(second_leg), "pose_jitter": bool(pose_jitter), "fov_mm": list(FOV_MM),
                     "intensity": INTENSITY,
                     "foreground_percent": {STRUCTURE: {"mean": round(float(np.mean(percent)), 3),
                                                        "min": round(float(np.min(percent)), 3),
                                                        "max": round(float(np.max(percent)), 3)}}},
        )

    return write_phantom(
        Path(out_dir), "ct-bone", cases, test_cases,
        simulate=lambda split, index: simulate_case(seed, split, index, spacing_mm, second_leg, pose_jitter),
        case_info=lambda case: {"annotated": [STRUCTURE], "foreground_percent": {STRUCTURE: foreground_percent(case.masks[STRUCTURE])},
                                "side": case.side, "noise_hu": round(case.noise_hu, 1)},
        spec=spec, preview=_write_preview if preview else None)


def _write_preview(path: Path, cases: list[LegCase]) -> None:
    """One row per shown case in a soft-tissue-to-bone window: axial through both bones at the fibula's
    centre, coronal and sagittal through the fibula."""
    lo, hi = (float(v) for v in hu_to_unit(np.asarray(_WINDOW_HU)))
    rows = []
    for case in cases:
        fibula = case.masks[STRUCTURE]
        centre = tuple(round(c) for c in np.argwhere(fibula).mean(axis=0)) if fibula.any() else None
        title = f"{case.case_id}: {case.side} leg, fibula {foreground_percent(fibula):.2f} %, noise {case.noise_hu:.0f} HU"
        rows.append(OverlayCase(np.clip(case.image, lo, hi), case.masks, case.geometry.spacing_zyx, title, centre))
    save_figure(overlay_grid(rows, order=[STRUCTURE]), path)
