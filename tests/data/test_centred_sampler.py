"""Class-centred batches over bit-packed voxel-level labels (seed 001 §4.2.1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.centred_sampler import Box, ClassCentredSampler, class_boxes
from clinseg.data.loading import CaseData
from clinseg.data.voxel_labels import UNKNOWN
from clinseg.io import Geometry


def _case(case_id: str, lens_known: bool) -> CaseData:
    """A 4 x 24 x 24 case with three classes: 'brain' (a big block), 'eye' (two small blocks, left and right)
    and 'lens' (one voxel in each eye, or unknown everywhere)."""
    labels = np.zeros((3, 4, 24, 24), dtype=np.uint8)
    labels[0, :, 2:22, 2:12] = 1
    labels[1, 1:3, 14:17, 2:5] = 1
    labels[1, 1:3, 14:17, 19:22] = 1
    if lens_known:
        labels[2, 2, 15, 3] = labels[2, 2, 15, 20] = 1
    else:
        labels[2] = UNKNOWN
    image = np.random.default_rng(0).normal(size=(1, 4, 24, 24)).astype(np.float32)
    return CaseData(case_id, image, labels, (labels != UNKNOWN).reshape(3, -1).any(axis=1),
                    Geometry((1.0, 1.0, 1.0), shape=(4, 24, 24)))


def test_boxes_one_per_class_two_for_bilateral() -> None:
    labels = _case("a", True).target
    boxes = class_boxes(labels, two_sided={1})
    assert boxes[0] == [Box((0, 2, 2), (3, 21, 11))]
    assert sorted(b.lo for b in boxes[1]) == [(1, 14, 2), (1, 14, 19)] and all(b.volume == 18 for b in boxes[1])
    assert len(boxes[2]) == 1 and boxes[2][0].lo == (2, 15, 3) and boxes[2][0].hi == (2, 15, 20)
    assert class_boxes(labels, two_sided=set())[1] == [Box((1, 14, 2), (2, 16, 21))]


def test_batch_starts_with_one_patch_per_class_then_the_largest() -> None:
    cases = [_case("a", True), _case("b", False)]
    # the lens is bilateral too: one box over both lenses would centre patches between them
    sampler = ClassCentredSampler(cases, (1, 8, 8), np.random.default_rng(1), two_sided={1, 2})
    assert sampler.largest == 0  # the brain's box is the largest
    assert [c for c, _ in sampler.boxes[2]] == [0]  # only case a has a known lens
    for _ in range(20):
        batch = sampler.batch(5)
        assert batch.image.shape == (5, 1, 1, 8, 8) and batch.target.shape == (5, 3, 1, 8, 8)
        for k in range(3):  # patch k is centred on class k: it holds positive voxels of k
            assert batch.target[k, k].max() == 1
        assert (batch.target[3:, 0] == 1).any(axis=(1, 2, 3)).all()  # the rest centred on the brain
        assert batch.target.dtype == np.uint8 and set(np.unique(batch.target)) <= {0, 1, UNKNOWN}
    # the decoded labels equal the case's labels
    image, labels = sampler.patch(1, (0, 0, 0))
    assert np.array_equal(labels, cases[1].target[:, 0:1, 0:8, 0:8])
    assert np.array_equal(image, cases[1].image[:, 0:1, 0:8, 0:8])
    assert (labels[2] == UNKNOWN).all()
    # packed: 2 one-byte volumes per case instead of 3 bytes per voxel for the labels alone
    assert sampler.label_bytes == 2 * 2 * 4 * 24 * 24


def test_rest_random_and_reproducible_with_rng_state() -> None:
    cases = [_case("a", True), _case("b", True)]
    sampler = ClassCentredSampler(cases, (1, 8, 8), np.random.default_rng(3), rest="random")
    state = sampler.rng.bit_generator.state
    first = sampler.batch(8)
    sampler.rng.bit_generator.state = state
    again = sampler.batch(8)
    assert np.array_equal(first.target, again.target) and np.array_equal(first.image, again.image)
    assert first.annotated.shape == (8, 3) and first.annotated.all()


def test_small_batch_takes_a_subset_of_classes_and_bad_options() -> None:
    sampler = ClassCentredSampler([_case("a", True)], (1, 8, 8), np.random.default_rng(0))
    batch = sampler.batch(2)
    assert batch.target.shape[0] == 2
    with pytest.raises(ValueError, match="rest must be"):
        ClassCentredSampler([_case("a", True)], (1, 8, 8), np.random.default_rng(0), rest="brain")  # type: ignore[arg-type]
