"""Eyes and lenses (seed 001 §4.2.2.2): drop implausibly small eyes, keep lenses inside the eyes.

False-positive "eyes" appear in particular in the orbit of an eye removed by surgery; they are removed as
connected components below an expected minimum volume (4 cm³ in the seed). Lenses are then constrained to
the predicted eyes: every lens voxel outside both eyes is set to 0.

Example
-------
>>> eye = np.zeros((1, 1, 10), dtype=bool); eye[0, 0, :2] = True; eye[0, 0, 4:9] = True
>>> remove_small_components(eye, min_volume_ml=0.003, voxel_volume_ml=0.001)[0, 0].astype(int)
array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clinseg.inference.anatomy._components import label, sizes
from clinseg.inference.anatomy.registry import register_rule

if TYPE_CHECKING:
    from clinseg.inference.anatomy._case import AnatomyCase

__all__ = ["remove_small_components"]


def remove_small_components(
    mask: np.ndarray, min_volume_ml: float, voxel_volume_ml: float, connectivity: int = 26
) -> np.ndarray:
    """A new bool ``(Z, Y, X)`` mask without the connected components smaller than ``min_volume_ml``.

    Parameters
    ----------
    mask : bool ``(Z, Y, X)`` mask.
    min_volume_ml : components of at least this volume (ml = cm³) are kept.
    voxel_volume_ml : volume of one voxel (``Geometry.voxel_volume_ml``).
    connectivity : 6, 18 or 26.
    """
    labels, n = label(mask, connectivity)
    volumes = sizes(labels, n) * voxel_volume_ml
    # Relative tolerance: a component of exactly the minimum volume is kept despite float rounding.
    keep = volumes >= min_volume_ml * (1.0 - 1e-9)
    keep[0] = False
    return keep[labels]


@register_rule("eyes", order=30)
def eyes_rule(case: AnatomyCase) -> None:
    """Remove eye components smaller than ``settings.min_eye_volume_ml``, on each side."""
    eye = case.roles.eye
    if not case.has(eye):
        return
    volume, ml = case.settings.min_eye_volume_ml, case.geometry.voxel_volume_ml
    conn = case.settings.connectivity
    if case.is_split(eye):
        left, right = case.sided(eye)
        case.store_sided(eye, *(remove_small_components(m, volume, ml, conn) for m in (left, right)))
    else:
        case.masks[eye] = remove_small_components(case.masks[eye], volume, ml, conn)


@register_rule("lenses", order=40)
def lenses_rule(case: AnatomyCase) -> None:
    """Set every lens voxel outside the (post-processed) eyes to 0."""
    lens, eye = case.roles.lens, case.roles.eye
    if not (case.has(lens) and case.has(eye)):
        return
    eyes = case.organ(eye)
    if case.is_split(lens):
        left, right = case.sided(lens)
        case.store_sided(lens, left & eyes, right & eyes)
    else:
        case.masks[lens] = case.masks[lens] & eyes
