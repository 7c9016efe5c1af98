"""Connected components of bool ``(Z, Y, X)`` masks through cc3d (labels, sizes, barycentres)."""

from __future__ import annotations

import cc3d
import numpy as np


def label(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Component labels (0 = background, 1..n) and their number ``n``."""
    # uint8, not bool: cc3d 4.1 under-estimates the label count of some bool inputs and raises.
    binary = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    labels, n = cc3d.connected_components(binary, connectivity=connectivity, return_N=True)
    return labels, int(n)


def sizes(labels: np.ndarray, n: int) -> np.ndarray:
    """Voxel count of components ``0..n`` (index 0 is the background)."""
    return np.bincount(labels.ravel(), minlength=n + 1)


def barycentres(labels: np.ndarray, n: int) -> np.ndarray:
    """``(n, 3)`` mean ``(z, y, x)`` index of components ``1..n``."""
    idx = np.nonzero(labels)
    lab = labels[idx]
    counts = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)
    return np.stack(
        [np.bincount(lab, weights=axis, minlength=n + 1)[1:] / np.maximum(counts, 1) for axis in idx], axis=1
    )
