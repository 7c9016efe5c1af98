"""Resize volumes to a coarser (or finer) grid while keeping their place in patient space.

The localisation network of seed 003 (Sec. "Localisation network") is trained on "a low resolution version
of the dataset by resizing the images and annotations down to a half their width and height and a third of
their depth", with scikit-image's ``resize``. Here the image is resized the same way (linear, with
anti-aliasing) and the masks by area: a low-resolution voxel is foreground when at least half of the
full-resolution voxels it covers are, so a small organ neither grows nor vanishes more than it must.

The new grid covers the same physical box: spacing grows by ``old / new`` per axis and the first voxel centre
moves by half the change of a voxel (edge-aligned grids, as scikit-image and ``align_corners=False`` use),
so a resized volume overlays the original in any viewer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import resize as _sk_resize

from clinseg.data.loading import CaseData
from clinseg.errors import ConfigError
from clinseg.io.image import Geometry

#: Seed 003's low-resolution grid: half the width and height, a third of the depth (Z, Y, X divisors).
LOWRES_FACTORS: tuple[float, float, float] = (3.0, 2.0, 2.0)


def lowres_shape(shape: Sequence[int], factors: Sequence[float] = LOWRES_FACTORS) -> tuple[int, int, int]:
    """``(Z, Y, X)`` divided by ``factors`` (rounded, at least 1 voxel)."""
    if len(shape) != 3 or len(factors) != 3 or any(f <= 0 for f in factors):
        raise ConfigError(f"need three sizes and three positive factors, got {tuple(shape)} / {tuple(factors)}")
    return tuple(max(1, int(round(s / f))) for s, f in zip(shape, factors))  # type: ignore[return-value]


def resized_geometry(geometry: Geometry, shape: Sequence[int]) -> Geometry:
    """The grid of ``shape`` ``(Z, Y, X)`` covering the same physical box as ``geometry``."""
    old = np.asarray(geometry.shape[::-1], dtype=float)  # (x, y, z)
    new = np.asarray(tuple(shape)[::-1], dtype=float)
    scale = old / new
    spacing = np.asarray(geometry.spacing) * scale
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    shift = direction @ (np.asarray(geometry.spacing) * (scale - 1.0) / 2.0)
    origin = np.asarray(geometry.origin) + shift
    return Geometry(tuple(spacing.tolist()), tuple(origin.tolist()), geometry.direction,  # type: ignore[arg-type]
                    tuple(int(s) for s in shape))  # type: ignore[arg-type]


def resize_image(image: np.ndarray, shape: Sequence[int], *, anti_aliasing: bool = True) -> np.ndarray:
    """Resize ``(C, Z, Y, X)`` (or ``(Z, Y, X)``) float channels to spatial ``shape``; linear, anti-aliased
    when shrinking (scikit-image's Gaussian pre-filter, as seed 003 did). Returns float32."""
    spatial = tuple(int(s) for s in shape)
    if image.ndim == 3:
        return resize_image(image[None], spatial, anti_aliasing=anti_aliasing)[0]
    out = np.empty((image.shape[0], *spatial), dtype=np.float32)
    for c in range(image.shape[0]):
        out[c] = _sk_resize(image[c].astype(np.float32, copy=False), spatial, order=1, mode="edge",
                            anti_aliasing=anti_aliasing and any(n < o for n, o in zip(spatial, image.shape[1:])),
                            preserve_range=True)
    return out


def resize_masks(masks: np.ndarray, shape: Sequence[int], threshold: float = 0.5) -> np.ndarray:
    """Resize ``(N, Z, Y, X)`` binary masks to spatial ``shape`` by area (``>= threshold`` of the covered
    full-resolution voxels are foreground).

    Shrinking averages the covered full-resolution voxels (``adaptive_avg_pool3d``, exact for any ratio);
    enlarging uses the nearest voxel. Returns uint8.
    """
    spatial = tuple(int(s) for s in shape)
    x = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))[None]
    if all(n <= o for n, o in zip(spatial, masks.shape[1:])):
        y = F.adaptive_avg_pool3d(x, spatial)
    else:
        y = F.interpolate(F.adaptive_avg_pool3d(x, tuple(min(n, o) for n, o in zip(spatial, masks.shape[1:]))),
                          size=spatial, mode="nearest")
    return (y[0] >= threshold).numpy().astype(np.uint8)


def resample_case(case: CaseData, factors: Sequence[float]) -> CaseData:
    """``case`` on the grid divided by ``factors`` ``(Z, Y, X)``: image linear + anti-aliased, masks by area."""
    shape = lowres_shape(case.image.shape[1:], factors)
    return dataclasses.replace(case, image=resize_image(case.image, shape), target=resize_masks(case.target, shape),
                               geometry=resized_geometry(case.geometry, shape))
