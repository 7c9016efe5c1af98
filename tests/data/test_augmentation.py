"""Augmentation: left-right mirroring swaps left and right labels; spatial transforms keep shapes and labels
binary; settings are checked; every patch is a function of the generator."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.augmentation import AugmentationSettings, Augmenter, centre_crop
from clinseg.data.laterality import lateral_pairs, side_of, swap_permutation
from clinseg.errors import ConfigError

OFF = dict(rotation_p=0.0, scale_p=0.0, noise_p=0.0, blur_p=0.0, brightness_p=0.0, contrast_p=0.0,
           low_resolution_p=0.0, gamma_p=0.0)


def test_lateral_pairs_from_names_and_relations() -> None:
    assert side_of("Parotid_L") == ("parotid", "L") and side_of("RightParotid") == ("parotid", "R")
    assert side_of("Brainstem") is None and side_of("Larynx") is None
    pairs, unpaired = lateral_pairs(["Brainstem", "LeftParotid", "RightParotid", "Lens_L"])
    assert pairs == [("LeftParotid", "RightParotid")] and unpaired == ["Lens_L"]
    assert swap_permutation(["A", "Eye_L", "Eye_R"], [("Eye_L", "Eye_R")]) == [0, 2, 1]


def test_mirroring_the_left_right_axis_swaps_left_and_right_labels() -> None:
    settings = AugmentationSettings(**OFF)
    aug = Augmenter(settings, (4, 4, 8), mirror_axes=[2], lr_axis=2, swap=[0, 2, 1])
    image = np.arange(4 * 4 * 8, dtype=np.float32).reshape(1, 4, 4, 8)
    target = np.zeros((3, 4, 4, 8), np.uint8)
    target[0, :, :, 3:5] = 1  # a midline structure
    target[1, :, :, 6:] = 1   # "left" at high x
    target[2, :, :, :2] = 1   # "right" at low x
    flipped = None
    for seed in range(20):
        img, tgt, ann = aug(image, target, np.array([True, True, False]), np.random.default_rng(seed))
        if not np.array_equal(img, image):
            flipped = (img, tgt)
            break
    assert flipped is not None
    img, tgt = flipped
    assert np.array_equal(img, image[:, :, :, ::-1])
    assert np.array_equal(tgt[0], target[0, :, :, ::-1])
    assert tgt[1, :, :, 6:].all() and not tgt[1, :, :, :6].any()  # the left structure is still on the left
    assert tgt[2, :, :, :2].all() and not tgt[2, :, :, 2:].any()
    # only "left" was delineated in the original; mirrored, only "right" is: the mask follows its labels
    assert ann.tolist() == [True, False, True]


def test_spatial_augmentation_cuts_the_patch_from_its_context() -> None:
    settings = AugmentationSettings(**{**OFF, "rotation_p": 1.0, "scale_p": 1.0})
    aug = Augmenter(settings, (16, 16, 16))
    context = aug.context
    assert all(c > 16 for c in context)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, *context)).astype(np.float32)
    target = np.zeros((2, *context), np.uint8)
    c = [s // 2 for s in context]
    target[0, c[0] - 3:c[0] + 3, c[1] - 3:c[1] + 3, c[2] - 3:c[2] + 3] = 1
    img, tgt, _ = aug(image, target, np.ones(2, bool), rng)
    assert img.shape == (1, 16, 16, 16) and tgt.shape == (2, 16, 16, 16)
    assert set(np.unique(tgt)) <= {0, 1} and 120 < tgt[0].sum() < 400  # the 216-voxel cube, rotated/zoomed
    assert tgt[0, 8, 8, 8] == 1


def test_an_identity_transform_reproduces_the_centre_crop() -> None:
    """MONAI's affine resampling, as the augmenter calls it, cuts the patch from the centre of its context."""
    settings = AugmentationSettings(**{**OFF, "rotation_p": 1.0, "rotation": 0.0, "scale": [1.0, 1.0]})
    aug = Augmenter(settings, (10, 12, 14))
    source = np.random.default_rng(1).normal(size=(2, *aug.context)).astype(np.float32)
    target = (source[:1] > 0).astype(np.uint8)
    image, tgt, _ = aug(source, target, np.ones(1, bool), np.random.default_rng(0))
    assert np.allclose(image, centre_crop(source, (10, 12, 14)), atol=1e-5)
    assert np.array_equal(tgt, centre_crop(target, (10, 12, 14)))


def test_every_transform_runs_and_keeps_shapes_and_types() -> None:
    settings = AugmentationSettings(rotation_p=1.0, scale_p=1.0, elastic_p=1.0, noise_p=1.0, blur_p=1.0,
                                    brightness_p=1.0, contrast_p=1.0, low_resolution_p=1.0, gamma_p=1.0)
    aug = Augmenter(settings, (12, 12, 12), mirror_axes=[2], lr_axis=2, swap=[0])
    rng = np.random.default_rng(4)
    image = rng.normal(size=(2, *aug.context)).astype(np.float32)
    target = np.zeros((1, *aug.context), np.uint8)
    c = [n // 2 for n in aug.context]
    target[0, c[0] - 4:c[0] + 4, c[1] - 4:c[1] + 4, c[2] - 4:c[2] + 4] = 1
    out, tgt, ann = aug(image, target, np.ones(1, bool), rng)
    assert out.shape == (2, 12, 12, 12) and out.dtype == np.float32 and np.isfinite(out).all()
    assert tgt.shape == (1, 12, 12, 12) and tgt.dtype == np.uint8 and 0 < tgt.sum() < 12**3
    assert ann.tolist() == [True]


def test_voxel_level_unknowns_survive_spatial_transforms() -> None:
    settings = AugmentationSettings(**{**OFF, "rotation_p": 1.0})
    aug = Augmenter(settings, (8, 8, 8))
    target = np.full((1, *aug.context), 255, np.uint8)
    target[0, :, :, : aug.context[2] // 2] = 0
    _, tgt, _ = aug(np.zeros((1, *aug.context), np.float32), target, np.ones(1, bool),
                    np.random.default_rng(3))
    assert set(np.unique(tgt)) <= {0, 255}


def test_same_generator_same_patch() -> None:
    settings = AugmentationSettings(rotation_p=1.0, noise_p=1.0, gamma_p=1.0, low_resolution_p=1.0)
    aug = Augmenter(settings, (8, 8, 8), mirror_axes=[2], lr_axis=2, swap=[0])
    image = np.random.default_rng(0).normal(size=(1, *aug.context)).astype(np.float32)
    target = (image > 0).astype(np.uint8)
    a = aug(image, target, np.ones(1, bool), np.random.default_rng(7))
    b = aug(image, target, np.ones(1, bool), np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="rotation_p"):
        AugmentationSettings(rotation_p=2.0).validate()
    with pytest.raises(ConfigError, match="scale"):
        AugmentationSettings(scale=[1.2, 0.8]).validate()
