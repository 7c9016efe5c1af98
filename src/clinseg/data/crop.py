"""Boxes around organs, padded crops and their exact inverse (seed 003, "Organ segmentation network").

A box is a tuple of three ``(start, stop)`` voxel ranges in ``(Z, Y, X)``; after padding it may reach
outside the volume (negative start, stop beyond the size). :func:`crop` then fills the outside with zeros,
exactly like the seed's "images were zero padded by 15 voxels on each side before cropping", and
:func:`paste` puts a crop back, dropping what lies outside. ``paste(crop(x, b), b)`` equals ``x`` inside
``b`` and ``crop(paste(c, b), b)`` equals ``c`` wherever ``b`` lies in the volume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def bounding_box(mask: np.ndarray) -> Box | None:
    """Smallest box holding every non-zero voxel of a ``(Z, Y, X)`` mask; None when it is empty."""
    if mask.ndim != 3:
        raise ValueError(f"bounding_box needs a (Z, Y, X) mask, got shape {mask.shape}")
    ranges = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=other))
        if hits.size == 0:
            return None
        ranges.append((int(hits[0]), int(hits[-1]) + 1))
    return tuple(ranges)  # type: ignore[return-value]


def pad_box(box: Box, margin: int | Sequence[int] | Sequence[Sequence[int]]) -> Box:
    """``box`` grown by ``margin`` voxels: one number, one per axis, or ``(before, after)`` per axis."""
    if isinstance(margin, (int, np.integer)):
        sides = [(int(margin), int(margin))] * 3
    else:
        sides = [(int(m), int(m)) if isinstance(m, (int, np.integer)) else (int(m[0]), int(m[1])) for m in margin]
    if len(sides) != 3 or any(a < 0 or b < 0 for a, b in sides):
        raise ValueError(f"margin must be >= 0 for three axes, got {margin!r}")
    return tuple((lo - a, hi + b) for (lo, hi), (a, b) in zip(box, sides))  # type: ignore[return-value]


def random_margin(rng: np.random.Generator, low: int, high: int) -> tuple[tuple[int, int], ...]:
    """A margin drawn uniformly in ``[low, high]`` voxels for each side of each axis (jittered context)."""
    if not 0 <= low <= high:
        raise ValueError(f"margin range must satisfy 0 <= low <= high, got {low}, {high}")
    values = rng.integers(low, high + 1, size=(3, 2))
    return tuple((int(a), int(b)) for a, b in values)


def scale_box(box: Box, from_shape: Sequence[int], to_shape: Sequence[int]) -> Box:
    """Map a box between two grids covering the same physical box (e.g. low-res -> full-res), outward."""
    out = []
    for (lo, hi), a, b in zip(box, from_shape, to_shape):
        factor = b / a
        out.append((int(np.floor(lo * factor)), int(np.ceil(hi * factor))))
    return tuple(out)  # type: ignore[return-value]


def clip_box(box: Box, shape: Sequence[int]) -> Box:
    """The part of ``box`` inside a volume of ``shape``."""
    return tuple((max(lo, 0), min(hi, s)) for (lo, hi), s in zip(box, shape))  # type: ignore[return-value]


def box_size(box: Box) -> tuple[int, int, int]:
    return tuple(hi - lo for lo, hi in box)  # type: ignore[return-value]


def crop(array: np.ndarray, box: Box, fill: float = 0.0) -> np.ndarray:
    """The region ``box`` of the trailing ``(Z, Y, X)`` axes of ``array``; outside the volume = ``fill``."""
    shape = array.shape[-3:]
    out = np.full((*array.shape[:-3], *box_size(box)), fill, dtype=array.dtype)
    inside = clip_box(box, shape)
    if any(hi <= lo for lo, hi in inside):
        return out
    src = tuple(slice(lo, hi) for lo, hi in inside)
    dst = tuple(slice(lo - b[0], hi - b[0]) for (lo, hi), b in zip(inside, box))
    out[(..., *dst)] = array[(..., *src)]
    return out


def paste(patch: np.ndarray, box: Box, shape: Sequence[int], fill: float = 0.0,
          out: np.ndarray | None = None) -> np.ndarray:
    """Put ``patch`` (a crop of ``box``) into a volume of spatial ``shape`` (or into ``out``)."""
    if tuple(patch.shape[-3:]) != box_size(box):
        raise ValueError(f"patch of shape {patch.shape[-3:]} does not fit box {box}")
    if out is None:
        out = np.full((*patch.shape[:-3], *shape), fill, dtype=patch.dtype)
    inside = clip_box(box, shape)
    if any(hi <= lo for lo, hi in inside):
        return out
    dst = tuple(slice(lo, hi) for lo, hi in inside)
    src = tuple(slice(lo - b[0], hi - b[0]) for (lo, hi), b in zip(inside, box))
    out[(..., *dst)] = patch[(..., *src)]
    return out
