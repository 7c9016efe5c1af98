"""Validation catches each listed problem; one small crafted dataset per problem, exact messages."""

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data import validate_dataset
from clinseg.io import Geometry, read_image, write_image
from tests.conftest import GEOM


def messages(root: Path) -> list[str]:
    return [p.message.replace(str(root) + "/", "") for p in validate_dataset(root, progress=False).problems]


def test_clean_dataset_has_no_problems_and_counts(make_dataset) -> None:
    report = validate_dataset(make_dataset(), progress=False)
    assert report.ok
    assert report.structure_counts["train"] == {"A": 3, "B": 2}
    assert report.completeness["train"] == {0: 0, 1: 1, 2: 2}
    assert report.num_cases == {"train": 3, "test": 1}


def test_truncated_file(make_dataset) -> None:
    root = make_dataset()
    path = root / "imagesTr" / "case_0_0000.nii.gz"
    path.write_bytes(path.read_bytes()[:50])
    msgs = messages(root)
    assert len(msgs) == 1
    assert msgs[0].startswith("imagesTr/case_0_0000.nii.gz: unreadable or truncated image (")


def test_missing_channel(make_dataset) -> None:
    root = make_dataset()
    (root / "imagesTr" / "case_2_0000.nii.gz").unlink()
    assert messages(root) == ["imagesTr/case_2_0000.nii.gz: missing channel 0 (T1)"]


@pytest.mark.parametrize(
    ("geom", "expected"),
    [
        (Geometry((1.0, 1.0, 2.0), shape=(8, 10, 11)), "shape (8, 10, 11) vs (8, 10, 12)"),
        (Geometry((1.0, 1.0, 3.0), shape=(8, 10, 12)), "spacing (1, 1, 3) vs (1, 1, 2)"),
        (Geometry((1.0, 1.0, 2.0), origin=(5.0, 0.0, 0.0), shape=(8, 10, 12)), "origin (5, 0, 0) vs (0, 0, 0)"),
        (
            Geometry((1.0, 1.0, 2.0), direction=(0, 1, 0, 1, 0, 0, 0, 0, 1), shape=(8, 10, 12)),
            "direction (0, 1, 0, 1, 0, 0, 0, 0, 1) vs (1, 0, 0, 0, 1, 0, 0, 0, 1)",
        ),
    ],
)
def test_grid_mismatch_reports_values(make_dataset, geom: Geometry, expected: str) -> None:
    root = make_dataset()
    write_image(np.ones(geom.shape, np.uint8), geom, root / "structuresTr" / "case_0" / "A.nii.gz")
    assert messages(root) == [f"structuresTr/case_0/A.nii.gz: grid differs from case_0_0000.nii.gz: {expected}"]


def test_undeclared_label_values(make_dataset) -> None:
    root = make_dataset()
    label = np.zeros(GEOM.shape, np.uint8)
    label[0, 0, :3] = [1, 2, 7]
    write_image(label, GEOM, root / "labelsTr" / "case_2.nii.gz")
    assert messages(root) == ["labelsTr/case_2.nii.gz: label values [7] are not declared in dataset.json labels"]


def test_non_binary_mask(make_dataset) -> None:
    root = make_dataset()
    path = root / "structuresTr" / "case_0" / "B.nii.gz"
    mask = read_image(path).array
    mask[mask > 0] = 255
    write_image(mask, GEOM, path)
    assert messages(root) == ["structuresTr/case_0/B.nii.gz: structure mask is not binary (values 255)"]


def test_nan_and_inf_voxels(make_dataset) -> None:
    root = make_dataset()
    path = root / "imagesTr" / "case_1_0000.nii.gz"
    img = read_image(path).array
    img[0, 0, :3] = [np.nan, np.nan, np.inf]
    write_image(img, GEOM, path)
    assert messages(root) == ["imagesTr/case_1_0000.nii.gz: 2 NaN and 1 Inf voxels"]


def test_empty_mask(make_dataset) -> None:
    root = make_dataset()
    write_image(np.zeros(GEOM.shape, np.uint8), GEOM, root / "structuresTs" / "test_0" / "A.nii.gz")
    assert messages(root) == ["structuresTs/test_0/A.nii.gz: empty mask (no foreground voxel)"]


def test_unknown_structure_name(make_dataset) -> None:
    root = make_dataset()
    write_image(np.ones(GEOM.shape, np.uint8), GEOM, root / "structuresTr" / "case_0" / "Spleen.nii.gz")
    assert messages(root) == [
        "structuresTr/case_0/Spleen.nii.gz: unknown structure 'Spleen' (not in dataset.json labels: A, B)"
    ]


def test_duplicate_cases(make_dataset) -> None:
    root = make_dataset()
    img = read_image(root / "imagesTr" / "case_0_0000.nii.gz")
    write_image(img.array, img.geometry, root / "imagesTr" / "case_0_0000.nrrd")
    write_image(img.array, img.geometry, root / "imagesTs" / "case_2_0000.nii.gz")
    msgs = messages(root)
    assert "imagesTr/case_0_0000.nrrd: duplicate case 'case_0' channel 0 (also case_0_0000.nii.gz)" in msgs
    assert f"{root}: duplicate case 'case_2' appears in both the training and the test set" in msgs
    assert len(msgs) == 2


def test_all_problems_reported_at_once(make_dataset) -> None:
    root = make_dataset()
    (root / "imagesTr" / "case_2_0000.nii.gz").unlink()
    write_image(np.zeros(GEOM.shape, np.uint8), GEOM, root / "structuresTr" / "case_0" / "A.nii.gz")
    spec = json.loads((root / "dataset.json").read_text())
    spec["cases"]["ghost"] = {"annotated": ["A"]}
    (root / "dataset.json").write_text(json.dumps(spec))
    msgs = messages(root)
    assert len(msgs) == 3
    assert "dataset.json: case 'ghost' has no files" in msgs


@pytest.mark.parametrize("ending", [".nrrd", ".mha", ".nii"])
def test_other_formats_validate(make_dataset, ending: str) -> None:
    assert validate_dataset(make_dataset(ending=ending), progress=False).ok


# --- Issue 18: what 'clinseg train' now refuses must be reported by validate, with its severity ---


def test_nii_and_nii_gz_copies_of_one_file_are_reported(make_dataset) -> None:
    root = make_dataset()
    for folder, name in (("imagesTr", "case_0_0000"), ("structuresTr/case_2", "A")):
        img = read_image(root / folder / f"{name}.nii.gz")
        write_image(img.array, img.geometry, root / folder / f"{name}.nii")
    report = validate_dataset(root, progress=False)
    msgs = [p.message.replace(str(root) + "/", "") for p in report.problems]
    assert msgs == [
        "imagesTr/case_0_0000.nii.gz: duplicate case 'case_0' channel 0 (also case_0_0000.nii)",
        "structuresTr/case_2/A.nii.gz: duplicate mask for structure 'A' (also A.nii)",
    ]
    assert [p.severity for p in report.problems] == ["error", "error"]


def test_misnamed_mask_is_an_error_with_the_closest_label(make_dataset) -> None:
    root = make_dataset()
    spec = json.loads((root / "dataset.json").read_text())
    spec["labels"] = {"Eye_L": 1, "B": 2}
    (root / "dataset.json").write_text(json.dumps(spec))
    for case in ("case_0", "case_1", "case_2", "test_0"):
        folder = root / ("structuresTs" if case == "test_0" else "structuresTr") / case
        (folder / "A.nii.gz").rename(folder / ("Eye_Left.nii.gz" if case == "case_1" else "Eye_L.nii.gz"))
    report = validate_dataset(root, progress=False)
    assert [(p.case, p.severity) for p in report.problems] == [("case_1", "error")]
    assert report.problems[0].message == (
        f"{root}/structuresTr/case_1/Eye_Left.nii.gz: unknown structure 'Eye_Left' (not in dataset.json labels: "
        "Eye_L, B); did you mean 'Eye_L'?")
    assert report.structure_counts["train"] == {"Eye_L": 2, "B": 2}  # case_1 counts Eye_L as not delineated


def test_empty_masks_and_cases_without_files_are_warnings(make_dataset) -> None:
    root = make_dataset()
    write_image(np.zeros(GEOM.shape, np.uint8), GEOM, root / "structuresTs" / "test_0" / "A.nii.gz")
    spec = json.loads((root / "dataset.json").read_text())
    spec["cases"]["ghost"] = {"annotated": ["A"]}
    (root / "dataset.json").write_text(json.dumps(spec))
    report = validate_dataset(root, progress=False)
    assert sorted((p.case, p.severity) for p in report.problems) == [("ghost", "warning"), ("test_0", "warning")]
    assert not report.ok and report.errors == [] and len(report.warnings) == 2
