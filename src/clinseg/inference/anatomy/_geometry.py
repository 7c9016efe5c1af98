"""Voxel indices to patient coordinates (ITK/LPS), the antero-posterior array axis, physical voxel sizes.

Array indices are ``(z, y, x)`` (array axes 0, 1, 2); :class:`~clinseg.io.image.Geometry` is ITK's:
``world = origin + direction @ (spacing * (x, y, z))`` with ``direction`` row-major and its columns the
directions of the array axes X, Y, Z. In LPS, world +x points to the patient's left, +y posterior.
"""

from __future__ import annotations

import numpy as np

from clinseg.io.image import Geometry


def direction_matrix(geometry: Geometry) -> np.ndarray:
    """The 3x3 direction cosines (columns: array axes X, Y, Z)."""
    return np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)


def to_world(indices_zyx: np.ndarray, geometry: Geometry) -> np.ndarray:
    """World coordinates ``(N, 3)`` in mm, ``(x, y, z)``, of ``(N, 3)`` (possibly fractional) ``(z, y, x)`` indices."""
    idx = np.atleast_2d(np.asarray(indices_zyx, dtype=np.float64))
    xyz = idx[:, ::-1] * np.asarray(geometry.spacing, dtype=np.float64)
    return np.asarray(geometry.origin, dtype=np.float64) + xyz @ direction_matrix(geometry).T


def world_x(indices_zyx: np.ndarray, geometry: Geometry) -> np.ndarray:
    """World x (patient right -> left, mm) of ``(N, 3)`` ``(z, y, x)`` indices, shape ``(N,)``."""
    return to_world(indices_zyx, geometry)[:, 0]


def ap_axis(geometry: Geometry) -> int:
    """Array axis (0 = Z, 1 = Y, 2 = X) closest to the antero-posterior world axis (largest ``|y|`` cosine)."""
    column = int(np.argmax(np.abs(direction_matrix(geometry)[1])))  # column j is the direction of x, y, z
    return 2 - column


def spacing_zyx(geometry: Geometry) -> np.ndarray:
    """Voxel size in mm in array axis order ``(z, y, x)``."""
    return np.asarray(geometry.spacing_zyx, dtype=np.float64)


def voxel_unit_mm(geometry: Geometry) -> float:
    """The length of "one voxel" for radii the seed gives in voxels: the finest spacing (in-plane for MR)."""
    return float(np.min(geometry.spacing))
