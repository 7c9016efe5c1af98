"""Metrics of hand-built masks against values worked out by hand (spacing is (Z, Y, X) mm)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)

from clinseg.evaluation import METRIC_NAMES, metric_directions, structure_metrics
from clinseg.evaluation.metrics import _crop_to_joint_bbox


def _cube(shape: tuple[int, int, int], z: slice, y: slice, x: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[z, y, x] = True
    return mask


def test_keys_and_directions() -> None:
    ref = _cube((6, 6, 6), slice(1, 3), slice(1, 3), slice(1, 3))
    result = structure_metrics(ref, ref, (1.0, 1.0, 1.0))
    assert tuple(result) == METRIC_NAMES
    assert set(metric_directions) == set(METRIC_NAMES)
    assert metric_directions["dice"] == "higher" and metric_directions["hd95"] == "lower"
    assert result == {"dice": 1.0, "hd95": 0.0, "assd": 0.0, "surface_dice": 1.0, "sensitivity": 1.0,
                      "precision": 1.0, "volume_diff_ml": 0.0}


def test_dice_of_cubes_shifted_one_voxel() -> None:
    # Two 4x4x4 cubes (64 voxels each) shifted by 1 voxel along x overlap in 4*4*3 = 48 voxels:
    # dice = 2*48 / (64+64) = 0.75, sensitivity = precision = 48/64 = 0.75, same volume -> diff 0.
    ref = _cube((8, 8, 8), slice(2, 6), slice(2, 6), slice(2, 6))
    pred = _cube((8, 8, 8), slice(2, 6), slice(2, 6), slice(3, 7))
    result = structure_metrics(pred, ref, (3.0, 1.0, 1.0))
    assert result["dice"] == pytest.approx(0.75)
    assert result["sensitivity"] == pytest.approx(0.75)
    assert result["precision"] == pytest.approx(0.75)
    assert result["volume_diff_ml"] == 0.0


def test_counts_and_signed_volume_difference() -> None:
    # pred: 4x4x4 = 64 voxels; ref: its lower half, 2x4x4 = 32 voxels, all inside pred.
    # TP = 32 -> sensitivity 32/32 = 1, precision 32/64 = 0.5, dice 2*32/(64+32) = 2/3.
    # Voxel = 3 * 0.5 * 0.5 = 0.75 mm^3; difference 64-32 = 32 voxels = 24 mm^3 = 0.024 ml.
    pred = _cube((8, 8, 8), slice(2, 6), slice(2, 6), slice(2, 6))
    ref = _cube((8, 8, 8), slice(2, 4), slice(2, 6), slice(2, 6))
    spacing = (3.0, 0.5, 0.5)
    result = structure_metrics(pred, ref, spacing)
    assert result["sensitivity"] == pytest.approx(1.0)
    assert result["precision"] == pytest.approx(0.5)
    assert result["dice"] == pytest.approx(2 / 3)
    assert result["volume_diff_ml"] == pytest.approx(0.024)
    assert structure_metrics(ref, pred, spacing)["volume_diff_ml"] == pytest.approx(-0.024)


@pytest.mark.parametrize(
    ("axis", "spacing", "expected_mm"),
    [
        (0, (3.0, 1.0, 1.0), 3.0 * 2),  # planes 2 voxels apart along z at 3 mm -> 6 mm
        (0, (1.0, 1.0, 1.0), 1.0 * 2),  # same masks, isotropic 1 mm -> 2 mm: the spacing matters
        (2, (3.0, 1.0, 0.5), 0.5 * 2),  # planes 2 voxels apart along x at 0.5 mm -> 1 mm
    ],
)
def test_distances_between_parallel_planes(axis: int, spacing: tuple[float, float, float], expected_mm: float) -> None:
    # Single-voxel-thick planes: every voxel is a surface voxel and its nearest voxel on the other plane
    # lies straight across, so every surface distance (both directions) is 2 voxels * spacing[axis].
    # Hence hd95 = assd = that distance; surface dice is 0 below it and 1 at it (tolerance is <=).
    shape = (6, 5, 7)
    ref = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    index_ref = [slice(None)] * 3
    index_pred = [slice(None)] * 3
    index_ref[axis], index_pred[axis] = 2, 4
    ref[tuple(index_ref)] = True
    pred[tuple(index_pred)] = True
    below = structure_metrics(pred, ref, spacing, tolerance_mm=expected_mm - 0.1)
    at = structure_metrics(pred, ref, spacing, tolerance_mm=expected_mm)
    assert below["hd95"] == pytest.approx(expected_mm)
    assert below["assd"] == pytest.approx(expected_mm)
    assert below["surface_dice"] == 0.0
    assert at["surface_dice"] == pytest.approx(1.0)
    assert below["dice"] == 0.0


def test_hd95_ignores_one_outlier_voxel_but_assd_does_not() -> None:
    # ref: plane z=5 over 10x10 = 100 surface voxels. pred: the same plane plus one voxel at z=15.
    # pred->ref distances: 100 zeros and 10 voxels * 3 mm = 30 mm; ref->pred: 100 zeros.
    # hd95 = max(95th pct of [0]*100 + [30], 95th pct of [0]*100) = 0 (linear interpolation at
    # rank 0.95 * 100 = 95, a zero), whereas the plain maximum would be 30 mm.
    # assd = (30 + 0) / (101 + 100) = 30/201 mm; surface dice at 2 mm = (100 + 100) / 201.
    ref = np.zeros((20, 10, 10), dtype=bool)
    ref[5] = True
    pred = ref.copy()
    pred[15, 3, 4] = True
    result = structure_metrics(pred, ref, (3.0, 1.0, 1.0), tolerance_mm=2.0)
    assert result["hd95"] == pytest.approx(0.0)
    assert result["assd"] == pytest.approx(30 / 201, rel=1e-6)
    assert result["surface_dice"] == pytest.approx(200 / 201, rel=1e-6)


def test_both_empty_is_perfect_agreement() -> None:
    empty = np.zeros((5, 5, 5), dtype=bool)
    result = structure_metrics(empty, empty, (2.0, 1.0, 1.0))
    assert result["dice"] == 1.0
    assert result["hd95"] == 0.0
    assert result["assd"] == 0.0
    assert result["surface_dice"] == 1.0
    assert math.isnan(result["sensitivity"]) and math.isnan(result["precision"])
    assert result["volume_diff_ml"] == 0.0


def test_empty_prediction() -> None:
    # ref: 2x2x2 = 8 voxels of 2 mm^3 -> volume diff = -16 mm^3 = -0.016 ml.
    ref = _cube((5, 5, 5), slice(1, 3), slice(1, 3), slice(1, 3))
    result = structure_metrics(np.zeros_like(ref), ref, (2.0, 1.0, 1.0))
    assert result["dice"] == 0.0 and result["surface_dice"] == 0.0
    assert math.isnan(result["hd95"]) and math.isnan(result["assd"])
    assert result["sensitivity"] == 0.0
    assert math.isnan(result["precision"])
    assert result["volume_diff_ml"] == pytest.approx(-0.016)


def test_empty_reference() -> None:
    pred = _cube((5, 5, 5), slice(1, 3), slice(1, 3), slice(1, 3))
    result = structure_metrics(pred, np.zeros_like(pred), (2.0, 1.0, 1.0))
    assert result["dice"] == 0.0 and result["surface_dice"] == 0.0
    assert math.isnan(result["hd95"]) and math.isnan(result["assd"])
    assert math.isnan(result["sensitivity"])
    assert result["precision"] == 0.0
    assert result["volume_diff_ml"] == pytest.approx(0.016)


def _blobs(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Two irregular overlapping masks; ``ref`` touches the array border at x = 0."""
    zz, yy, xx = np.indices(shape)
    ref = ((zz - 6) ** 2 / 9 + (yy - 7) ** 2 / 16 + (xx - 2) ** 2 / 12) < 1.0
    pred = ((zz - 7) ** 2 / 6 + (yy - 6) ** 2 / 20 + (xx - 3) ** 2 / 10) < 1.0
    pred[12, 2, 5] = True  # a stray voxel
    return pred, ref


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
def test_crop_matches_monai_on_uncropped_arrays() -> None:
    pred, ref = _blobs((16, 14, 12))
    spacing = (2.5, 0.8, 1.2)
    result = structure_metrics(pred, ref, spacing, tolerance_mm=1.5)
    y_pred = torch.from_numpy(pred.astype(np.float32))[None, None]
    y = torch.from_numpy(ref.astype(np.float32))[None, None]
    kwargs = {"include_background": True, "spacing": spacing}
    assert result["hd95"] == pytest.approx(float(compute_hausdorff_distance(y_pred, y, percentile=95, **kwargs)))
    assert result["assd"] == pytest.approx(float(compute_average_surface_distance(y_pred, y, symmetric=True, **kwargs)))
    assert result["surface_dice"] == pytest.approx(float(compute_surface_dice(y_pred, y, [1.5], **kwargs)))


def test_results_do_not_depend_on_position_or_padding() -> None:
    pred, ref = _blobs((16, 14, 12))
    spacing = (2.5, 0.8, 1.2)
    big_pred = np.zeros((30, 25, 40), dtype=bool)
    big_ref = np.zeros_like(big_pred)
    big_pred[7:23, 5:19, 20:32] = pred
    big_ref[7:23, 5:19, 20:32] = ref
    assert structure_metrics(big_pred, big_ref, spacing) == pytest.approx(structure_metrics(pred, ref, spacing))


def test_crop_box_keeps_a_one_voxel_margin_clipped_at_the_border() -> None:
    pred = _cube((10, 10, 10), slice(3, 5), slice(0, 2), slice(4, 5))
    ref = _cube((10, 10, 10), slice(4, 7), slice(1, 3), slice(9, 10))
    cropped_pred, cropped_ref = _crop_to_joint_bbox(pred, ref)
    # union spans z 3..6, y 0..2, x 4..9 -> with margin z 2..7, y 0..3 (clipped), x 3..9 (clipped)
    assert cropped_pred.shape == cropped_ref.shape == (6, 4, 7)
    assert cropped_pred.sum() == pred.sum() and cropped_ref.sum() == ref.sum()


def test_integer_labels_are_read_as_nonzero_and_inputs_are_untouched() -> None:
    pred, ref = _blobs((16, 14, 12))
    pred_u8, ref_u8 = pred.astype(np.uint8) * 3, ref.astype(np.uint8)
    before = (pred_u8.copy(), ref_u8.copy())
    expected = structure_metrics(pred, ref, (1.0, 1.0, 1.0))
    assert structure_metrics(pred_u8, ref_u8, (1.0, 1.0, 1.0)) == pytest.approx(expected)
    assert np.array_equal(pred_u8, before[0]) and np.array_equal(ref_u8, before[1])


@pytest.mark.parametrize(
    ("pred_shape", "spacing", "tolerance"),
    [
        ((4, 4, 5), (1.0, 1.0, 1.0), 2.0),  # shape mismatch
        ((4, 4), (1.0, 1.0, 1.0), 2.0),  # not 3-D
        ((4, 4, 4), (1.0, 0.0, 1.0), 2.0),  # zero spacing
        ((4, 4, 4), (1.0, 1.0), 2.0),  # two spacings
        ((4, 4, 4), (1.0, 1.0, 1.0), -1.0),  # negative tolerance
    ],
)
def test_invalid_inputs_raise(pred_shape: tuple[int, ...], spacing: tuple[float, ...], tolerance: float) -> None:
    ref = np.ones((4, 4, 4), dtype=bool) if len(pred_shape) == 3 else np.ones((4, 4), dtype=bool)
    with pytest.raises(ValueError):
        structure_metrics(np.ones(pred_shape, dtype=bool), ref, spacing, tolerance)  # type: ignore[arg-type]
