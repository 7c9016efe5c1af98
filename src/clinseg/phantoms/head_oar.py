"""The embedded default dataset: a procedural head-and-neck OAR phantom on T1-weighted MRI.

One T1-weighted head scan per radiotherapy patient, training delineations that are partial and carry
CT->MR propagation errors, and a clean, complete test set. ``structures`` picks the organ set and the
delineation practice (:mod:`clinseg.phantoms._head_structures`):

``"seed000"`` (default; seed 000, section 2)
    11 OARs (brainstem, pituitary, optic chiasm, left/right optic nerve, eye, cochlea, lens), each
    delineated only when it lies near the tumour (on average ~9.4 of 11, about a third of the patients
    complete).
``"seed001"`` (seed 001, chapter 4)
    12 structures of its 8 classes (Brain, Brainstem, Hippocampus_L/R, Eye_L/R, Lens_L/R, OpticNrv_L/R,
    OpticChiasm, Pituitary); each organ (both sides together) is delineated independently with its
    frequency in the seed's 44 MRIs (Table 4.1): hippocampus 39, brainstem 39, eye 41, lens 34, optic
    nerves 40, chiasm 41, pituitary 29, brain 37 of 44. The hippocampi are painted (grey-matter signal)
    only in this set, so the default images are unchanged.

``delineation_rates`` (organ -> probability; an organ is an unpaired structure or a pair name such as
``"Lens"``) overrides the default rule for those organs in either set. ``dataset.json`` declares the
anatomical ``relations`` of the set (``inside``: lens in eye, and for seed001 brainstem and hippocampi in
brain; ``outside``: neighbours that never overlap, e.g. eyes, lenses, optic nerves, chiasm and pituitary
versus brain; ``bilateral``: the left/right pairs), all true on the clean masks.

Layout written (the clinseg format, nnU-Net v2 compatible)::

    OUT/dataset.json
    OUT/imagesTr/head_000_0000.nii.gz               one T1 channel, int16
    OUT/structuresTr/head_000/<structure>.nii.gz    uint8, only the delineated structures
    OUT/imagesTs/head_test_000_0000.nii.gz, OUT/structuresTs/head_test_000/<structure>.nii.gz (all)
    OUT/preview.png

Geometry: identity direction (LPS: +x patient left, +y posterior, +z superior), isotropic voxels of
``spacing_mm`` (2 mm: 96 x 96 x 80 voxels X x Y x Z on a 192 x 192 x 160 mm field of view), grid centred
on the head's mid-sagittal plane.

Examples
--------
>>> from clinseg.phantoms import generate_phantom
>>> generate_phantom("head-oar", "data/HeadOAR", cases=16, test_cases=6, seed=0)   # doctest: +SKIP
>>> generate_phantom("head-oar", "data/HeadOAR001", structures="seed001",
...                  delineation_rates={"Lens": 0.5})                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from clinseg.errors import ConfigError
from clinseg.io import Geometry
from clinseg.phantoms._acquisition import acquire
from clinseg.phantoms._delineation import (
    DelineationRule,
    choose_by_rates,
    choose_delineated,
    expand_rates,
    propagation_error,
    tumour_gaps,
)
from clinseg.phantoms._head_anatomy import HeadModel, render_head, sample_head
from clinseg.phantoms._head_structures import STRUCTURE_SETS, StructureSet
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
# New streams go at the end: SeedSequence children are stable by index, so older streams keep their draws.
_STREAMS = ("anatomy", "tumour", "pose", "scanner", "delineation", "propagation", "structures")


@dataclass(frozen=True)
class PhantomCase:
    """One simulated case.

    Attributes
    ----------
    case_id : ``head_000`` … (train) or ``head_test_000`` … (test).
    image : ``(Z, Y, X)`` int16 T1 image.
    geometry : its grid (spacing ``(x, y, z)`` mm).
    masks : the delineations as written, name -> ``(Z, Y, X)`` bool in label order (train: delineated
        ones only, with propagation errors; test: all of the structure set, clean).
    clean : all exact masks of the structure set.
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


def structure_set(name: str) -> StructureSet:
    """The structure set ``name`` (``"seed000"`` or ``"seed001"``).

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the known ones.
    """
    if name not in STRUCTURE_SETS:
        raise ConfigError(f"head-oar: unknown structure set {name!r}; known: {', '.join(STRUCTURE_SETS)}")
    return STRUCTURE_SETS[name]


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
    structures: str = "seed000",
    delineation_rates: Mapping[str, float] | None = None,
) -> PhantomCase:
    """Simulate one case in memory (no files).

    Parameters
    ----------
    seed, split, index : identify the case (``split`` is ``"train"`` or ``"test"``).
    spacing_mm : isotropic voxel size in mm.
    pose_jitter : random rotation/translation of the head (off: mid-sagittal plane at x = 0).
    propagation_errors : add CT->MR propagation errors to training delineations.
    rule : seed000: which structures a clinician delineates, from their distance to the tumour.
    structures : the structure set, ``"seed000"`` (11 OARs) or ``"seed001"`` (12, with brain and hippocampi).
    delineation_rates : organ (unpaired structure or pair name, e.g. ``"Lens"``) -> probability that a
        training case has it delineated, replacing the set's rule for that organ.

    Raises
    ------
    ConfigError
        For an unknown structure set or a bad delineation rate.
    """
    sset = structure_set(structures)
    rates = expand_rates({**sset.rates, **(delineation_rates or {})}, sset.structures, sset.bilateral)
    streams = case_streams(seed, split, index)
    geometry = grid_geometry(spacing_mm)
    model = sset.extend(sample_head(streams["anatomy"], streams["tumour"]), streams["structures"])
    grid = _pose_grid(geometry, streams["pose"], pose_jitter)
    signal, rendered = render_head(model, grid)
    clean = sset.finish(model, grid, rendered)
    image = acquire(signal, streams["scanner"], reference=model.intensity["wm"])
    case_id = f"head_{index:03d}" if split == "train" else f"head_test_{index:03d}"
    if split == "test":
        return PhantomCase(case_id, image, geometry, dict(clean), clean, model)
    if sset.rates:  # seed 001: fixed per-organ frequencies
        delineated = choose_by_rates(sset.structures, sset.bilateral, rates, streams["delineation"])
    else:  # seed 000: organs near the tumour, except those given a rate
        gaps = tumour_gaps(model.anchors, model.tumour.center, model.tumour.radius)
        delineated = choose_delineated(gaps, sset.pairs, streams["delineation"], rule, rates)
    prop = streams["propagation"]
    # One registration error per case (CT->MR), each axis -1/0/+1 voxel, plus per-structure errors.
    case_shift = prop.choice([-1, 0, 1], size=3, p=[0.2, 0.6, 0.2])
    masks = {}
    for name in sset.structures:
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
    structures: str = "seed000",
    delineation_rates: Mapping[str, float] | None = None,
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
    structures : ``"seed000"`` (11 OARs near the tumour, seed 000) or ``"seed001"`` (12 structures with brain
        and hippocampi, delineated with the frequencies of seed 001 Table 4.1).
    delineation_rates : organ (unpaired structure or pair name, e.g. ``"Lens"``) -> probability in [0, 1]
        that a training case has it delineated, replacing the set's rule for that organ.

    Raises
    ------
    ConfigError
        For invalid options or an ``out_dir`` that is not a phantom folder.
    """
    check_options("head-oar", cases, test_cases, seed, spacing_mm)
    sset = structure_set(structures)
    organ_rates = {**sset.rates, **{k: float(v) for k, v in (delineation_rates or {}).items()}}
    expand_rates(organ_rates, sset.structures, sset.bilateral)  # refuse bad rates before writing anything

    def spec(info: dict[str, dict]) -> dict:
        return dataset_spec(
            "HeadOAR", sset.description, sset.reference, "T1", sset.structures, cases, test_cases, info,
            phantom={"name": "head-oar", "seed": int(seed), "spacing_mm": float(spacing_mm), "version": VERSION,
                     "pose_jitter": bool(pose_jitter), "propagation_errors": bool(propagation_errors),
                     "structures": sset.name, "delineation_rates": organ_rates},
            relations=sset.relations().to_json(),
        )

    return write_phantom(
        Path(out_dir), "head-oar", cases, test_cases,
        simulate=lambda split, index: simulate_case(seed, split, index, spacing_mm, pose_jitter, propagation_errors,
                                                    structures=sset.name, delineation_rates=delineation_rates),
        case_info=lambda case: {"annotated": list(case.masks), "weak_labels": {"tumour": True}},
        spec=spec, preview=partial(_write_preview, sset=sset) if preview else None)


def _write_preview(path: Path, cases: list[PhantomCase], sset: StructureSet) -> None:
    """One row per shown case: axial slice through the eyes, mid-sagittal, and coronal through the pituitary
    (seed000) or the hippocampi (seed001)."""
    rows = []
    for case in cases:
        eyes = np.argwhere(case.clean["Eye_L"] | case.clean["Eye_R"]).mean(axis=0)
        coronal = np.argwhere(np.any([case.clean[n] for n in sset.coronal], axis=0)).mean(axis=0)
        centre = (int(round(eyes[0])), int(round(coronal[1])), case.image.shape[2] // 2)
        kind = "delineated, propagated from CT" if case.case_id.startswith("head_0") else "clean reference"
        title = f"{case.case_id}: {len(case.masks)}/{len(sset.structures)} {kind}"
        rows.append(OverlayCase(case.image, case.masks, case.geometry.spacing_zyx, title, centre))
    save_figure(overlay_grid(rows, order=sset.structures), path)
