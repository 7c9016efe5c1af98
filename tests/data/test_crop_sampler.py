"""Organ-crop patches (seed 003's organ network): context margins, zeros outside the crop, validation crops."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.crop_sampler import OrganCropSampler, organ_crops
from clinseg.data.loading import CaseData
from clinseg.errors import ConfigError
from clinseg.io import Geometry
from clinseg.training.sampling import build_source


def _case(case_id: str = "c0") -> CaseData:
    shape = (20, 30, 40)
    image = np.ones((1, *shape), np.float32) * 5
    target = np.zeros((2, *shape), np.uint8)
    target[0, 8:12, 10:14, 5:9] = 1      # organ 0 near the low-x border
    target[1, 2:6, 20:26, 30:36] = 1     # organ 1
    return CaseData(case_id, image, target, np.array([True, True]), Geometry((1, 1, 1), shape=shape))


def test_fixed_margin_crop_is_the_organ_box_plus_margin_with_zeros_outside() -> None:
    sampler = OrganCropSampler([_case()], (16, 16, 16), 1.0, np.random.default_rng(0), margin=2)
    for _ in range(20):
        image, target, annotated = sampler.sample()
        assert image.shape == (1, 16, 16, 16) and target.shape == (2, 16, 16, 16)
        # the crop is at most 4 + 2 * 2 = 8 (organ 0: 4 x 4 x 4, organ 1: 4 x 6 x 6 -> 8 x 10 x 10) voxels
        nonzero = np.argwhere(image[0] > 0)
        extent = nonzero.max(0) - nonzero.min(0) + 1
        assert tuple(extent) in {(8, 8, 8), (8, 10, 10)}
        assert image[0][tuple(nonzero.T)].min() == 5
        assert target.sum() in (64, 144)  # the whole organ lies in its crop
        assert annotated.tolist() == [True, True]


def test_jittered_margins_vary_within_range() -> None:
    sampler = OrganCropSampler([_case()], (32, 32, 32), 1.0, np.random.default_rng(1), margin=15, jitter=[1, 4])
    extents = set()
    for _ in range(40):
        image, _, _ = sampler.sample()
        nonzero = np.argwhere(image[0] > 0)
        extents.add(tuple(nonzero.max(0) - nonzero.min(0) + 1))
    sizes = np.array(sorted(extents))
    assert len(extents) > 5
    assert sizes.min() >= 4 + 2 and sizes.max() <= 6 + 8


def test_margin_reaches_beyond_the_border_as_zero_padding() -> None:
    sampler = OrganCropSampler([_case()], (8, 8, 8), 0.0, np.random.default_rng(2), margin=15)
    image, _, _ = sampler.sample()
    assert image.shape == (1, 8, 8, 8)


def test_sampler_is_reproducible() -> None:
    a = OrganCropSampler([_case()], (8, 8, 8), 0.5, np.random.default_rng(3), jitter=[0, 5]).batch(3)
    b = OrganCropSampler([_case()], (8, 8, 8), 0.5, np.random.default_rng(3), jitter=[0, 5]).batch(3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)


def test_validation_crops_score_only_their_own_organ() -> None:
    crops = organ_crops([_case()], margin=3)
    assert [c.case_id for c in crops] == ["c0/0", "c0/1"]
    assert crops[0].image.shape == (1, 10, 10, 10) and crops[0].annotated.tolist() == [True, False]
    assert crops[1].annotated.tolist() == [False, True] and crops[1].target[1].sum() == 144
    assert crops[0].geometry.shape == (10, 10, 10)


def test_sources_by_name_and_clear_errors() -> None:
    sampler, val = build_source("organ-crop", {"margin": 2}, [_case()], [_case("v")], (8, 8, 8), 0.5,
                                np.random.default_rng(0))
    assert isinstance(sampler, OrganCropSampler) and len(val) == 2
    with pytest.raises(ConfigError, match="invalid options"):
        build_source("organ-crop", {"pad": 2}, [_case()], [], (8, 8, 8), 0.5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="margin jitter"):
        build_source("organ-crop", {"jitter": [5, 1]}, [_case()], [], (8, 8, 8), 0.5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown sampler"):
        build_source("tiles", {}, [_case()], [], (8, 8, 8), 0.5, np.random.default_rng(0))
