"""The body (non-air) region of an image: where a network has anything to segment.

nnU-Net crops every case to its non-zero region before anything else; CT has no zero background (air is
about -1000 HU), so clinseg finds the body by thresholding between air and tissue (Otsu's threshold of the
first channel, which separates air from soft tissue in CT and background from head in MR), keeps the large
connected components and takes their bounding box (:data:`clinseg.data.crop.Box`). Only the box is used:
cropping to it keeps the grid aligned, and the network sees every voxel of the body with a margin of air.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from clinseg.data.crop import Box, bounding_box, clip_box, pad_box

#: Components smaller than this share of the largest are dropped (table, cables, noise).
MIN_COMPONENT_SHARE = 0.05
#: Air voxels kept around the body on every side.
BODY_MARGIN = 2


def body_mask(image: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Boolean body mask of a ``(Z, Y, X)`` image (or ``(C, Z, Y, X)``: its first channel).

    Parameters
    ----------
    image : intensities as stored (HU for CT; any scale for MR).
    threshold : intensity separating air from body; ``None`` = Otsu's threshold of the image.

    Returns
    -------
    ``(Z, Y, X)`` bool: voxels above the threshold, opened once (thin noise removed), in components at least
    :data:`MIN_COMPONENT_SHARE` of the largest. All False for a constant image.

    Examples
    --------
    >>> x = np.zeros((10, 10, 10)); x[2:8, 3:7, 1:9] = 100
    >>> body_box(x, margin=0)
    ((2, 8), (3, 7), (1, 9))
    """
    x = np.asarray(image[0] if image.ndim == 4 else image, dtype=np.float32)
    if float(x.max()) <= float(x.min()):
        return np.zeros(x.shape, dtype=bool)
    t = threshold_otsu(x[:: max(1, x.shape[0] // 64)]) if threshold is None else threshold
    raw = x > t
    mask = ndimage.binary_opening(raw, iterations=1) if min(x.shape) >= 3 else raw
    if not mask.any():
        mask = raw
    labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    if counts.max() == 0:
        return mask
    return np.isin(labels, np.flatnonzero(counts >= MIN_COMPONENT_SHARE * counts.max()))


def body_box(image: np.ndarray, margin: int = BODY_MARGIN, threshold: float | None = None) -> Box:
    """The box of :func:`body_mask` grown by ``margin`` voxels and clipped to the volume; the whole volume
    when no body is found. ``image`` is ``(Z, Y, X)`` or ``(C, Z, Y, X)``."""
    shape = image.shape[-3:]
    box = bounding_box(body_mask(image, threshold))
    if box is None:
        return tuple((0, int(s)) for s in shape)  # type: ignore[return-value]
    return clip_box(pad_box(box, margin), shape)
