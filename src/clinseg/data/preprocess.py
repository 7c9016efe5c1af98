"""Preprocess a case as its plan says: crop to the body, resample to the target spacing, normalise.

The same functions serve training (every case once, into the cache of :mod:`clinseg.data.cache`) and
prediction (each input image, whose probabilities are then mapped back with :func:`restore_probabilities`),
so a network always sees images prepared the same way.

Resampling is linear for images (``torch.nn.functional.interpolate``, edge-aligned grids as in
:mod:`clinseg.data.resize`) and, for masks, linear on the float mask thresholded at 0.5, which keeps a
structure's volume and does not shift it. The new grid covers the cropped box exactly; its spacing is the
box extent over the new shape (within half a voxel of the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from clinseg.data.body import body_box
from clinseg.data.crop import Box, box_size
from clinseg.data.intensity import ChannelNorm, normalise_image
from clinseg.data.loading import UNKNOWN
from clinseg.data.resize import resized_geometry
from clinseg.io.image import Geometry

#: Voxels resampled at a time (bounds the float32 temporaries of large clinical volumes).
_CHUNK_CHANNELS = 4


@dataclass(frozen=True)
class Preprocessing:
    """How images are prepared (the preprocessing part of a plan).

    Attributes
    ----------
    spacing : target voxel size ``(x, y, z)`` mm; ``None`` keeps each image's grid.
    crop_to_body : crop to the body box (:func:`clinseg.data.body.body_box`) first.
    normalization : one :class:`ChannelNorm` per channel.
    """

    spacing: tuple[float, float, float] | None
    crop_to_body: bool
    normalization: tuple[ChannelNorm, ...]


@dataclass(frozen=True)
class Prepared:
    """A preprocessed image and where it came from.

    Attributes
    ----------
    image : ``(C, Z', Y', X')`` float32, normalised, on the new grid.
    geometry : the new grid (spacing close to the target, origin of the box).
    box : the crop box on the input grid (the whole volume when not cropping).
    input_geometry : the input grid.
    """

    image: np.ndarray
    geometry: Geometry
    box: Box
    input_geometry: Geometry


def cropped_geometry(geometry: Geometry, box: Box) -> Geometry:
    """The grid of ``box`` (``(Z, Y, X)`` voxel ranges) cut out of ``geometry``."""
    start_xyz = np.asarray([box[2][0], box[1][0], box[0][0]], dtype=float)
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    origin = np.asarray(geometry.origin) + direction @ (start_xyz * np.asarray(geometry.spacing))
    return Geometry(geometry.spacing, tuple(origin.tolist()), geometry.direction, box_size(box))  # type: ignore[arg-type]


def target_shape(shape: Sequence[int], spacing_xyz: Sequence[float], target_xyz: Sequence[float] | None) -> tuple[int, int, int]:
    """``(Z, Y, X)`` of a ``shape`` grid with ``spacing_xyz`` resampled to ``target_xyz`` (at least 1 voxel)."""
    if target_xyz is None:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    zyx_old, zyx_new = np.asarray(spacing_xyz, float)[::-1], np.asarray(target_xyz, float)[::-1]
    return tuple(max(1, int(round(s * o / n))) for s, o, n in zip(shape, zyx_old, zyx_new))  # type: ignore[return-value]


def resample(array: np.ndarray, shape: Sequence[int], *, masks: bool = False) -> np.ndarray:
    """Resample ``(C, Z, Y, X)`` to spatial ``shape``: linear for images (float32 out), linear thresholded at
    0.5 for binary masks (uint8 out). Returns the input unchanged (same dtype) when the shape is the same."""
    shape = tuple(int(s) for s in shape)
    if tuple(array.shape[1:]) == shape:
        return array.astype(np.uint8 if masks else np.float32, copy=False)
    out = np.empty((array.shape[0], *shape), dtype=np.uint8 if masks else np.float32)
    for start in range(0, array.shape[0], _CHUNK_CHANNELS):
        part = torch.from_numpy(np.ascontiguousarray(array[start:start + _CHUNK_CHANNELS], dtype=np.float32))
        resized = F.interpolate(part[None], size=shape, mode="trilinear", align_corners=False)[0]
        out[start:start + _CHUNK_CHANNELS] = (resized >= 0.5).numpy() if masks else resized.numpy()
    return out


def prepare_image(image: np.ndarray, geometry: Geometry, prep: Preprocessing) -> Prepared:
    """Crop, resample and normalise a raw ``(C, Z, Y, X)`` image (intensities as stored)."""
    box = body_box(image) if prep.crop_to_body else tuple((0, int(s)) for s in image.shape[1:])
    sl = (slice(None), *(slice(a, b) for a, b in box))
    cropped = image[sl]
    crop_geometry = cropped_geometry(geometry, box)  # type: ignore[arg-type]
    shape = target_shape(cropped.shape[1:], geometry.spacing, prep.spacing)
    normalised = normalise_image(cropped, prep.normalization)
    resampled = resample(normalised, shape)
    new_geometry = resized_geometry(crop_geometry, shape) if shape != cropped.shape[1:] else crop_geometry
    return Prepared(resampled, new_geometry, box, geometry)  # type: ignore[arg-type]


def prepare_targets(target: np.ndarray, prepared: Prepared) -> np.ndarray:
    """The ``(N, Z, Y, X)`` targets of the input grid on the prepared grid (uint8): 1 inside, 0 outside, and
    :data:`~clinseg.data.loading.UNKNOWN` where unknown (the ``ignore`` label), each resampled as a mask."""
    cropped = target[(slice(None), *(slice(a, b) for a, b in prepared.box))]
    shape = prepared.image.shape[1:]
    unknown = cropped == UNKNOWN
    out = resample((cropped == 1).astype(np.uint8), shape, masks=True)
    if unknown.any():
        out[resample(unknown.astype(np.uint8), shape, masks=True).astype(bool)] = UNKNOWN
    return out


def restore_probabilities(probs: np.ndarray, prepared: Prepared, fill: float = 0.0) -> np.ndarray:
    """Map ``(N, Z', Y', X')`` probabilities of the prepared grid back onto the input grid: resampled to the
    crop box (linear) and pasted into a volume of ``fill`` (float16 out, like the sliding window)."""
    box_shape = box_size(prepared.box)
    full = np.full((probs.shape[0], *prepared.input_geometry.shape), fill, dtype=np.float16)
    sl = tuple(slice(a, b) for a, b in prepared.box)
    for start in range(0, probs.shape[0], _CHUNK_CHANNELS):
        part = probs[start:start + _CHUNK_CHANNELS]
        restored = resample(part, box_shape) if tuple(part.shape[1:]) != tuple(box_shape) else part
        full[(slice(start, start + part.shape[0]), *sl)] = restored
    return full
