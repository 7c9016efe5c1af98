"""The whole anatomy post-processing: rule order, switches, majority vote, untouched inputs."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.inference.anatomy import (
    AnatomyRoles,
    AnatomySettings,
    apply_anatomy,
    list_rules,
    majority_vote,
    postprocess_case,
)
from clinseg.io.image import Geometry
from tests.inference.test_anatomy_optic import (
    GEO,
    LEFT_TUBE,
    RIGHT_TUBE,
    SHAPE,
    _ball,
    _box,
    _tube,
    visual_system,
)

BASE = AnatomySettings(min_eye_volume_ml=0.1)
LEFT = np.arange(SHAPE[2]) >= 20  # voxels at world x >= 19.5, the brain's mid-plane


def head() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The visual system plus a brain hole, a false eye, a stray lens voxel, a second chiasm piece, hippocampi."""
    masks, image = visual_system()
    masks["Brain"] = masks["Brain"].copy()
    masks["Brain"][10, 40, 5] = False  # enclosed in every plane
    masks["Eye"] = masks["Eye"] | _ball((3, 30, 32), 1)  # 7 voxels = 0.007 ml, on the left
    masks["Lens"] = _ball((10, 6, 14), 1) | _ball((10, 5, 25), 1) | _box((2, 2), (2, 2), (2, 2))
    masks["OpticChiasm"] = masks["OpticChiasm"] | _box((2, 3), (40, 41), (30, 31))
    masks["Hippocampus"] = _box((4, 6), (36, 40), (6, 9)) | _box((4, 6), (36, 40), (30, 33))
    masks["Brainstem"] = _box((2, 8), (38, 42), (18, 21))
    return masks, image


def _expected() -> dict[str, np.ndarray]:
    brain = _box((0, 19), (30, 43), (0, 39))
    return {
        "Brain": brain,
        "Brainstem": _box((2, 8), (38, 42), (18, 21)),
        "Eye_R": _ball((10, 6, 14), 4),
        "Eye_L": _ball((10, 5, 25), 4),
        "Lens_R": _ball((10, 6, 14), 1),
        "Lens_L": _ball((10, 5, 25), 1),
        "OpticChiasm": _box((9, 11), (34, 37), (12, 27)),
        "OpticNrv_R": _tube(RIGHT_TUBE),
        "OpticNrv_L": _tube(LEFT_TUBE),
        "Hippocampus_R": _box((4, 6), (36, 40), (6, 9)),
        "Hippocampus_L": _box((4, 6), (36, 40), (30, 33)),
    }


def test_every_rule_applied() -> None:
    masks, image = head()
    out = apply_anatomy(masks, image, GEO, settings=BASE)
    expected = _expected()
    assert sorted(out) == sorted(expected)
    for name, mask in expected.items():
        assert out[name].dtype == bool, name
        np.testing.assert_array_equal(out[name], mask, err_msg=name)


def test_inputs_are_not_modified() -> None:
    masks, image = head()
    copies = {k: v.copy() for k, v in masks.items()}
    image_copy = image.copy()
    out = apply_anatomy(masks, image, GEO, settings=BASE)
    for name, mask in copies.items():
        np.testing.assert_array_equal(masks[name], mask, err_msg=name)
    np.testing.assert_array_equal(image, image_copy)
    assert all(not np.shares_memory(out[n], masks[n]) for n in out if n in masks)


# Rule -> the input organ it changes and its output structures.
_ORGANS = {
    "brain_holes": ("Brain", ("Brain",)),
    "eyes": ("Eye", ("Eye_L", "Eye_R")),
    "lenses": ("Lens", ("Lens_L", "Lens_R")),
    "chiasm": ("OpticChiasm", ("OpticChiasm",)),
    "optic_nerves": ("OpticNrv", ("OpticNrv_L", "OpticNrv_R")),
}


@pytest.mark.parametrize("rule", sorted(_ORGANS))
def test_a_rule_switched_off_leaves_its_organ_as_predicted(rule: str) -> None:
    masks, image = head()
    organ, structures = _ORGANS[rule]
    settings = AnatomySettings(min_eye_volume_ml=0.1, disabled=(rule,))
    if rule == "eyes":  # the lens rule would follow the unfiltered eyes: keep the comparison to one rule
        settings = AnatomySettings(min_eye_volume_ml=0.1, disabled=(rule, "lenses"))
    out = apply_anatomy(masks, image, GEO, settings=settings)
    if len(structures) == 1:
        np.testing.assert_array_equal(out[organ], masks[organ])
    else:  # split by components: here every component lies on one side of the mid-plane
        np.testing.assert_array_equal(out[structures[0]], masks[organ] & LEFT)
        np.testing.assert_array_equal(out[structures[1]], masks[organ] & ~LEFT)
    expected = _expected()
    for name in set(expected) - set(structures) - ({"Lens_L", "Lens_R"} if rule == "eyes" else set()):
        np.testing.assert_array_equal(out[name], expected[name], err_msg=name)


def test_every_rule_can_be_switched_off() -> None:
    masks, image = head()
    out = apply_anatomy(masks, image, GEO, settings=AnatomySettings(disabled=tuple(list_rules())))
    for organ, (left, right) in AnatomyRoles().bilateral.items():
        np.testing.assert_array_equal(out[left], masks[organ] & LEFT)
        np.testing.assert_array_equal(out[right], masks[organ] & ~LEFT)
    for organ in ("Brain", "Brainstem", "OpticChiasm"):
        np.testing.assert_array_equal(out[organ], masks[organ])


def test_missing_organs_skip_their_rules() -> None:
    masks, image = head()
    only = {k: masks[k] for k in ("Eye", "OpticNrv")}  # no brain, no chiasm: nerves stay as predicted
    out = apply_anatomy(only, image, GEO, settings=BASE)
    assert sorted(out) == ["Eye_L", "Eye_R", "OpticNrv_L", "OpticNrv_R"]
    # Without a brain the midline comes from the image foreground (all of it): x = 19.5 again.
    np.testing.assert_array_equal(out["OpticNrv_L"], masks["OpticNrv"] & LEFT)
    np.testing.assert_array_equal(out["Eye_L"], _ball((10, 5, 25), 4))


def test_custom_roles_name_the_structures() -> None:
    masks, image = head()
    renamed = {("Globe" if k == "Eye" else k): v for k, v in masks.items()}
    roles = AnatomyRoles(eye="Globe", bilateral={"Globe": ("GlobeLeft", "GlobeRight")})
    out = apply_anatomy(renamed, image, GEO, roles=roles, settings=BASE)
    np.testing.assert_array_equal(out["GlobeLeft"], _ball((10, 5, 25), 4))
    # Nerves and lenses are no longer bilateral: passed on merged, but still processed side by side.
    np.testing.assert_array_equal(out["OpticNrv"], _tube(RIGHT_TUBE) | _tube(LEFT_TUBE))
    np.testing.assert_array_equal(out["Lens"], _ball((10, 6, 14), 1) | _ball((10, 5, 25), 1))


def test_postprocess_case_votes_then_applies_the_rules() -> None:
    masks, image = head()
    noisy = []
    for i in range(3):
        m = {k: v.copy() for k, v in masks.items()}
        m["Eye"][0, 0, i] = True  # each model has its own stray voxel: outvoted
        m["OpticChiasm"][15, 15 + i, 5:8] = True
        noisy.append(m)
    noisy[0]["Brainstem"][:] = False  # one model misses the brainstem: the other two carry it
    out = postprocess_case(noisy, image, GEO, settings=BASE)
    for name, mask in _expected().items():
        np.testing.assert_array_equal(out[name], mask, err_msg=name)
    single = postprocess_case([noisy[1]], image, GEO, settings=AnatomySettings(disabled=tuple(list_rules())))
    assert single["Eye_R"][0, 0, 1] and single["OpticChiasm"][15, 16, 5]
    voted = majority_vote(noisy)
    np.testing.assert_array_equal(voted["Eye"], masks["Eye"])


def test_bad_shapes_raise() -> None:
    masks, image = head()
    with pytest.raises(ValueError, match="share one"):
        apply_anatomy(masks, image[:, :, :-1], GEO)
    with pytest.raises(ValueError, match="share one"):
        apply_anatomy(masks, image, Geometry(spacing=(1.0, 1.0, 1.0), shape=(1, 2, 3)))
    with pytest.raises(ValueError, match="at least one model"):
        postprocess_case([], image, GEO)
