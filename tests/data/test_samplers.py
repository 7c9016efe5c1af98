"""Class-aware patch sampling: shapes, foreground share, small structures seen, determinism."""

import numpy as np

from clinseg.data.loading import CaseData
from clinseg.data.samplers import ClassAwarePatchSampler, pad_to
from clinseg.io import Geometry


def _case(seed: int, annotated: list[bool]) -> CaseData:
    shape = (20, 20, 20)
    target = np.zeros((2, *shape), np.uint8)
    target[0, 2:18, 2:18, 2:18] = 1  # large
    target[1, 15, 15, 15] = 1  # one voxel
    image = np.random.default_rng(seed).normal(size=(1, *shape)).astype(np.float32)
    return CaseData(f"c{seed}", image, target, np.array(annotated), Geometry((1.0, 1.0, 1.0), shape=shape))


def test_batch_shapes_and_padding() -> None:
    cases = [_case(0, [True, True])]
    sampler = ClassAwarePatchSampler(cases, (8, 24, 8), 0.5, np.random.default_rng(0))
    batch = sampler.batch(3)
    assert batch.image.shape == (3, 1, 8, 24, 8) and batch.target.shape == (3, 2, 8, 24, 8)
    assert batch.annotated.shape == (3, 2) and batch.annotated.all()
    assert pad_to(np.zeros((1, 4, 4, 4)), (6, 3, 5)).shape == (1, 6, 4, 5)


def test_small_structure_is_sampled_as_often_as_large() -> None:
    cases = [_case(0, [True, True])]
    sampler = ClassAwarePatchSampler(cases, (6, 6, 6), 1.0, np.random.default_rng(1))
    hits = sum(sampler.sample()[1][1].any() for _ in range(400))
    # structures are drawn uniformly: about half of the patches are centred on the single voxel
    assert 150 < hits < 250


def test_unannotated_structure_is_never_a_centre() -> None:
    cases = [_case(0, [True, False]), _case(1, [True, False])]
    sampler = ClassAwarePatchSampler(cases, (4, 4, 4), 1.0, np.random.default_rng(2))
    assert sampler.sampleable == [0]
    for _ in range(50):
        _, target, annotated = sampler.sample()
        assert target[0].any() and annotated.tolist() == [True, False]


def test_random_patches_cover_background() -> None:
    cases = [_case(0, [True, True])]
    sampler = ClassAwarePatchSampler(cases, (4, 4, 4), 0.0, np.random.default_rng(3))
    # uniform corners in [0, 16]^3: the single voxel at 15 is inside for corners 12..15 -> (4/17)^3 ~ 1.3%
    hits = sum(sampler.sample()[1][1].any() for _ in range(400))
    assert hits < 20


def test_same_state_same_patches() -> None:
    cases = [_case(0, [True, True]), _case(1, [True, False])]
    a = ClassAwarePatchSampler(cases, (8, 8, 8), 0.5, np.random.default_rng(7))
    a.batch(5)
    state = a.rng.bit_generator.state
    expected = a.batch(4)
    b = ClassAwarePatchSampler(cases, (8, 8, 8), 0.5, np.random.default_rng(0))
    b.rng.bit_generator.state = state
    got = b.batch(4)
    assert np.array_equal(expected.image, got.image) and np.array_equal(expected.target, got.target)
