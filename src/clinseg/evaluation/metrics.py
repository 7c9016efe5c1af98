"""Overlap, distance and volume metrics of one segmented structure against its reference.

Masks are boolean ``(Z, Y, X)`` arrays; spacing is in mm in the same array order ``(Z, Y, X)``
(``Geometry.spacing_zyx``). Distances are in mm, volumes in ml (cm³).

The distance metrics are MONAI's (:func:`monai.metrics.compute_hausdorff_distance`,
:func:`monai.metrics.compute_average_surface_distance`, :func:`monai.metrics.compute_surface_dice`),
computed on surface voxels (the mask minus its 6-connected erosion, voxels on the image border count as
surface). Both masks are cropped to their joint bounding box plus a 1-voxel margin first: everything
outside it is background in both masks, so the surfaces and distances are unchanged and the distance
computation only touches the region around the structure.

Edge-case conventions (also in :func:`structure_metrics`):

=====================  ==========  ===========  ==============  ============  ===========
case                   dice        hd95 / assd  surface_dice    sensitivity   precision
=====================  ==========  ===========  ==============  ============  ===========
both empty             1.0         0.0          1.0             NaN           NaN
ref empty, pred not    0.0         NaN          0.0             NaN           0.0
pred empty, ref not    0.0         NaN          0.0             0.0           NaN
=====================  ==========  ===========  ==============  ============  ===========

NaN means *undefined* (no surface to measure a distance to, or a ratio with a zero denominator); it is
never replaced by a number here, so a summary can decide how to treat it.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)

#: The metrics :func:`structure_metrics` returns, in this order.
METRIC_NAMES: tuple[str, ...] = (
    "dice",
    "hd95",
    "assd",
    "surface_dice",
    "sensitivity",
    "precision",
    "volume_diff_ml",
)

Direction = Literal["higher", "lower", "closer_to_zero"]

#: Which way is better for each metric, for reports: ``"higher"`` (overlaps, in [0, 1]), ``"lower"``
#: (distances in mm, >= 0) or ``"closer_to_zero"`` (the signed volume difference; compare ``abs``).
metric_directions: dict[str, Direction] = {
    "dice": "higher",
    "hd95": "lower",
    "assd": "lower",
    "surface_dice": "higher",
    "sensitivity": "higher",
    "precision": "higher",
    "volume_diff_ml": "closer_to_zero",
}

_NAN = float("nan")


def structure_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    tolerance_mm: float = 2.0,
) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` for one structure in one case.

    Parameters
    ----------
    pred : np.ndarray
        Predicted mask, ``(Z, Y, X)``, boolean (any other dtype is read as ``!= 0``). Not modified.
    ref : np.ndarray
        Reference mask, same shape as ``pred``.
    spacing_zyx : tuple of 3 floats
        Voxel size in mm in array order ``(Z, Y, X)``; anisotropic spacing is honoured by every distance.
    tolerance_mm : float
        Surface-dice tolerance in mm: a surface voxel counts as correct when its distance to the other
        surface is ``<= tolerance_mm``.

    Returns
    -------
    dict[str, float]
        Keys :data:`METRIC_NAMES`, in that order:

        - ``dice``: ``2 |P ∩ R| / (|P| + |R|)``.
        - ``hd95``: 95th-percentile Hausdorff distance in mm, MONAI's definition: the larger of the two
          directed 95th percentiles (pred→ref and ref→pred surface distances, linear interpolation).
        - ``assd``: average symmetric surface distance in mm: the mean of the pred→ref and ref→pred surface
          distances pooled together (each surface voxel counts once).
        - ``surface_dice``: normalised surface dice at ``tolerance_mm``: the fraction of surface voxels of
          both masks within the tolerance of the other surface.
        - ``sensitivity``: ``|P ∩ R| / |R|``; ``precision``: ``|P ∩ R| / |P|``.
        - ``volume_diff_ml``: ``(|P| - |R|) * voxel volume`` in ml, signed (positive = over-segmentation).

        Edge cases: both masks empty gives dice 1.0, hd95 and assd 0.0, surface_dice 1.0 (perfect
        agreement that the structure is absent); exactly one empty gives dice 0.0, surface_dice 0.0 and
        hd95/assd NaN (undefined: there is no surface to measure to). Sensitivity is NaN when ``ref`` is
        empty and precision is NaN when ``pred`` is empty.

    Raises
    ------
    ValueError
        If the masks are not 3-D or differ in shape, or the spacing or tolerance is not valid.

    Examples
    --------
    >>> ref = np.zeros((8, 8, 8), bool); ref[2:6, 2:6, 2:6] = True
    >>> pred = np.zeros_like(ref); pred[2:6, 2:6, 3:7] = True   # shifted one voxel along x
    >>> structure_metrics(pred, ref, (3.0, 1.0, 1.0))["dice"]    # 2 * 48 / (64 + 64)
    0.75
    """
    pred_b, ref_b = _as_bool(pred, "pred"), _as_bool(ref, "ref")
    if pred_b.ndim != 3 or pred_b.shape != ref_b.shape:
        shapes = f"{pred_b.shape} and {ref_b.shape}"
        raise ValueError(f"pred and ref must be 3-D (Z, Y, X) arrays of one shape, got {shapes}")
    spacing = _check_spacing(spacing_zyx)
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm}")

    n_pred = int(np.count_nonzero(pred_b))
    n_ref = int(np.count_nonzero(ref_b))
    n_both = int(np.count_nonzero(pred_b & ref_b))
    voxel_ml = float(np.prod(spacing)) / 1000.0

    result: dict[str, float] = {
        "dice": 1.0 if n_pred + n_ref == 0 else 2.0 * n_both / (n_pred + n_ref),
        "sensitivity": n_both / n_ref if n_ref else _NAN,
        "precision": n_both / n_pred if n_pred else _NAN,
        "volume_diff_ml": (n_pred - n_ref) * voxel_ml,
    }
    if n_pred == 0 and n_ref == 0:
        result.update(hd95=0.0, assd=0.0, surface_dice=1.0)
    elif n_pred == 0 or n_ref == 0:
        result.update(hd95=_NAN, assd=_NAN, surface_dice=0.0)
    else:
        result.update(_surface_metrics(*_crop_to_joint_bbox(pred_b, ref_b), spacing, tolerance_mm))
    return {name: float(result[name]) for name in METRIC_NAMES}


def _crop_to_joint_bbox(pred: np.ndarray, ref: np.ndarray, margin: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Crop two same-shape masks to the bounding box of their union, grown by ``margin`` voxels.

    The margin is clipped at the array border. Returns views of the inputs (not copies); when both
    masks are empty they are returned unchanged.

    Parameters
    ----------
    pred, ref : np.ndarray
        Boolean masks, ``(Z, Y, X)`` (any number of dimensions works), same shape.
    margin : int
        Voxels of background kept around the union on every side.

    Returns
    -------
    tuple of np.ndarray
        The cropped ``pred`` and ``ref``, same shape as each other.
    """
    union = pred | ref
    if not union.any():
        return pred, ref
    slices = []
    for axis in range(union.ndim):
        other_axes = tuple(a for a in range(union.ndim) if a != axis)
        hits = np.flatnonzero(union.any(axis=other_axes))
        start = max(int(hits[0]) - margin, 0)
        stop = min(int(hits[-1]) + 1 + margin, union.shape[axis])
        slices.append(slice(start, stop))
    box = tuple(slices)
    return pred[box], ref[box]


def _surface_metrics(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, float, float], tolerance_mm: float
) -> dict[str, float]:
    """hd95, assd and surface_dice through MONAI for two non-empty masks (single-channel one-hot)."""
    y_pred = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32))[None, None]
    with warnings.catch_warnings():
        # MONAI 1.5-1.6 warns about its own internal use of a deprecated argument on every call.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        hd95 = compute_hausdorff_distance(y_pred, y, include_background=True, percentile=95, spacing=spacing)
        assd = compute_average_surface_distance(y_pred, y, include_background=True, symmetric=True, spacing=spacing)
        nsd = compute_surface_dice(y_pred, y, class_thresholds=[tolerance_mm], include_background=True, spacing=spacing)
    return {"hd95": float(hd95[0, 0]), "assd": float(assd[0, 0]), "surface_dice": float(nsd[0, 0])}


def _as_bool(mask: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a boolean or numeric array, got dtype {array.dtype}")
    return array != 0


def _check_spacing(spacing_zyx: tuple[float, float, float]) -> tuple[float, float, float]:
    values = tuple(float(s) for s in spacing_zyx)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing_zyx must be 3 finite positive numbers in mm (Z, Y, X), got {spacing_zyx}")
    return values  # type: ignore[return-value]
