"""Majority vote of several models' organ masks."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.inference.anatomy import majority_vote


def _m(*values: int) -> np.ndarray:
    return np.array(values, dtype=bool).reshape(1, 1, -1)


def test_two_of_three_models_decide() -> None:
    axial = {"Eye": _m(1, 1, 1, 0, 0), "Brain": _m(1, 0, 0, 0, 1)}
    coronal = {"Eye": _m(1, 1, 0, 1, 0), "Brain": _m(1, 1, 0, 0, 0)}
    sagittal = {"Eye": _m(1, 0, 0, 1, 0), "Brain": _m(0, 1, 0, 0, 0)}
    voted = majority_vote([axial, coronal, sagittal])
    assert list(voted) == ["Eye", "Brain"]
    assert voted["Eye"].dtype == bool
    np.testing.assert_array_equal(voted["Eye"], _m(1, 1, 0, 1, 0))  # votes 3, 2, 1, 2, 0
    np.testing.assert_array_equal(voted["Brain"], _m(1, 1, 0, 0, 0))  # votes 2, 2, 0, 0, 1


def test_more_than_half_is_needed() -> None:
    a, b = {"Eye": _m(1, 1)}, {"Eye": _m(1, 0)}
    np.testing.assert_array_equal(majority_vote([a, b])["Eye"], _m(1, 0))  # 1 of 2 is not a majority
    four = [{"Eye": _m(1, 1)}, {"Eye": _m(1, 1)}, {"Eye": _m(1, 0)}, {"Eye": _m(0, 0)}]
    np.testing.assert_array_equal(majority_vote(four)["Eye"], _m(1, 0))  # 3 of 4 and 2 of 4
    np.testing.assert_array_equal(majority_vote([{"Eye": _m(0, 1)}])["Eye"], _m(0, 1))


def test_a_missing_organ_votes_negative() -> None:
    sets = [{"Eye": _m(1, 1), "Lens": _m(1, 1)}, {"Eye": _m(1, 1), "Lens": _m(1, 0)}, {"Eye": _m(0, 1)}]
    voted = majority_vote(sets)
    np.testing.assert_array_equal(voted["Lens"], _m(1, 0))
    np.testing.assert_array_equal(voted["Eye"], _m(1, 1))


def test_inputs_are_not_modified_and_bad_inputs_raise() -> None:
    a = {"Eye": _m(1, 0).astype(np.uint8)}
    before = a["Eye"].copy()
    majority_vote([a, a, {"Eye": _m(0, 0)}])
    np.testing.assert_array_equal(a["Eye"], before)
    with pytest.raises(ValueError, match="different shapes"):
        majority_vote([{"Eye": _m(1, 0)}, {"Eye": _m(1, 0, 0)}])
    with pytest.raises(ValueError, match="at least one"):
        majority_vote([])
