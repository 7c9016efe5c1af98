"""A procedural abdominal CT phantom: a large field of view in Hounsfield units with small target organs.

It imitates the setting of seed 003 ("Localise to segment"): Medical Segmentation Decathlon-like CT where
the spleen, pancreas and heart fill a small fraction of the volume, so a single-stage network faces a
strong class imbalance and a localise-then-crop cascade has room to help (seed 003, Method and
Discussion). Every case is completely delineated (train and test). The scan shows air outside the body,
subcutaneous and visceral fat, abdominal wall and back muscles, the spine with discs, ribs, lung bases,
liver and gallbladder (a large distractor of organ-like HU), stomach, colon and small-bowel loops with gas,
aorta, IVC and mesenteric vessels, and the five targets, with one contrast-enhancement level per case,
CT blur and correlated noise of 10-20 HU. Contrast is modest and varies with enhancement (HU unenhanced
-> portal-venous, ±5 per case): spleen 48 -> 118 beside liver 58 -> 108, pancreas 44 -> 99 in fat (-100)
next to duodenum and bowel 35-40 -> 80-90, kidneys 32 -> 182, heart muscle 45 -> 115 around blood
42 -> 212; a HU window around an organ therefore also selects its distractors.

Foreground per organ, percent of the volume, measured on ``abdomen-ct`` seed 0, 16 + 6 cases at the
default 2.5 mm (``dataset.json`` states the values of each generated dataset under ``phantom``)::

    structure   mean   min    max     (1 % of the 24.6 l field of view = 246 ml)
    Spleen      0.73   0.52   1.08
    Pancreas    0.29   0.21   0.41
    Heart       2.42   1.68   3.18    (the part inside the field of view)
    Kidney_L    0.39   0.24   0.56
    Kidney_R    0.42   0.27   0.61

Layout written (the clinseg format, nnU-Net v2 compatible)::

    OUT/dataset.json
    OUT/imagesTr/abdomen_000_0000.nii.gz              one CT channel, int16 HU
    OUT/structuresTr/abdomen_000/<structure>.nii.gz   uint8, all five structures
    OUT/imagesTs/abdomen_test_000_0000.nii.gz, OUT/structuresTs/abdomen_test_000/<structure>.nii.gz
    OUT/preview.png

Geometry: identity direction (LPS: +x patient left, +y posterior, +z superior), isotropic voxels of
``spacing_mm`` (2.5 mm: 128 x 128 x 96 voxels X x Y x Z on a 320 x 320 x 240 mm field of view) reaching
from about L4 to the lower heart.

Examples
--------
>>> from clinseg.phantoms import generate_phantom
>>> generate_phantom("abdomen-ct", "data/AbdomenCT", cases=16, test_cases=6, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from clinseg.io import Geometry
from clinseg.phantoms._abdomen_anatomy import (
    STRUCTURES,
    TEXTURES,
    render_abdomen,
    sample_abdomen,
)
from clinseg.phantoms._shapes import PoseGrid, rotation_matrix
from clinseg.phantoms._writer import check_options, dataset_spec, write_phantom
from clinseg.phantoms.registry import register_phantom
from clinseg.viz.overlay import OverlayCase, overlay_grid, save_figure

logger = logging.getLogger(__name__)

#: Field of view in mm ``(x, y, z)`` and its centre in the body frame (z = 0 near L1).
FOV_MM = (320.0, 320.0, 240.0)
FOV_CENTRE_MM = (0.0, 5.0, 25.0)
VERSION = 1
_SPLITS = {"train": 0, "test": 1}
_STREAMS = ("anatomy", "pose", "texture", "scanner")
#: Soft-tissue window (HU) of the preview.
_WINDOW = (-250.0, 300.0)


@dataclass(frozen=True)
class AbdomenCase:
    """One simulated case.

    Attributes
    ----------
    case_id : ``abdomen_000`` … (train) or ``abdomen_test_000`` … (test).
    image : ``(Z, Y, X)`` int16 CT in HU.
    geometry : its grid (spacing ``(x, y, z)`` mm).
    masks : the five structures, name -> ``(Z, Y, X)`` bool (complete, exact delineations).
    enhancement : contrast enhancement level in [0, 1] (0 unenhanced, 1 portal-venous).
    """

    case_id: str
    image: np.ndarray
    geometry: Geometry
    masks: dict[str, np.ndarray]
    enhancement: float


def grid_geometry(spacing_mm: float) -> Geometry:
    """The output grid for an isotropic ``spacing_mm``: FOV ~320 x 320 x 240 mm, symmetric about x = 0."""
    shape_xyz = [max(8, round(f / spacing_mm)) for f in FOV_MM]
    origin = tuple(c - (n - 1) * spacing_mm / 2 for c, n in zip(FOV_CENTRE_MM, shape_xyz))
    return Geometry((spacing_mm,) * 3, origin, shape=(shape_xyz[2], shape_xyz[1], shape_xyz[0]))  # type: ignore[arg-type]


def case_streams(seed: int, split: str, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one case, derived from ``(seed, split, index)`` only.

    Streams are seeded apart from head-oar's (a different spawn key), and a case is the same whatever the
    number of cases generated.
    """
    root = np.random.SeedSequence(entropy=seed, spawn_key=(3, _SPLITS[split], index))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, root.spawn(len(_STREAMS)))}


def _pose_grid(geometry: Geometry, rng: np.random.Generator, pose_jitter: bool) -> PoseGrid:
    """Patient pose on the table: ±~4° about z, ±~1.5° tilts, ±~5 mm in-plane, ±~6 mm along z, scale ±~2.5 %."""
    angles = np.deg2rad(np.clip(rng.normal(0.0, [1.5, 1.5, 4.0]), -10.0, 10.0))
    shift = np.clip(rng.normal(0.0, [5.0, 5.0, 6.0]), -15.0, 15.0)
    scale = float(np.clip(rng.normal(1.0, 0.025), 0.95, 1.05))
    rotation = rotation_matrix(*angles) if pose_jitter else None
    translation = tuple(shift) if pose_jitter else (0.0, 0.0, 0.0)
    return PoseGrid(geometry.shape, geometry.spacing, geometry.origin, rotation, translation, scale)  # type: ignore[arg-type]


def _noise_field(shape_zyx: tuple[int, ...], feature_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth Gaussian random field, zero mean and unit variance, with blobs ~``feature_vox`` voxels wide.

    White noise on a grid ``feature_vox`` times coarser is upsampled with separable Gaussian weights
    (three small matrix products, much cheaper than filtering at full resolution).
    """
    step = max(float(feature_vox), 1.0)
    coarse = rng.standard_normal(tuple(int(np.ceil(n / step)) + 4 for n in shape_zyx)).astype(np.float32)
    for axis, n in enumerate(shape_zyx):
        at = np.arange(n, dtype=np.float32)[:, None] / np.float32(step) + 2.0
        weights = np.exp(-0.5 * ((at - np.arange(coarse.shape[axis], dtype=np.float32)) / 0.9) ** 2)
        coarse = np.moveaxis(np.tensordot(weights / weights.sum(axis=1, keepdims=True), coarse, axes=(1, axis)), 0, axis)
    return (coarse - coarse.mean()) / max(float(coarse.std()), 1e-6)


def textures(shape_zyx: tuple[int, ...], spacing_mm: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random patterns on the output grid, ``(Z, Y, X)`` float32 in {0, 1}, for bowel loops and gas.

    ``loops`` is a band around a level set of a smooth field (tubular, ~12 mm wide walls and content),
    ``lumen`` its centre, ``bowel_gas`` pockets within the lumen and ``colon_gas`` about half of any lumen.
    """
    loops = _noise_field(shape_zyx, 14.0 / spacing_mm, rng)
    gas = _noise_field(shape_zyx, 8.0 / spacing_mm, rng)
    band = np.abs(loops)
    patterns = {"loops": band < 0.4, "lumen": band < 0.2, "bowel_gas": (band < 0.2) & (gas > 1.0), "colon_gas": gas > 0.0}
    return {name: patterns[name].astype(np.float32) for name in TEXTURES}


def scan(hu: np.ndarray, rng: np.random.Generator, noise_hu: tuple[float, float] = (10.0, 20.0),
         blur_vox: float = 0.6) -> np.ndarray:
    """CT acquisition of a noise-free ``(Z, Y, X)`` HU volume: mild blur, correlated noise, int16 HU.

    White noise is added and the sum smoothed with a Gaussian of ``blur_vox`` voxels (the reconstruction
    kernel blurs edges and correlates the noise alike); the white noise is pre-scaled so the smoothed
    noise has the standard deviation drawn from ``noise_hu``. ``hu`` is not modified.
    """
    x = np.arange(-int(4 * blur_vox + 0.5), int(4 * blur_vox + 0.5) + 1)
    kernel = np.exp(-0.5 * (x / blur_vox) ** 2)
    kept = float((kernel**2).sum() / kernel.sum() ** 2) ** 3  # fraction of white-noise variance kept in 3D
    sigma = float(rng.uniform(*noise_hu)) / np.sqrt(kept)
    noisy = hu + np.float32(sigma) * rng.standard_normal(hu.shape, dtype=np.float32)
    out = ndimage.gaussian_filter(noisy, blur_vox)
    return np.clip(np.round(out), -1024, 3071).astype(np.int16)


def simulate_case(seed: int, split: str, index: int, spacing_mm: float = 2.5, pose_jitter: bool = True) -> AbdomenCase:
    """Simulate one case in memory (no files).

    Parameters
    ----------
    seed, split, index : identify the case (``split`` is ``"train"`` or ``"test"``).
    spacing_mm : isotropic voxel size in mm.
    pose_jitter : random patient pose on the table (off: body axis on the grid's x = 0 plane).
    """
    streams = case_streams(seed, split, index)
    geometry = grid_geometry(spacing_mm)
    model = sample_abdomen(streams["anatomy"])
    grid = _pose_grid(geometry, streams["pose"], pose_jitter)
    hu, masks = render_abdomen(model, grid, textures(geometry.shape, spacing_mm, streams["texture"]))
    image = scan(hu, streams["scanner"])
    case_id = f"abdomen_{index:03d}" if split == "train" else f"abdomen_test_{index:03d}"
    return AbdomenCase(case_id, image, geometry, masks, model.enhancement)


def foreground_percent(masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Percent of the volume each structure covers (the class imbalance of seed 003, Figure 3c)."""
    return {name: round(100.0 * float(mask.mean()), 3) for name, mask in masks.items()}


def _summary(per_case: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {name: {"mean": round(float(np.mean(v)), 3), "min": round(float(np.min(v)), 3),
                   "max": round(float(np.max(v)), 3)}
            for name in STRUCTURES for v in [[c[name] for c in per_case]]}


@register_phantom("abdomen-ct")
def generate_abdomen_ct(
    out_dir: Path,
    *,
    cases: int = 16,
    test_cases: int = 6,
    seed: int = 0,
    spacing_mm: float = 2.5,
    pose_jitter: bool = True,
    preview: bool = True,
) -> Path:
    """Write the abdomen-CT phantom dataset to ``out_dir`` and return it.

    The folder is built beside ``out_dir`` and renamed into place at the end, so a reader never sees a
    half-written dataset. An existing ``out_dir`` is replaced only if it is empty or a generated phantom.

    Parameters
    ----------
    out_dir : dataset folder to write.
    cases, test_cases : number of training and test cases (ids ``abdomen_000`` …, ``abdomen_test_000`` …).
    seed : the dataset is identical for identical arguments.
    spacing_mm : isotropic voxel size in mm, 1.0-8.0; the field of view stays ~320 x 320 x 240 mm.
    pose_jitter : random patient pose per case (off: the body axis is the grid's x = 0 plane).
    preview : write ``preview.png`` (first training and first test case with their structures).

    Raises
    ------
    ConfigError
        For invalid options or an ``out_dir`` that is not a phantom folder.
    """
    check_options("abdomen-ct", cases, test_cases, seed, spacing_mm)

    def spec(info: dict[str, dict]) -> dict:
        return dataset_spec(
            "AbdomenCT",
            (
                "Procedural abdominal CT in HU (clinseg abdomen-ct phantom): a large field of view with small "
                "target organs (spleen, pancreas, heart, kidneys), all delineated in every case, among "
                "distractors of similar HU (liver, bowel, vessels) for class-imbalance and localise-then-crop "
                "studies."
            ),
            "imitates seed 003 (localise to segment; MSD spleen, pancreas and heart CT)",
            "CT", STRUCTURES, cases, test_cases, info,
            phantom={"name": "abdomen-ct", "seed": int(seed), "spacing_mm": float(spacing_mm), "version": VERSION,
                     "pose_jitter": bool(pose_jitter), "fov_mm": list(FOV_MM),
                     "foreground_percent": _summary([v["foreground_percent"] for v in info.values()])},
        )

    return write_phantom(
        Path(out_dir), "abdomen-ct", cases, test_cases,
        simulate=lambda split, index: simulate_case(seed, split, index, spacing_mm, pose_jitter),
        case_info=lambda case: {"annotated": list(case.masks), "foreground_percent": foreground_percent(case.masks),
                                "enhancement": round(case.enhancement, 3)},
        spec=spec, preview=_write_preview if preview else None)


def _centroid(mask: np.ndarray, fallback: tuple[int, ...]) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0) if mask.any() else np.asarray(fallback, dtype=float)


def _write_preview(path: Path, cases: list[AbdomenCase]) -> None:
    """One row per shown case in a soft-tissue window: axial through the pancreas, coronal through the
    organs' mean depth, sagittal through the left kidney."""
    rows = []
    for case in cases:
        mid = tuple(n // 2 for n in case.image.shape)
        ys = [_centroid(mask, mid)[1] for mask in case.masks.values()]
        centre = (round(_centroid(case.masks["Pancreas"], mid)[0]), round(float(np.mean(ys))),
                  round(_centroid(case.masks["Kidney_L"], mid)[2]))
        shown = np.clip(case.image, *_WINDOW)
        title = f"{case.case_id}: 5/5 delineated, enhancement {case.enhancement:.2f}"
        rows.append(OverlayCase(shown, case.masks, case.geometry.spacing_zyx, title, centre))
    save_figure(overlay_grid(rows, order=STRUCTURES), path)
