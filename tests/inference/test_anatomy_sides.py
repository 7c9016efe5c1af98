"""Left/right assignment of bilateral organs from the brain's bounding box, in LPS world coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.inference.anatomy import (
    AnatomySettings,
    apply_anatomy,
    midline_x,
    split_at_midline,
    split_components,
)
from clinseg.inference.anatomy._geometry import ap_axis, to_world
from clinseg.io.image import Geometry

SHAPE = (6, 8, 40)
IDENTITY = Geometry(spacing=(1.0, 1.0, 1.0), shape=SHAPE)
# Array X runs towards the patient's right (world x decreases with the index).
FLIPPED = Geometry(spacing=(1.0, 1.0, 1.0), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1), shape=SHAPE)
KEEP_EYES = AnatomySettings(disabled=("eyes", "lenses", "optic_nerves"))


def _case() -> dict[str, np.ndarray]:
    brain = np.zeros(SHAPE, dtype=bool)
    brain[:, :, 20:40] = True  # off-centre head: box x 20..39, mid-plane at 29.5 (the grid's centre is 19.5)
    eye = np.zeros(SHAPE, dtype=bool)
    eye[2:4, 2:4, 24:26] = True  # barycentre x 24.5: nearer the box's x = 20 end
    eye[2:4, 2:4, 34:37] = True  # barycentre x 35: nearer the x = 39 end
    return {"Brain": brain, "Eye": eye}


def test_world_coordinates_follow_itk() -> None:
    geo = Geometry(spacing=(2.0, 3.0, 4.0), origin=(10.0, 20.0, 30.0), direction=(0, 1, 0, -1, 0, 0, 0, 0, 1))
    # index (z, y, x) = (1, 2, 3): spacing * (x, y, z) = (6, 6, 4); direction @ that = (6, -6, 4)
    np.testing.assert_allclose(to_world(np.array([[1, 2, 3]]), geo), [[16.0, 14.0, 34.0]])
    assert ap_axis(geo) == 2  # array X runs along world -y
    assert ap_axis(IDENTITY) == 1


def test_a_component_goes_to_the_side_of_the_nearer_box_end() -> None:
    out = apply_anatomy(_case(), None, IDENTITY, settings=KEEP_EYES)
    assert sorted(out) == ["Brain", "Eye_L", "Eye_R"]
    # LPS: +x is the patient's left, so the component at the high-x end of the box is the left eye.
    assert set(np.nonzero(out["Eye_L"])[2]) == {34, 35, 36}
    assert set(np.nonzero(out["Eye_R"])[2]) == {24, 25}


def test_a_flipped_direction_flips_the_answer() -> None:
    out = apply_anatomy(_case(), None, FLIPPED, settings=KEEP_EYES)
    assert set(np.nonzero(out["Eye_L"])[2]) == {24, 25}
    assert set(np.nonzero(out["Eye_R"])[2]) == {34, 35, 36}


def test_left_right_along_another_array_axis() -> None:
    # Array Y runs along world x (patient left), array X along world y: the split is along array Y.
    geo = Geometry(spacing=(1.0, 1.0, 1.0), direction=(0, 1, 0, 1, 0, 0, 0, 0, 1), shape=(4, 10, 6))
    brain = np.ones((4, 10, 6), dtype=bool)
    eye = np.zeros((4, 10, 6), dtype=bool)
    eye[1:3, 1:3, 4] = True
    eye[1:3, 7:9, 1] = True
    left, right = split_components(eye, geo, midline_x(brain, None, geo, (4, 10, 6)))
    assert set(np.nonzero(left)[1]) == {7, 8} and set(np.nonzero(right)[1]) == {1, 2}


def test_a_component_across_the_midline_goes_whole_to_one_side() -> None:
    mask = np.zeros((1, 1, 10), dtype=bool)
    mask[0, 0, 3:8] = True  # barycentre x 5 >= midline 4.5: left
    geo = Geometry(spacing=(1.0, 1.0, 1.0), shape=(1, 1, 10))
    left, right = split_components(mask, geo, 4.5)
    np.testing.assert_array_equal(left, mask)
    assert not right.any()
    left, right = split_at_midline(mask, geo, 4.5)
    assert np.nonzero(left)[2].tolist() == [5, 6, 7] and np.nonzero(right)[2].tolist() == [3, 4]


def test_midline_fallbacks() -> None:
    geo = Geometry(spacing=(2.0, 1.0, 1.0), origin=(-10.0, 0.0, 0.0), shape=(2, 2, 10))
    brain = np.zeros((2, 2, 10), dtype=bool)
    brain[0, 0, 2:5] = True  # x from -6 to -2 mm
    image = np.zeros((2, 2, 10))
    image[1, 1, 6:10] = 5.0  # foreground x from 2 to 8 mm
    assert midline_x(brain, image, geo, (2, 2, 10)) == pytest.approx(-4.0)
    assert midline_x(None, image, geo, (2, 2, 10)) == pytest.approx(5.0)
    assert midline_x(None, np.zeros((2, 2, 10)), geo, (2, 2, 10)) == pytest.approx(-1.0)  # index 4.5 of 0..9
    assert midline_x(np.zeros((2, 2, 10), bool), None, geo, (2, 2, 10)) == pytest.approx(-1.0)


def test_without_brain_the_image_foreground_gives_the_midline() -> None:
    case = _case()
    image = case.pop("Brain").astype(np.float32)  # the same box as foreground
    out = apply_anatomy(case, image, IDENTITY, settings=KEEP_EYES)
    assert sorted(out) == ["Eye_L", "Eye_R"]
    assert set(np.nonzero(out["Eye_R"])[2]) == {24, 25}


def test_sides_disabled_splits_voxel_wise_at_the_midplane() -> None:
    case = _case()
    case["Eye"][2:4, 2:4, 27:32] = True  # a third component across the mid-plane x = 29.5
    on = apply_anatomy(case, None, IDENTITY, settings=KEEP_EYES)
    assert set(np.nonzero(on["Eye_R"])[2]) == {24, 25, 27, 28, 29, 30, 31}  # its barycentre x = 29: right
    off = apply_anatomy(case, None, IDENTITY, settings=AnatomySettings(disabled=(*KEEP_EYES.disabled, "sides")))
    assert set(np.nonzero(off["Eye_R"])[2]) == {24, 25, 27, 28, 29}
    assert set(np.nonzero(off["Eye_L"])[2]) == {30, 31, 34, 35, 36}
    np.testing.assert_array_equal(off["Eye_L"] | off["Eye_R"], case["Eye"])
    assert not (off["Eye_L"] & off["Eye_R"]).any()
