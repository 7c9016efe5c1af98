"""Relations, voxel-level labels and bit-packed storage (seed 001 §4.2.1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.bitpack import pack_masks, packed_dtype, unpack_mask, unpack_masks
from clinseg.data.relations import Relations, parse_relations
from clinseg.data.voxel_labels import UNKNOWN, voxel_labels
from clinseg.errors import DatasetError

NAMES = ("Brain", "Eye_L", "Eye_R", "Lens_L", "Lens_R")
RAW = {"inside": {"Lens_L": "Eye_L", "Lens_R": "Eye_R"},
       "outside": [["Eye_L", "Brain"], ["Eye_R", "Brain"]],
       "bilateral": {"Eye": ["Eye_L", "Eye_R"], "Lens": ["Lens_L", "Lens_R"]}}


def _case() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 1 x 1 x 12 row: brain at 0-3, left eye 5-7 with its lens at 6, right eye 9-11 with its lens at 10."""
    masks = {n: np.zeros((1, 1, 12), dtype=np.uint8) for n in NAMES}
    masks["Brain"][..., 0:4] = 1
    masks["Eye_L"][..., 5:8] = 1
    masks["Lens_L"][..., 6] = 1
    masks["Eye_R"][..., 9:12] = 1
    masks["Lens_R"][..., 10] = 1
    return np.stack([masks[n] for n in NAMES]), masks


def test_relations_parse_and_merge() -> None:
    rel = parse_relations(RAW, NAMES, "dataset.json")
    assert rel.containers("Lens_L") == ("Eye_L",) and rel.contents("Eye_R") == ("Lens_R",)
    assert rel.exclusions("Brain") == ("Eye_L", "Eye_R")
    assert rel.entities(NAMES) == ("Brain", "Eye", "Lens")
    merged = rel.merged()
    assert merged.inside == (("Lens", "Eye"),) and merged.outside == (("Eye", "Brain"),)
    one_sided = Relations(inside=(("Lens_L", "Eye_L"),), bilateral=rel.bilateral)
    assert one_sided.merged().inside == ()  # declared for one side only: no organ-level statement
    assert parse_relations(rel.to_json(), NAMES, "x") == rel


@pytest.mark.parametrize("raw, message", [
    ({"inside": {"Lens_L": "Retina"}}, "'Retina', which is not a declared structure"),
    ({"around": {}}, "unknown relation kind"),
    ({"bilateral": {"Eye": ["Eye_L"]}}, "must be [left, right]"),
    ({"inside": {"Lens_L": "Eye_L"}, "outside": [["Lens_L", "Eye_L"]]}, "both inside and outside"),
])
def test_relations_errors_name_the_problem(raw: dict, message: str) -> None:
    with pytest.raises(DatasetError, match="dataset.json") as info:
        parse_relations(raw, NAMES, "dataset.json")
    assert message in str(info.value)


def test_lens_negative_outside_delineated_eye_only_with_voxel_unknowns() -> None:
    target, _ = _case()
    rel = parse_relations(RAW, NAMES, "x")
    annotated = np.array([True, True, True, False, False])  # lenses not delineated
    target = target * annotated[:, None, None, None].astype(np.uint8)
    labels, _ = voxel_labels(target, annotated, NAMES, rel)
    lens_l = labels[3, 0, 0]
    U = UNKNOWN
    assert lens_l.tolist() == [0, 0, 0, 0, 0, U, U, U, 0, 0, 0, 0]  # unknown only inside the left eye
    per_class, _ = voxel_labels(target, annotated, NAMES, rel, unknowns="class")
    assert (per_class[3] == UNKNOWN).all() and (per_class[4] == UNKNOWN).all()
    assert (labels[0] == target[0]).all()  # a delineated structure is known everywhere


def test_exclusion_and_containment_imply_labels() -> None:
    target, _ = _case()
    rel = parse_relations(RAW, NAMES, "x")
    annotated = np.array([True, False, False, True, True])  # brain and lenses delineated, eyes not
    labels, _ = voxel_labels(target * annotated[:, None, None, None].astype(np.uint8), annotated, NAMES, rel)
    U = UNKNOWN
    # left eye: negative inside the brain (exclusion), positive at its lens (containment), unknown elsewhere
    assert labels[1, 0, 0].tolist() == [0, 0, 0, 0, U, U, 1, U, U, U, U, U]


def test_merged_bilateral_organ() -> None:
    target, _ = _case()
    rel = parse_relations(RAW, NAMES, "x")
    annotated = np.array([True, True, False, True, True])  # right eye missing
    labels, names = voxel_labels(target * annotated[:, None, None, None].astype(np.uint8), annotated, NAMES, rel,
                                 merge_bilateral=True)
    assert names == ("Brain", "Eye", "Lens")
    U = UNKNOWN
    # Eye = left or right: left eye known, right eye unknown except inside the brain and at its lens
    assert labels[1, 0, 0].tolist() == [0, 0, 0, 0, U, 1, 1, 1, U, U, 1, U]
    # Lens: both lenses delineated -> known everywhere
    assert labels[2, 0, 0].tolist() == [0] * 6 + [1] + [0] * 3 + [1, 0]


@pytest.mark.parametrize("classes, dtype", [(3, np.uint8), (8, np.uint8), (9, np.uint16), (20, np.uint32)])
def test_bit_packing_round_trip(classes: int, dtype: type) -> None:
    rng = np.random.default_rng(classes)
    masks = rng.random((classes, 5, 6, 7)) < 0.3
    packed = pack_masks(masks)
    assert packed.dtype == dtype == packed_dtype(classes)
    assert packed.nbytes * classes == masks.astype(np.uint8).nbytes * np.dtype(dtype).itemsize
    assert np.array_equal(unpack_masks(packed, classes), masks.astype(np.uint8))
    assert all(np.array_equal(unpack_mask(packed, c), masks[c]) for c in range(classes))
    assert int(pack_masks(np.ones((3, 1), bool))[0]) == 0b111
