"""Left/right assignment of bilateral organs (seed 001 §4.2.2.1).

The head may lie anywhere in the image, so the midline is taken from the brain: each connected component of
a bilateral organ (eye, lens, optic nerve, hippocampus) goes to the side whose end of the brain's bounding
box (in patient x) is nearer to the component's barycentre, i.e. to the side of the box's mid-plane it lies
on. Coordinates are ITK/LPS world coordinates (patient left is +x), so any direction matrix is handled.

A barycentre exactly on the mid-plane goes to the left. Without a brain mask the bounding box of the image
foreground (``image > 0``) is used, and without foreground the centre of the grid. When the ``sides`` rule is
disabled, bilateral organs are still split (the output names sides) but voxel by voxel at the mid-plane.

Example
-------
>>> geo = Geometry(spacing=(1.0, 1.0, 1.0), shape=(1, 1, 4))
>>> eye = np.array([[[True, False, False, True]]])
>>> left, right = split_components(eye, geo, midline=1.5)
>>> left.nonzero()[2], right.nonzero()[2]        # x = 3 is patient left in LPS
(array([3]), array([0]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clinseg.inference.anatomy._components import barycentres, label
from clinseg.inference.anatomy._geometry import world_x
from clinseg.inference.anatomy.registry import register_rule
from clinseg.io.image import Geometry

if TYPE_CHECKING:
    from clinseg.inference.anatomy._case import AnatomyCase

__all__ = ["midline_x", "split_at_midline", "split_components", "world_x_extent"]


def world_x_extent(mask: np.ndarray, geometry: Geometry) -> tuple[float, float] | None:
    """``(min, max)`` world x (mm) over the voxel centres of ``mask``; ``None`` when it is empty."""
    idx = np.argwhere(mask)
    if idx.shape[0] == 0:
        return None
    # x is linear in the indices, so its extremes over the voxels are among the corners of the index box.
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    xs = world_x(corners, geometry)
    return float(xs.min()), float(xs.max())


def midline_x(
    brain: np.ndarray | None, image: np.ndarray | None, geometry: Geometry, shape: tuple[int, int, int]
) -> float:
    """World x (mm) of the patient's mid-sagittal plane: the middle of the brain's bounding box.

    Falls back to the bounding box of ``image > 0``, then to the centre of the ``(Z, Y, X)`` grid ``shape``.
    """
    for region in (brain, None if image is None else np.asarray(image) > 0):
        extent = None if region is None else world_x_extent(region, geometry)
        if extent is not None:
            return 0.5 * (extent[0] + extent[1])
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    return float(world_x(centre, geometry)[0])


def split_components(
    mask: np.ndarray, geometry: Geometry, midline: float, connectivity: int = 26
) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` bool masks: each connected component goes whole to the side of its barycentre.

    Parameters
    ----------
    mask : bool ``(Z, Y, X)`` mask of a bilateral organ (both sides).
    geometry : the grid's geometry (LPS: world +x is patient left).
    midline : world x (mm) of the mid-sagittal plane (:func:`midline_x`).
    connectivity : 6, 18 or 26.
    """
    labels, n = label(mask, connectivity)
    if n == 0:
        empty = np.zeros(mask.shape, dtype=bool)
        return empty, empty.copy()
    is_left = np.concatenate([[False], world_x(barycentres(labels, n), geometry) >= midline])
    left = is_left[labels]
    return left, np.asarray(mask, dtype=bool) & ~left


def split_at_midline(mask: np.ndarray, geometry: Geometry, midline: float) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` bool masks, voxel by voxel: a voxel centre at world x >= ``midline`` is left."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.nonzero(mask)
    left = np.zeros(mask.shape, dtype=bool)
    left[tuple(i[world_x(np.stack(idx, axis=1), geometry) >= midline] for i in idx)] = True
    return left, mask & ~left


def _split_all(case: AnatomyCase, by_component: bool) -> None:
    midline = case.midline_x()
    for organ, (left_name, right_name) in case.roles.bilateral.items():
        if organ not in case.masks:
            continue
        mask = case.masks.pop(organ)
        if by_component:
            left, right = split_components(mask, case.geometry, midline, case.settings.connectivity)
        else:
            left, right = split_at_midline(mask, case.geometry, midline)
        case.masks[left_name], case.masks[right_name] = left, right


def split_sides_at_midline(case: AnatomyCase) -> None:
    """Split every bilateral organ voxel-wise at the brain's mid-plane (the ``sides`` rule switched off)."""
    _split_all(case, by_component=False)


@register_rule("sides", order=20, when_disabled=split_sides_at_midline)
def sides_rule(case: AnatomyCase) -> None:
    """Split every bilateral organ into left and right structures, one connected component at a time."""
    _split_all(case, by_component=True)
