"""Dataset listing: records, partial annotations, nnU-Net v2 folders, malformed dataset.json."""

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data import load_case, load_dataset
from clinseg.errors import DatasetError
from clinseg.io import Geometry, write_image


def test_records_follow_the_files(make_dataset) -> None:
    ds = load_dataset(make_dataset())
    assert [r.case_id for r in ds.train] == ["case_0", "case_1", "case_2"]
    assert [r.case_id for r in ds.test] == ["test_0"]
    assert ds.spec.structures == ("A", "B") and ds.spec.label_mode == "multilabel"
    c0, c1 = ds.train[0], ds.train[1]
    assert c0.annotated == {"A", "B"} and c0.complete
    assert c1.annotated == {"A"} and not c1.complete
    assert c0.weak_labels == {"tumour": True}
    assert ds.problems == ()


def test_load_case_marks_missing_structure_as_not_annotated(make_dataset) -> None:
    ds = load_dataset(make_dataset())
    data = load_case(ds.train[1], ds.spec)
    assert data.image.shape == (1, 8, 10, 12) and data.image.dtype == np.float32
    assert data.target.shape == (2, 8, 10, 12)
    assert data.annotated.tolist() == [True, False]
    assert data.target[1].sum() == 0 and data.target[0].sum() > 0
    assert abs(float(data.image.mean())) < 1e-5  # z-score


def test_structures_declared_absent_are_delineated_empty(make_dataset) -> None:
    root = make_dataset()
    spec = json.loads((root / "dataset.json").read_text())
    spec["cases"]["case_1"] = {"absent": ["B"]}  # e.g. an organ removed by surgery
    (root / "dataset.json").write_text(json.dumps(spec))
    ds = load_dataset(root)
    assert ds.case("case_1").annotated == {"A", "B"} and ds.case("case_1").complete and ds.problems == ()
    data = load_case(ds.case("case_1"), ds.spec)
    assert data.annotated.tolist() == [True, True] and data.target[1].sum() == 0
    spec["cases"]["case_0"] = {"absent": ["B"]}  # but case_0 has a mask of B
    (root / "dataset.json").write_text(json.dumps(spec))
    assert any("['B'] are declared absent in dataset.json but have masks" in p for p in load_dataset(root).problems)
    spec["cases"]["case_0"] = {"absent": ["Liver"]}
    (root / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(DatasetError, match=r"cases\['case_0'\].absent must be a list of structure names \(A, B\)"):
        load_dataset(root)


def _nnunet_folder(root: Path) -> Path:
    geom = Geometry(spacing=(1.0, 1.0, 1.0), shape=(6, 6, 6))
    root.mkdir()
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "liver": 1, "tumor": 2},
                "numTraining": 1,
                "file_ending": ".nii.gz",
            }
        )
    )
    write_image(np.zeros((6, 6, 6), np.float32), geom, root / "imagesTr" / "liver_001_0000.nii.gz")
    label = np.zeros((6, 6, 6), np.uint8)
    label[1:3] = 1
    label[4] = 2
    write_image(label, geom, root / "labelsTr" / "liver_001.nii.gz")
    return root


def test_plain_nnunet_v2_folder_reads_as_multiclass(tmp_path: Path) -> None:
    ds = load_dataset(_nnunet_folder(tmp_path / "Dataset001_Liver"))
    assert ds.spec.label_mode == "multiclass"
    assert ds.spec.structures == ("liver", "tumor")
    assert ds.spec.name == "Dataset001_Liver"
    record = ds.train[0]
    assert record.complete and record.annotated == {"liver", "tumor"}
    data = load_case(record, ds.spec)
    assert data.target[0].sum() == 72 and data.target[1].sum() == 36


def test_label_map_with_declared_annotated_subset(tmp_path: Path) -> None:
    root = _nnunet_folder(tmp_path / "ds")
    spec = json.loads((root / "dataset.json").read_text())
    spec["cases"] = {"liver_001": {"annotated": ["liver"]}}
    (root / "dataset.json").write_text(json.dumps(spec))
    ds = load_dataset(root)
    assert ds.train[0].annotated == {"liver"}
    assert load_case(ds.train[0], ds.spec).annotated.tolist() == [True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"labels": {"a": 1}}', "'channel_names' must map channel indices"),
        ('{"channel_names": {"0": "T1"}, "labels": {"a": "x"}}', "label 'a' must have an integer value"),
        ('{"channel_names": {"0": "T1"}, "labels": ["a"], "label_mode": "fuzzy"}', "label_mode must be"),
        ('{"channel_names": {"1": "T1"}, "labels": ["a"]}', "channel indices must be 0..0"),
    ],
)
def test_malformed_dataset_json(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "dataset.json").write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(tmp_path)
    assert "dataset.json" in str(info.value)


def test_missing_folder_and_json(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"dataset\.json: not found"):
        load_dataset(tmp_path)


def test_keep_structures_turns_removed_delineations_into_missing_ones(make_dataset) -> None:
    from clinseg.data.loading import keep_structures

    dataset = load_dataset(make_dataset())
    case = load_case(dataset.case("case_0"), dataset.spec)
    kept = keep_structures(case, dataset.spec.structures, {"B"})
    assert kept.annotated.tolist() == [False, True]
    assert kept.target[0].sum() == 0 and np.array_equal(kept.target[1], case.target[1])
    assert case.annotated.tolist() == [True, True] and case.target[0].sum() > 0  # input untouched
    with pytest.raises(DatasetError, match="unknown structure"):
        keep_structures(case, dataset.spec.structures, {"C"})


def test_missing_channels_per_case(tmp_path: Path) -> None:
    root = _nnunet_folder(tmp_path / "ds")
    raw = json.loads((root / "dataset.json").read_text())
    raw["channel_names"] = {"0": "T1", "1": "FLAIR"}
    raw["cases"] = {"liver_001": {"missing_channels": ["FLAIR"]}}
    (root / "dataset.json").write_text(json.dumps(raw))
    spec = load_dataset(root).spec
    assert spec.missing_channels == {"liver_001": ("FLAIR",)}
    raw["cases"] = {"liver_001": {"missing_channels": ["T2"]}}
    (root / "dataset.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="missing_channels"):
        load_dataset(root)


def test_weak_slices_per_case() -> None:
    from clinseg.data.dataset import parse_spec

    raw = {"channel_names": {"0": "FLAIR"}, "labels": {"background": 0, "necrosis": 1, "oedema": 2},
           "cases": {"w": {"weak_labels": {"tumour": True}, "weak_slices": {"tumour": [5, 3, 3], "oedema": [3]}}}}
    spec = parse_spec(raw, Path("dataset.json"))
    assert spec.weak_slices == {"w": {"tumour": (3, 5), "oedema": (3,)}}
    assert spec.weak_labels == {"w": {"tumour": True}}
    for bad, message in (({"edema": [1]}, "unknown structure 'edema'"), ({"oedema": [-1]}, "slice indices >= 0"),
                         ({"oedema": 3}, "slice indices >= 0"), ([1, 2], "must map structure names")):
        raw["cases"]["w"]["weak_slices"] = bad
        with pytest.raises(DatasetError, match=message):
            parse_spec(raw, Path("dataset.json"))


# --- Issue 18: every name read from a dataset becomes a path component, so each is checked where it is read ---


def _rewrite_spec(root: Path, **changes: object) -> Path:
    spec = json.loads((root / "dataset.json").read_text())
    spec.update(changes)
    (root / "dataset.json").write_text(json.dumps(spec))
    return root / "dataset.json"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": {"A": 1, "../../../../x": 2}}, r"structure name '\.\./\.\./\.\./\.\./x' contains '/'"),
        ({"labels": {"A": 1, "/tmp/x": 2}}, r"structure name '/tmp/x' contains '/'"),
        ({"labels": ["A", ".."]}, r"structure name '\.\.' starts with '\.'"),
        ({"channel_names": {"0": "T1/../../x"}}, r"channel name 'T1/\.\./\.\./x' contains '/'"),
        ({"cases": {"../evil": {"weak_labels": {"tumour": True}}}}, r"case id '\.\./evil' contains '/'"),
    ],
)
def test_unsafe_names_in_dataset_json_are_refused(make_dataset, changes: dict, message: str) -> None:
    path = _rewrite_spec(make_dataset(), **changes)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path.parent)
    assert str(info.value).startswith(f"{path}: ")


def test_unsafe_case_ids_from_file_names_are_refused(make_dataset) -> None:
    root = make_dataset()
    image = root / "imagesTr" / "case_0_0000.nii.gz"
    bad = root / "imagesTr" / "ca:se_0000.nii.gz"
    image.rename(bad)
    with pytest.raises(DatasetError, match="case id 'ca:se' contains ':'") as info:
        load_dataset(root)
    assert str(info.value).startswith(f"{bad}: ")
    bad.rename(image)
    folder = root / "structuresTs" / "te st "
    folder.mkdir()
    with pytest.raises(DatasetError, match="case id 'te st ' starts or ends with a space") as info:
        load_dataset(root)
    assert str(info.value).startswith(f"{folder}: ")


def test_hidden_files_are_not_cases(make_dataset) -> None:
    """Temporary files of an interrupted write and macOS ``._`` files are left out of the listing."""
    root = make_dataset()
    image = root / "imagesTr" / "case_0_0000.nii.gz"
    (root / "imagesTr" / "._case_0_0000.nii.gz").write_bytes(b"\x00" * 10)
    (root / "imagesTr" / ".case_0_0000.1234.abcd1234.nii.gz").write_bytes(image.read_bytes())
    (root / "structuresTr" / ".case_9").mkdir()
    ds = load_dataset(root)
    assert [r.case_id for r in ds.train] == ["case_0", "case_1", "case_2"] and ds.problems == ()


def test_duplicate_keys_in_dataset_json_are_an_error_naming_the_key(make_dataset) -> None:
    root = make_dataset()
    path = root / "dataset.json"
    text = path.read_text()
    assert text.endswith("}}}")  # "cases": {"case_0": {...}}} written by the fixture
    path.write_text(text[:-2] + ', "case_0": {"absent": ["B"]}}}')
    with pytest.raises(DatasetError, match=r"key 'case_0' appears twice in one JSON object") as info:
        load_dataset(root)
    assert str(info.value).startswith(f"{path}: ")
    path.write_text('{"name": "a", "name": "b", "channel_names": {"0": "T1"}, "labels": ["A"]}')
    with pytest.raises(DatasetError, match=r"dataset.json: key 'name' appears twice"):
        load_dataset(root)
