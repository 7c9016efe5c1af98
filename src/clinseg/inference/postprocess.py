"""Turn per-class probabilities into masks: thresholds, largest connected component, label maps.

Arrays are channel-first: probabilities and masks ``(N, Z, Y, X)``, one channel per class; a single mask
is ``(Z, Y, X)``. Probabilities may be floats in ``[0, 1]`` or uint8-quantised (``p * 255``). Inputs are
never modified.

Example
-------
>>> probs = np.array([[[[0.2, 0.7]]], [[[0.6, 0.4]]]], dtype=np.float16)  # (2, 1, 1, 2)
>>> threshold(probs, [0.5, 0.3])[:, 0, 0]
array([[0, 1],
       [1, 1]], dtype=uint8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cc3d
import numpy as np

__all__ = ["keep_largest_components", "largest_component", "threshold", "to_label_map"]


def _as_float(probs: np.ndarray) -> np.ndarray:
    """Probabilities as floats in [0, 1]; uint8 inputs are read as ``value / 255``."""
    probs = np.asarray(probs)
    if probs.dtype == np.uint8:
        return probs.astype(np.float32) / 255.0
    return probs


def threshold(probs: np.ndarray, thresholds: float | Sequence[float]) -> np.ndarray:
    """Binary masks ``probs >= threshold``, with one threshold for all classes or one per class.

    Parameters
    ----------
    probs : ``(N, Z, Y, X)`` probabilities (float in [0, 1], or uint8 = ``p * 255``).
    thresholds : a scalar, or a sequence of ``N`` thresholds (class ``i`` uses ``thresholds[i]``).

    Returns
    -------
    numpy.ndarray
        ``(N, Z, Y, X)`` uint8 masks of 0/1.
    """
    p = _as_float(probs)
    if p.ndim != 4:
        raise ValueError(f"probs must be (N, Z, Y, X), got shape {p.shape}")
    t = np.asarray(thresholds, dtype=np.float32)
    if t.ndim == 1:
        if t.shape[0] != p.shape[0]:
            raise ValueError(f"{t.shape[0]} thresholds given for {p.shape[0]} classes")
        t = t.reshape(-1, 1, 1, 1)
    elif t.ndim != 0:
        raise ValueError(f"thresholds must be a scalar or one value per class, got shape {t.shape}")
    return (p >= t).astype(np.uint8)


def largest_component(mask: np.ndarray, connectivity: Literal[6, 18, 26] = 26) -> np.ndarray:
    """The largest connected component of a binary ``(Z, Y, X)`` mask, as a bool mask.

    Connectivity 26 counts voxels touching by a face, edge or corner as connected (6: faces only,
    18: faces and edges). Ties between equally large components keep the first in C (z-major) order.
    An empty mask stays empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be (Z, Y, X), got shape {mask.shape}")
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    # uint8, not bool: cc3d 4.1 under-estimates the label count of some bool inputs and raises.
    binary = mask.astype(bool, copy=False).view(np.uint8)
    labels = cc3d.connected_components(binary, connectivity=connectivity)
    counts = np.bincount(labels.ravel())
    if counts.shape[0] <= 1:
        return np.zeros(mask.shape, dtype=bool)
    return labels == (int(np.argmax(counts[1:])) + 1)


def keep_largest_components(
    masks: np.ndarray, enabled_per_class: Sequence[bool], connectivity: Literal[6, 18, 26] = 26
) -> np.ndarray:
    """Keep only the largest connected component in the classes where it is enabled.

    Parameters
    ----------
    masks : ``(N, Z, Y, X)`` binary masks (any integer or bool dtype).
    enabled_per_class : ``N`` flags; class ``i`` is reduced to its largest component when ``True``
        (single organs such as the brainstem), left as is when ``False`` (paired or multi-part structures).
    connectivity : 6, 18 or 26 (see :func:`largest_component`).

    Returns
    -------
    numpy.ndarray
        A new ``(N, Z, Y, X)`` array of the input's dtype.
    """
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise ValueError(f"masks must be (N, Z, Y, X), got shape {masks.shape}")
    if len(enabled_per_class) != masks.shape[0]:
        raise ValueError(f"{len(enabled_per_class)} flags given for {masks.shape[0]} classes")
    out = masks.copy()
    for i, enabled in enumerate(enabled_per_class):
        if enabled:
            out[i] = largest_component(masks[i], connectivity).astype(masks.dtype)
    return out


def to_label_map(probs: np.ndarray, activation: Literal["sigmoid", "softmax"], threshold: float = 0.5) -> np.ndarray:
    """A ``(Z, Y, X)`` uint8 label map for exclusive classes (0 = background).

    Parameters
    ----------
    probs : ``(N, Z, Y, X)`` probabilities (float in [0, 1], or uint8 = ``p * 255``).
    activation : ``"softmax"``: channel 0 is background and the label is the arg-max over all ``N``
        channels (labels 0..N-1). ``"sigmoid"``: background is implicit; a voxel gets label ``i + 1`` of its
        most probable class ``i`` when that probability is ``>= threshold``, else 0 (labels 0..N).
    threshold : foreground threshold for ``"sigmoid"``; ignored for ``"softmax"``.

    Ties keep the lowest channel index.
    """
    p = _as_float(probs)
    if p.ndim != 4:
        raise ValueError(f"probs must be (N, Z, Y, X), got shape {p.shape}")
    if activation == "softmax":
        if p.shape[0] > 256:
            raise ValueError(f"{p.shape[0]} classes do not fit a uint8 label map")
        return np.argmax(p, axis=0).astype(np.uint8)
    if activation == "sigmoid":
        if p.shape[0] > 255:
            raise ValueError(f"{p.shape[0]} classes do not fit a uint8 label map")
        best = np.argmax(p, axis=0)
        best_p = np.take_along_axis(p, best[None], axis=0)[0]
        return np.where(best_p >= threshold, best + 1, 0).astype(np.uint8)
    raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}")
