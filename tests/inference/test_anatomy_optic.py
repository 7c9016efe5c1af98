"""Optic chiasm and optic nerves rebuilt between eye and chiasm (seed 001 §4.2.2.2).

The hand-built visual system (1 mm voxels, identity direction: array Y is antero-posterior, array X runs to the
patient's left): eyes are balls of radius 4 at x = 14 (right) and x = 25 (left); the true nerves are 3x3 tubes
along y at (z, x) = (10, 14) and (10, 25) from the eyes to the chiasm (y 34..37, x 12..27). The prediction of
the right nerve has a gap at y 18..23; the left one has a one-voxel-thick false branch at (z, y) = (10, 16),
x 27..34, lying in bright fat (image 300; anatomy 100).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from clinseg.inference.anatomy import (
    AnatomySettings,
    apply_anatomy,
    closest_barycentre,
    open_1d,
    remove_fat,
)
from clinseg.inference.anatomy._components import label
from clinseg.inference.anatomy._paths import (
    straight_line,
    trace_centreline,
    within_radius,
)
from clinseg.io.image import Geometry

SHAPE = (20, 44, 40)
GEO = Geometry(spacing=(1.0, 1.0, 1.0), shape=SHAPE)
BASE = AnatomySettings(min_eye_volume_ml=0.1)  # the eyes here are 0.257 ml
RIGHT_TUBE = (slice(9, 12), slice(11, 36), slice(13, 16))  # the expected rebuilt nerves
LEFT_TUBE = (slice(9, 12), slice(10, 36), slice(24, 27))


def _ball(centre: tuple[int, int, int], r: int) -> np.ndarray:
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= r * r


def _box(z: tuple[int, int], y: tuple[int, int], x: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[z[0] : z[1] + 1, y[0] : y[1] + 1, x[0] : x[1] + 1] = True
    return mask


def _tube(index: tuple[slice, slice, slice]) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[index] = True
    return mask


def visual_system() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Organ masks (Brain, Eye, OpticNrv, OpticChiasm) and the T1 image of the module docstring."""
    eye = _ball((10, 6, 14), 4) | _ball((10, 5, 25), 4)  # the left eye sits 1 mm more anterior
    true_nerves = _box((9, 11), (11, 33), (13, 15)) | _box((9, 11), (10, 33), (24, 26))
    nerve = true_nerves.copy()
    nerve[:, 18:24, 13:16] = False
    nerve |= _box((10, 10), (16, 16), (27, 34))
    chiasm = _box((9, 11), (34, 37), (12, 27))
    brain = _box((0, 19), (30, 43), (0, 39))  # mid-plane x = 19.5
    image = np.full(SHAPE, 300.0)
    image[eye | true_nerves | chiasm | brain] = 100.0
    return {"Brain": brain, "Eye": eye, "OpticNrv": nerve, "OpticChiasm": chiasm}, image


def test_chiasm_keeps_its_largest_component() -> None:
    masks, image = visual_system()
    masks["OpticChiasm"] = masks["OpticChiasm"] | _box((2, 3), (40, 41), (30, 31))  # 8 voxels vs 192
    out = apply_anatomy(masks, image, GEO, settings=BASE)
    np.testing.assert_array_equal(out["OpticChiasm"], _box((9, 11), (34, 37), (12, 27)))
    off = apply_anatomy(masks, image, GEO, settings=AnatomySettings(min_eye_volume_ml=0.1, disabled=("chiasm",)))
    np.testing.assert_array_equal(off["OpticChiasm"], masks["OpticChiasm"])


def test_a_nerve_with_a_gap_is_reconnected_between_eye_and_chiasm() -> None:
    masks, image = visual_system()
    out = apply_anatomy(masks, image, GEO, settings=BASE)
    right = out["OpticNrv_R"]
    # Centreline: straight along y at (z, x) = (10, 14) from the eye landmark (y 12) to the chiasm landmark (y 34);
    # everything within R1 = 1.75 mm of it is nerve (a 3x3 cross-section), so the gap is bridged and the tube
    # reaches y 35; beyond R1 only predicted voxels are kept, which adds y 11.
    np.testing.assert_array_equal(right, _tube(RIGHT_TUBE))
    assert label(right)[1] == 1
    assert (ndi.binary_dilation(right) & out["Eye_R"]).any()  # touches the right eye
    assert (right & out["OpticChiasm"]).any()  # and enters the chiasm
    assert not (right & out["Eye_L"]).any()


def test_a_bright_false_branch_is_removed() -> None:
    masks, image = visual_system()
    fat_only = AnatomySettings(min_eye_volume_ml=0.1, nerve_opening=False)
    np.testing.assert_array_equal(apply_anatomy(masks, image, GEO, settings=fat_only)["OpticNrv_L"], _tube(LEFT_TUBE))
    neither = AnatomySettings(min_eye_volume_ml=0.1, nerve_opening=False, fat_refinement=False)
    kept = apply_anatomy(masks, image, GEO, settings=neither)["OpticNrv_L"]
    # Without the fat rule, branch voxels within R (about 4.4 voxels at y 16) of the centreline stay.
    np.testing.assert_array_equal(kept[10, 16, 27:35], [1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(kept, _tube(LEFT_TUBE) | _box((10, 10), (16, 16), (27, 29)))
    opening_only = AnatomySettings(min_eye_volume_ml=0.1, fat_refinement=False)
    opened = apply_anatomy(masks, image, GEO, settings=opening_only)["OpticNrv_L"]
    np.testing.assert_array_equal(opened, _tube(LEFT_TUBE))  # the one-voxel-thick branch does not survive
    np.testing.assert_array_equal(apply_anatomy(masks, image, GEO, settings=BASE)["OpticNrv_L"], _tube(LEFT_TUBE))


def test_without_image_the_fat_rule_is_skipped() -> None:
    masks, _ = visual_system()
    out = apply_anatomy(masks, None, GEO, settings=AnatomySettings(min_eye_volume_ml=0.1, nerve_opening=False))
    assert out["OpticNrv_L"][10, 16, 27:30].all()


def test_nerve_rule_switched_off_only_splits_the_nerves() -> None:
    masks, image = visual_system()
    out = apply_anatomy(masks, image, GEO, settings=AnatomySettings(min_eye_volume_ml=0.1, disabled=("optic_nerves",)))
    np.testing.assert_array_equal(out["OpticNrv_R"], masks["OpticNrv"] & (np.arange(40) < 20))
    np.testing.assert_array_equal(out["OpticNrv_L"], masks["OpticNrv"] & (np.arange(40) >= 20))


def test_close_chiasm_landmarks_rebuild_only_the_nerve_of_the_nearest_eye() -> None:
    masks, image = visual_system()
    # Chiasm landmarks at x ~ 14 and ~ 25 (11 mm apart) count as "close" under a 20 mm threshold; their mean
    # (x ~ 19.5, y ~ 34.5) is nearer the right eye (whose surface reaches y 10) than the left (y 9).
    settings = AnatomySettings(min_eye_volume_ml=0.1, min_chiasm_landmark_distance_mm=20.0)
    out = apply_anatomy(masks, image, GEO, settings=settings)
    np.testing.assert_array_equal(out["OpticNrv_L"], masks["OpticNrv"] & (np.arange(40) >= 20))  # as predicted
    right = out["OpticNrv_R"]
    assert label(right)[1] == 1 and right[:, 20, :].any()  # reconnected across the gap
    assert (ndi.binary_dilation(right) & out["Eye_R"]).any() and (right & out["OpticChiasm"]).any()
    assert np.argwhere(right[:, 34])[:, 1].mean() > 16  # and bent towards the merged landmark


def test_a_permuted_direction_gives_the_same_nerves() -> None:
    # Swap array axes Y and X: array X is now antero-posterior and array Y the patient's left-right axis.
    masks, image = visual_system()
    swap = lambda a: np.ascontiguousarray(np.swapaxes(a, 1, 2))
    geo = Geometry(spacing=(1.0, 1.0, 1.0), direction=(0, 1, 0, 1, 0, 0, 0, 0, 1), shape=(20, 40, 44))
    out = apply_anatomy({k: swap(v) for k, v in masks.items()}, swap(image), geo, settings=BASE)
    np.testing.assert_array_equal(out["OpticNrv_R"], swap(_tube(RIGHT_TUBE)))
    np.testing.assert_array_equal(out["OpticNrv_L"], swap(_tube(LEFT_TUBE)))


def test_closest_barycentre_averages_the_nearest_voxels() -> None:
    candidates = np.zeros((1, 1, 10), dtype=bool)
    candidates[0, 0, [2, 3, 4, 8]] = True
    reference = np.zeros((1, 1, 10), dtype=bool)
    reference[0, 0, 0] = True
    spacing = np.array([1.0, 1.0, 0.5])
    np.testing.assert_allclose(closest_barycentre(candidates, reference, 2, spacing), [0.0, 0.0, 2.5])
    np.testing.assert_allclose(closest_barycentre(candidates, reference, 30, spacing), [0.0, 0.0, 4.25])
    assert closest_barycentre(candidates, np.zeros_like(reference), 2, spacing) is None


def test_remove_fat_uses_the_percentile_around_the_landmark() -> None:
    image = np.full((1, 1, 40), 100.0)
    image[0, 0, 0:10] = 500.0  # outside the box: ignored
    image[0, 0, 25] = 300.0  # 1 of the 11 box voxels (x 15..25) -> 98th percentile 280, threshold 224
    nerve = np.zeros((1, 1, 40), dtype=bool)
    nerve[0, 0, [5, 20, 25, 30]] = True
    out = remove_fat(nerve, image, np.array([0.0, 0.0, 20.0]), np.ones(3), 5.0, 98.0, 0.8)
    assert np.nonzero(out)[2].tolist() == [20, 30]
    assert nerve[0, 0, 25]  # input untouched
    dark = remove_fat(nerve, np.zeros_like(image), np.array([0.0, 0.0, 20.0]), np.ones(3), 5.0, 98.0, 0.8)
    np.testing.assert_array_equal(dark, nerve)


def test_open_1d_needs_two_voxels_along_every_axis() -> None:
    mask = np.zeros((6, 6, 8), dtype=bool)
    mask[1:3, 1:3, 1:3] = True  # 2x2x2: kept
    mask[1, 1, 3:7] = True  # a line along x attached to it: removed
    mask[4, 4, 4] = True  # an isolated voxel: removed
    expected = np.zeros_like(mask)
    expected[1:3, 1:3, 1:3] = True
    np.testing.assert_array_equal(open_1d(mask), expected)


def _path_options(radius: float, margin: tuple[int, int, int]) -> dict:
    """Keyword arguments of trace_centreline: 1 mm voxels, AP along array Y, constant R, the seed's costs."""
    return {
        "ap_axis": 1,
        "spacing_zyx": (1.0, 1.0, 1.0),
        "voxel_mm": 1.0,
        "radius_start": radius,
        "radius_target": radius,
        "label_penalty": 100.0,
        "target_cost": 0.001,
        "margin": margin,
    }


def test_centreline_follows_the_prediction_and_goes_straight_through_gaps() -> None:
    positive = np.zeros((9, 12, 9), dtype=bool)
    positive[4, 0:6, 2] = True  # predicted at x = 2 for y 0..5, then nothing
    kwargs = _path_options(radius=3.0, margin=(2, 0, 2))
    path = trace_centreline(positive, (4, 0, 2), (4, 11, 6), **kwargs)
    assert path[:, 1].tolist() == list(range(12))  # one point per AP slice
    assert path[:6, 2].tolist() == [2] * 6  # on the prediction while there is one
    assert path[6:, 2].tolist() == [3, 4, 5, 6, 6, 6]  # then straight towards the target
    assert (path[:, 0] == 4).all()
    reverse = trace_centreline(positive, (4, 5, 2), (4, 0, 2), **kwargs)
    assert reverse.tolist() == [[4, y, 2] for y in (5, 4, 3, 2, 1, 0)]


def test_an_unreachable_target_is_joined_by_a_straight_segment() -> None:
    positive = np.zeros((3, 4, 12), dtype=bool)
    kwargs = _path_options(radius=2.0, margin=(1, 0, 1))
    path = trace_centreline(positive, (1, 0, 0), (1, 3, 8), **kwargs)
    assert path[0].tolist() == [1, 0, 0] and path[3].tolist() == [1, 3, 3] and path[-1].tolist() == [1, 3, 8]
    assert path[3:, 2].tolist() == [3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(
        straight_line((0, 0, 0), (0, 2, 4)), [[0, 0, 0], [0, 0, 1], [0, 1, 2], [0, 2, 3], [0, 2, 4]]
    )


def test_within_radius_uses_mm() -> None:
    out = within_radius(np.array([[2, 2, 2]]), np.array([1.5]), (5, 5, 5), (2.0, 1.0, 1.0))
    # 2 mm slices: no neighbour in z; in-plane the 3x3 square (corner at sqrt(2) mm <= 1.5)
    assert out.sum() == 9 and out[2, 1:4, 1:4].all()
    with pytest.raises(ValueError):
        within_radius(np.array([[2, 2, 2]]), np.array([1.0, 2.0]), (5, 5, 5), (1.0, 1.0, 1.0))
