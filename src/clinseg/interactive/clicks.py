"""Guidance clicks for interactive segmentation: click maps and simulated clicks (seed 002, §2.3 and §3.3).

Seed 002 §2.3 follows Sakinis et al. (2019): a foreground and a background click map are stacked with the
image as two extra input channels. Clicks are simulated from the ground truth: the first at the innermost
point of the object, the following ones in the biggest erroneous areas of the previous prediction, with
t ∈ {1, ..., 5} interactions drawn per training sample; and, because the data have one class, the ground
truth is at random turned into all-background, with background clicks only, so that the network learns to
obey the clicks. Validation and evaluation use a single click (§3.3), i.e. :func:`initial_click`.

Arrays: masks are 2-D slices ``(H, W)`` or 3-D patches ``(Z, Y, X)``, any dtype, non-zero = foreground
(threshold probabilities first). A click is a point in array index order, a tuple of ints. ``spacing``
(optional) is the voxel size in mm in the same array order (``Geometry.spacing_zyx`` for 3-D); without it
distances are in voxels. Inputs are never modified; all randomness comes from the generator passed in.

Example
-------
>>> target = np.zeros((9, 9), np.uint8); target[2:7, 1:8] = 1      # a 5 x 7 rectangle
>>> initial_click(target)
(4, 4)
>>> click_maps(target.shape, [(4, 4)], [], sigma=1.0)[:, 4, 4]
array([1., 0.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cc3d
import numpy as np
from scipy import ndimage

__all__ = [
    "DEFAULT_BACKGROUND_RATE",
    "MAX_INTERACTIONS",
    "Click",
    "Point",
    "click_maps",
    "initial_click",
    "next_click",
    "num_interactions",
]

Point = tuple[int, ...]
"""A click position in array index order: ``(y, x)`` on a slice, ``(z, y, x)`` in a patch."""

# Seed 002 §2.3: "Final number of interactions is randomly set to t ∈ <1, 5>".
MAX_INTERACTIONS = 5
# Seed 002 §2.3 converts the ground truth to all-background "randomly" without giving the probability;
# 0.2 is our choice (most samples still teach the foreground, enough teach obeying background clicks).
DEFAULT_BACKGROUND_RATE = 0.2

# Full connectivity (8 in 2-D, 26 in 3-D): an error region is one blob a user would click once.
_CONNECTIVITY = {2: 8, 3: 26}


class Click(NamedTuple):
    """One simulated click: where, and whether it marks foreground (True) or background (False)."""

    point: Point
    foreground: bool


def _as_mask(array: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(array) != 0
    if mask.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2-D (H, W) or 3-D (Z, Y, X) mask, got shape {mask.shape}")
    return mask


def _as_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be {ndim} positive voxel sizes in mm (array order), got {spacing}")
    return values


def _innermost(crop: np.ndarray, starts: Sequence[int], rng: np.random.Generator | None,
               spacing: tuple[float, ...] | None) -> Point:
    """Innermost voxel of a non-empty mask ``crop`` (placed at ``starts``): the maximum of its distance map.

    The crop is padded with background so the array border counts as the object's border. Several maxima
    (the ridge of a rectangle) are resolved by taking the one nearest to their centroid, so a rectangle is
    clicked at its centre; remaining ties (symmetric shapes of even size) are drawn with ``rng``, or the first
    in C order without one.
    """
    dist = ndimage.distance_transform_edt(np.pad(crop, 1), sampling=spacing)
    peak = dist.max()
    maxima = np.argwhere(dist >= peak * (1.0 - 1e-9))  # (K, ndim), C order
    scale = np.asarray(spacing if spacing is not None else (1.0,) * crop.ndim)
    offsets = np.sum(((maxima - maxima.mean(axis=0)) * scale) ** 2, axis=1)
    nearest = np.flatnonzero(offsets <= offsets.min() + 1e-9)
    pick = nearest[0] if rng is None or nearest.size == 1 else rng.choice(nearest)
    return tuple(int(i) - 1 + int(s) for i, s in zip(maxima[pick], starts))


@dataclass(frozen=True)
class _Region:
    """One connected error region: ``labels[box] == label``; false negative if ``foreground``."""

    size: int
    foreground: bool
    labels: np.ndarray
    label: int
    box: tuple[slice, ...]

    def contains(self, point: Point) -> bool:
        return all(s.start <= p < s.stop for p, s in zip(point, self.box)) and self.labels[point] == self.label

    def centre(self, rng: np.random.Generator | None, spacing: tuple[float, ...] | None) -> Point:
        return _innermost(self.labels[self.box] == self.label, [s.start for s in self.box], rng, spacing)


def _error_regions(target: np.ndarray, prediction: np.ndarray, min_size: int) -> list[_Region]:
    """Connected false-negative and false-positive regions, largest first (false negatives first on ties)."""
    regions = []
    for foreground, error in ((True, target & ~prediction), (False, prediction & ~target)):
        if not error.any():
            continue
        labels = cc3d.connected_components(error.astype(np.uint8), connectivity=_CONNECTIVITY[error.ndim])
        sizes = np.bincount(labels.ravel())
        for label, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is not None and sizes[label] >= min_size:
                regions.append(_Region(int(sizes[label]), foreground, labels, label, box))
    regions.sort(key=lambda r: -r.size)  # stable: false negatives before false positives of equal size
    return regions


def click_maps(shape: Sequence[int], fg_clicks: Sequence[Sequence[int]], bg_clicks: Sequence[Sequence[int]],
               sigma: float | Sequence[float]) -> np.ndarray:
    """Foreground and background click maps (Sakinis et al., as described in seed 002 §2.3).

    Ones are placed at the clicks, each map is smoothed with a Gaussian filter (zero outside the array) and
    normalised to [0, 1] by its maximum; a map without clicks stays all-zero.

    Parameters
    ----------
    shape : spatial shape ``(H, W)`` or ``(Z, Y, X)``.
    fg_clicks, bg_clicks : click points in array index order.
    sigma : Gaussian standard deviation in voxels, one value or one per axis.

    Returns
    -------
    numpy.ndarray
        ``(2, *shape)`` float32: channel 0 foreground, channel 1 background; a lone click is 1 at its voxel.
    """
    shape = tuple(int(s) for s in shape)
    maps = np.zeros((2, *shape), dtype=np.float32)
    for channel, clicks in enumerate((fg_clicks, bg_clicks)):
        for point in clicks:
            point = tuple(int(p) for p in point)
            if len(point) != len(shape) or not all(0 <= p < s for p, s in zip(point, shape)):
                raise ValueError(f"click {point} lies outside an array of shape {shape}")
            maps[(channel, *point)] = 1.0
        if len(clicks):
            smooth = ndimage.gaussian_filter(maps[channel], sigma, mode="constant")
            maps[channel] = smooth / smooth.max()
    return maps


def initial_click(target: np.ndarray, rng: np.random.Generator | None = None, *,
                  spacing: Sequence[float] | None = None) -> Point | None:
    """The first click: the innermost point of the target (maximum of its Euclidean distance transform).

    Seed 002 §2.3: "First click is placed in the innermost position of the groundtruth object area"; this
    single click is also what validation and evaluation use (§3.3).

    Parameters
    ----------
    target : ``(H, W)`` or ``(Z, Y, X)`` mask.
    rng : breaks exact ties between symmetric candidates (default: first in C order).
    spacing : voxel size in mm, array order (default: distances in voxels).

    Returns
    -------
    Point or None
        The click, or None for an empty target.
    """
    mask = _as_mask(target, "target")
    if not mask.any():
        return None
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    return _innermost(mask[box], [s.start for s in box], rng, _as_spacing(spacing, mask.ndim))


def next_click(target: np.ndarray, prediction: np.ndarray, rng: np.random.Generator | None = None, *,
               spacing: Sequence[float] | None = None, min_size: int = 1) -> Click | None:
    """A corrective click at the centre of the largest error region of ``prediction`` (seed 002 §2.3).

    The largest connected region (voxel count) among false negatives and false positives is clicked at its
    innermost point: a foreground click for a false negative, a background click for a false positive.

    Parameters
    ----------
    target, prediction : binary masks of the same shape, ``(H, W)`` or ``(Z, Y, X)``.
    rng : breaks exact ties between symmetric candidates (default: first in C order).
    spacing : voxel size in mm, array order.
    min_size : ignore error regions smaller than this many voxels. 1 reproduces the seed; §3.3 notes that
        late in training the simulated clicks "degrade to clicking on very small areas", which a larger
        value avoids.

    Returns
    -------
    Click or None
        None when no error region is left (``prediction`` is right up to ``min_size``).
    """
    mask, pred = _as_mask(target, "target"), _as_mask(prediction, "prediction")
    if pred.shape != mask.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {mask.shape}")
    regions = _error_regions(mask, pred, min_size)
    if not regions:
        return None
    return Click(regions[0].centre(rng, _as_spacing(spacing, mask.ndim)), regions[0].foreground)


def num_interactions(rng: np.random.Generator, max_interactions: int = MAX_INTERACTIONS) -> int:
    """Number of interactions for one training sample, uniform in ``1 .. max_interactions`` (seed 002 §2.3)."""
    if max_interactions < 1:
        raise ValueError(f"max_interactions must be >= 1, got {max_interactions}")
    return int(rng.integers(1, max_interactions + 1))
