"""Minimum eye volume and lenses inside the eyes (seed 001 §4.2.2.2)."""

from __future__ import annotations

import numpy as np

from clinseg.inference.anatomy import (
    AnatomySettings,
    apply_anatomy,
    remove_small_components,
)
from clinseg.io.image import Geometry

SHAPE = (24, 24, 48)
# 2 mm voxels: 0.008 ml each, so the seed's 4 ml minimum is 500 voxels.
GEO = Geometry(spacing=(2.0, 2.0, 2.0), shape=SHAPE)


def _ball(centre: tuple[int, int, int], r: int) -> np.ndarray:
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= r * r


def _case() -> dict[str, np.ndarray]:
    brain = np.ones(SHAPE, dtype=bool)  # box x 0..47, mid-plane 23.5
    eye = _ball((12, 12, 10), 6) | _ball((12, 12, 38), 6) | _ball((3, 3, 30), 2)  # 925, 925 and 33 voxels
    lens = _ball((12, 12, 10), 1) | _ball((12, 12, 38), 1)  # 7 voxels each, inside the eyes
    lens[12, 12, 1:4] = True  # outside the right eye (its voxels reach x = 4): removed
    lens[12, 12, 4] = True  # just inside: kept
    return {"Brain": brain, "Eye": eye, "Lens": lens}


def test_small_components_are_removed_by_volume() -> None:
    mask = np.zeros((5, 10, 30), dtype=bool)
    mask[:, :, 0:10] = True  # 500 voxels of 0.008 ml = 4.0 ml: kept
    mask[:, :, 12:21] = True
    mask[0, 0, 20] = False  # 449 voxels: removed
    out = remove_small_components(mask, min_volume_ml=4.0, voxel_volume_ml=0.008)
    assert out.sum() == 500 and out[:, :, 0:10].all()
    assert mask.sum() == 949  # input untouched


def test_a_tiny_false_eye_is_removed_and_the_real_eyes_kept() -> None:
    case = _case()
    out = apply_anatomy(case, None, GEO)
    assert GEO.voxel_volume_ml * 925 > 4.0 > GEO.voxel_volume_ml * 33  # 7.4 ml and 0.264 ml
    np.testing.assert_array_equal(out["Eye_R"], _ball((12, 12, 10), 6))
    np.testing.assert_array_equal(out["Eye_L"], _ball((12, 12, 38), 6))  # the false eye was on the left


def test_lens_voxels_outside_the_eyes_are_removed() -> None:
    out = apply_anatomy(_case(), None, GEO)
    expected_right = _ball((12, 12, 10), 1)
    expected_right[12, 12, 4] = True
    np.testing.assert_array_equal(out["Lens_R"], expected_right)
    np.testing.assert_array_equal(out["Lens_L"], _ball((12, 12, 38), 1))


def test_lenses_follow_the_post_processed_eyes() -> None:
    case = _case()
    case["Lens"] = case["Lens"] | _ball((3, 3, 30), 1)  # inside the false eye
    out = apply_anatomy(case, None, GEO)
    assert not out["Lens_L"][3, 3, 30]
    kept = apply_anatomy(case, None, GEO, settings=AnatomySettings(disabled=("eyes",)))
    assert kept["Lens_L"][3, 3, 30] and kept["Eye_L"][3, 3, 30]


def test_rules_switched_off_leave_eyes_and_lenses_as_predicted() -> None:
    case = _case()
    out = apply_anatomy(case, None, GEO, settings=AnatomySettings(disabled=("eyes", "lenses")))
    np.testing.assert_array_equal(out["Eye_L"] | out["Eye_R"], case["Eye"])
    np.testing.assert_array_equal(out["Lens_L"] | out["Lens_R"], case["Lens"])
    assert out["Eye_L"][3, 3, 30] and out["Lens_R"][12, 12, 1]
