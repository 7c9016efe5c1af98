"""Triplanar hole filling of the brain mask (seed 001 §4.2.2.1, Fig. 4.3).

Networks leave "holes" of negative voxels inside the brain. In every axial, coronal and sagittal plane, the
2D connected components of the background that do not touch the plane's border become brain. The filling is
done in 2D because such holes are often connected to the outside in 3D.

The three orientations are filled independently on the *original* mask and the fills are united: the seed
lists the three planes without an order, and the union does not depend on one (a sequential fill, each
orientation on the previous result, can fill more and gives different results for different orders).
The background is 4-connected within a plane (the usual dual of an 8-connected object), so a hole that
touches the outside only by a corner is still a hole.

Example
-------
>>> brain = np.ones((3, 5, 5), dtype=bool); brain[1, 2, 2] = False
>>> bool(fill_holes_triplanar(brain)[1, 2, 2])
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from clinseg.inference.anatomy.registry import register_rule

if TYPE_CHECKING:
    from clinseg.inference.anatomy._case import AnatomyCase

__all__ = ["fill_holes_triplanar"]


def fill_holes_triplanar(mask: np.ndarray) -> np.ndarray:
    """Fill the 2D holes of a ``(Z, Y, X)`` mask in every plane of the three array orientations.

    Parameters
    ----------
    mask : bool (or 0/1) ``(Z, Y, X)`` mask.

    Returns
    -------
    numpy.ndarray
        A new bool ``(Z, Y, X)`` mask: ``mask`` plus every background voxel enclosed in at least one of its
        axial, coronal or sagittal planes (planes of constant array index along Z, Y or X).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be (Z, Y, X), got shape {mask.shape}")
    out = mask.copy()
    in_plane = ndi.generate_binary_structure(2, 1)
    for normal in range(3):
        # A structure flat along `normal` connects voxels only within each plane; the flood from outside the
        # array then enters every plane, the first and last included, only through its own border.
        structure = np.expand_dims(in_plane, axis=normal)
        structure = np.concatenate([np.zeros_like(structure), structure, np.zeros_like(structure)], axis=normal)
        out |= ndi.binary_fill_holes(mask, structure=structure)
    return out


@register_rule("brain_holes", order=10)
def brain_holes_rule(case: AnatomyCase) -> None:
    """Triplanar hole filling of the brain mask."""
    brain = case.roles.brain
    if brain in case.masks:
        case.masks[brain] = fill_holes_triplanar(case.masks[brain])
