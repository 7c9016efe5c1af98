"""Optic chiasm and optic nerves (seed 001 §4.2.2.2, Fig. 4.4-4.6).

The chiasm is the largest connected component of its prediction. Each optic nerve is rebuilt as a tube
around a centreline that joins its eye to the chiasm, so that it is connected and has few false positives:

1. Landmarks: the eye-nerve landmark is the barycentre of the ``P`` nerve voxels (of that side) closest to the
   eye of that side; the chiasm landmark the barycentre of the ``P`` voxels of that side's half of the chiasm
   (split at the brain's mid-plane; the whole chiasm when that half is empty) closest to the nerve. When the
   two chiasm landmarks are closer than ``min_chiasm_landmark_distance_mm`` they are merged (their mean) and
   only the nerve of the eye nearest to it is rebuilt; the other nerve is left as predicted.
2. Fat: nerve voxels brighter than ``fat_fraction`` x the ``fat_quantile`` percentile of the image in a box
   around the eye-nerve landmark are orbital fat (hyperintense in T1) and are set negative.
3. Centreline: shortest path between the landmarks (:mod:`clinseg.inference.anatomy._paths`).
4. Tube: voxels within ``R1`` of the centreline are nerve; voxels within ``R`` (interpolated along AP from its
   eye to its chiasm value) are nerve when the refined prediction (after step 2, so that fat does not come
   back) says so.
5. Opening with 1D structuring elements of two voxels along each array axis, applied one after the other
   (a voxel survives only where the mask is at least two voxels thick along every axis, which cuts the thin
   bridges to attached false positives), then the largest connected component.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from clinseg.inference.anatomy._geometry import ap_axis, spacing_zyx, voxel_unit_mm
from clinseg.inference.anatomy._paths import (
    interpolate_radius,
    radius_in_voxels,
    trace_centreline,
    within_radius,
)
from clinseg.inference.anatomy.registry import register_rule
from clinseg.inference.anatomy.settings import AnatomySettings
from clinseg.inference.anatomy.sides import split_at_midline
from clinseg.inference.postprocess import largest_component
from clinseg.io.image import Geometry

if TYPE_CHECKING:
    from clinseg.inference.anatomy._case import AnatomyCase

__all__ = ["closest_barycentre", "open_1d", "rebuild_nerve", "remove_fat"]

log = logging.getLogger(__name__)


def closest_barycentre(
    candidates: np.ndarray, reference: np.ndarray, points: int, spacing: np.ndarray
) -> np.ndarray | None:
    """Mean ``(z, y, x)`` index of the ``points`` voxels of ``candidates`` nearest (in mm) to ``reference``.

    Ties keep the first voxels in C order. ``None`` when either mask is empty.
    """
    cand, ref = np.argwhere(candidates), np.argwhere(reference)
    if cand.shape[0] == 0 or ref.shape[0] == 0:
        return None
    distance, _ = cKDTree(ref * spacing).query(cand * spacing)
    nearest = np.argsort(distance, kind="stable")[:points]
    return cand[nearest].mean(axis=0)


def remove_fat(
    nerve: np.ndarray,
    image: np.ndarray,
    landmark: np.ndarray,
    spacing: np.ndarray,
    half_size_mm: float,
    quantile: float,
    fraction: float,
) -> np.ndarray:
    """The nerve mask without its voxels brighter than ``fraction`` x the ``quantile`` percentile of the image
    in the box of half edge ``half_size_mm`` around ``landmark`` (``(z, y, x)`` index). Unchanged when that
    percentile is not positive (no bright fat to separate)."""
    centre = np.rint(landmark).astype(np.int64)
    half = np.ceil(half_size_mm / spacing).astype(np.int64)
    box = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(centre, half))
    fat = float(np.percentile(image[box], quantile))
    if not fat > 0:
        return nerve.copy()
    return nerve & ~(image > fraction * fat)


def open_1d(mask: np.ndarray) -> np.ndarray:
    """Opening by a two-voxel segment along Z, then Y, then X (each on the result of the previous one)."""
    out = np.asarray(mask, dtype=bool)
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = 2
        out = ndi.binary_opening(out, structure=np.ones(shape, dtype=bool))
    return out


def rebuild_nerve(
    refined: np.ndarray,
    eye_landmark: np.ndarray,
    chiasm_landmark: np.ndarray,
    geometry: Geometry,
    settings: AnatomySettings,
) -> np.ndarray:
    """Steps 3-5 of the module docstring: centreline, tube, opening, largest component.

    Parameters
    ----------
    refined : bool ``(Z, Y, X)`` nerve prediction of one side, fat removed.
    eye_landmark, chiasm_landmark : ``(z, y, x)`` (fractional) indices of the two ends.
    geometry : the grid (spacing and the direction that gives the AP axis).
    settings : radii, costs, margin, opening switch and connectivity.

    Returns
    -------
    numpy.ndarray
        The rebuilt bool ``(Z, Y, X)`` nerve.
    """
    sp, vox, axis = spacing_zyx(geometry), voxel_unit_mm(geometry), ap_axis(geometry)
    r_eye = radius_in_voxels(settings.nerve_radius_eye_mm, vox)
    r_chiasm = radius_in_voxels(settings.nerve_radius_chiasm_mm, vox)
    r_core = radius_in_voxels(settings.nerve_core_radius_mm, vox)
    start, target = np.rint(eye_landmark).astype(np.int64), np.rint(chiasm_landmark).astype(np.int64)
    path = trace_centreline(
        refined,
        start,
        target,
        ap_axis=axis,
        spacing_zyx=sp,
        voxel_mm=vox,
        radius_start=r_eye,
        radius_target=r_chiasm,
        label_penalty=settings.label_penalty,
        target_cost=settings.target_cost,
        margin=np.ceil(settings.roi_margin_mm / sp).astype(np.int64),
    )
    radii = interpolate_radius(path[:, axis], int(start[axis]), int(target[axis]), r_eye, r_chiasm)
    core = within_radius(path, np.full(len(path), r_core * vox), refined.shape, sp)
    shell = within_radius(path, radii * vox, refined.shape, sp)
    nerve = core | (shell & refined)
    if settings.nerve_opening:
        nerve = open_1d(nerve)
    return largest_component(nerve, settings.connectivity)


@register_rule("chiasm", order=50)
def chiasm_rule(case: AnatomyCase) -> None:
    """Keep the largest connected component of the chiasm."""
    chiasm = case.roles.chiasm
    if case.has(chiasm) and not case.roles.is_bilateral(chiasm):
        case.masks[chiasm] = largest_component(case.masks[chiasm], case.settings.connectivity)


@register_rule("optic_nerves", order=60)
def optic_nerves_rule(case: AnatomyCase) -> None:
    """Rebuild each optic nerve between its eye and the chiasm (module docstring)."""
    roles, settings, geometry = case.roles, case.settings, case.geometry
    if not all(case.has(o) for o in (roles.optic_nerve, roles.eye, roles.chiasm)):
        return
    sp = spacing_zyx(geometry)
    nerves, eyes = list(case.sided(roles.optic_nerve)), case.sided(roles.eye)
    chiasm = case.organ(roles.chiasm)
    chiasm_sides = split_at_midline(chiasm, geometry, case.midline_x())
    eye_marks: list[np.ndarray | None] = []
    chiasm_marks: list[np.ndarray | None] = []
    for nerve, eye, half in zip(nerves, eyes, chiasm_sides):
        eye_marks.append(closest_barycentre(nerve, eye, settings.landmark_points, sp))
        chiasm_marks.append(closest_barycentre(half if half.any() else chiasm, nerve, settings.landmark_points, sp))
    sides = [i for i in (0, 1) if eye_marks[i] is not None and chiasm_marks[i] is not None]
    if len(sides) == 2:
        gap = float(np.linalg.norm((chiasm_marks[0] - chiasm_marks[1]) * sp))  # type: ignore[operator]
        if gap < settings.min_chiasm_landmark_distance_mm:
            merged = 0.5 * (chiasm_marks[0] + chiasm_marks[1])  # type: ignore[operator]
            to_eye = [float(cKDTree(np.argwhere(e) * sp).query(merged * sp)[0]) for e in eyes]
            side = int(np.argmin(to_eye))
            log.info("chiasm landmarks %.1f mm apart: rebuilding only the %s optic nerve", gap, "lr"[side])
            sides, chiasm_marks[side] = [side], merged
    for i in sides:
        refined = nerves[i]
        if settings.fat_refinement and case.image is not None:
            refined = remove_fat(
                refined,
                case.image,
                eye_marks[i],  # type: ignore[arg-type]
                sp,
                settings.fat_box_half_size_mm,
                settings.fat_quantile,
                settings.fat_fraction,
            )
        nerves[i] = rebuild_nerve(refined, eye_marks[i], chiasm_marks[i], geometry, settings)  # type: ignore[arg-type]
    case.store_sided(roles.optic_nerve, nerves[0], nerves[1])
