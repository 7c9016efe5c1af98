"""import-dicom: series grouping and geometry, RTSTRUCT matching, name harmonisation, the report, the CLI."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import load_dataset
from clinseg.data.structure_names import NameMap, load_name_map, name_key
from clinseg.errors import ConfigError, DatasetError
from clinseg.io.dicom import case_ids, read_series, scan_folder
from clinseg.io.dicom.importer import import_dicom
from clinseg.io.image import read_image
from tests.io._dicom_factory import circle, phantom_volume, write_rtstruct, write_series

runner = CliRunner()


def _discs(info, z_range, centre, radius) -> list[np.ndarray]:
    return [circle(info, z, centre, radius) for z in z_range]


def test_shuffled_slices_non_unit_spacing_and_two_series_in_one_folder(tmp_path: Path) -> None:
    vol_a, vol_b = phantom_volume(seed=1), phantom_volume(shape=(5, 16, 24), seed=2) + 1100  # MR: positive
    a = write_series(tmp_path, vol_a, spacing=(0.7, 0.9, 3.0), origin=(-10.0, 20.0, -45.5), seed=3)
    b = write_series(tmp_path, vol_b, spacing=(1.5, 1.5, 1.25), patient_id="P 2/x", series_number=7, seed=4,
                     modality="MR", slope=0.5, intercept=0.0)
    (tmp_path / "notes.txt").write_text("not dicom")
    scan = scan_folder(tmp_path)
    assert set(scan.series) == {a.series_uid, b.series_uid}
    assert [str(p) for p, _ in scan.skipped] == [str(tmp_path / "notes.txt")]
    img = read_series(scan.series[a.series_uid])
    np.testing.assert_array_equal(img.array, vol_a)  # slice order restored from positions, not file names
    assert img.geometry.spacing == pytest.approx((0.7, 0.9, 3.0)) and img.geometry.origin == (-10.0, 20.0, -45.5)
    assert img.geometry.shape == (8, 32, 32)
    mr = read_series(scan.series[b.series_uid])
    assert mr.array.dtype == np.float32 and np.array_equal(mr.array, vol_b)  # slope 0.5: floats
    assert mr.geometry.spacing == pytest.approx((1.5, 1.5, 1.25)) and mr.geometry.shape == (5, 16, 24)
    assert case_ids(list(scan.series.values())) == {a.series_uid: "PAT001_2", b.series_uid: "P-2-x_7"}


def test_uneven_or_duplicated_slices_are_skipped_with_the_reason(tmp_path: Path) -> None:
    info = write_series(tmp_path, phantom_volume(shape=(4, 8, 8)))
    info.files[1].unlink()  # a missing slice
    scan = scan_folder(tmp_path)
    assert not scan.series and len(scan.skipped) == 3
    assert all("unevenly spaced" in reason for _, reason in scan.skipped)


def test_import_writes_dataset_report_and_harmonised_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ct = write_series(src / "p1" / "ct", phantom_volume(), spacing=(0.8, 0.9, 2.5))
    rois = {
        "L Eye": _discs(ct, range(2, 5), (10, 16), 4.0),
        "OD": _discs(ct, range(2, 5), (22, 16), 4.0),
        "Brain Stem": _discs(ct, range(1, 7), (16, 20), 5.0) + [circle(ct, 3, (16, 20), 2.0)],  # hole on z=3
        "PTV_70": _discs(ct, range(2, 4), (16, 10), 3.0),
        "Lens_L": _discs(ct, range(3, 4), (10, 16), 1.5),
        "lens l": _discs(ct, range(3, 4), (10, 16), 1.4),  # the same structure twice: ambiguous
        "Chiasm": [],  # declared, never drawn
    }
    write_rtstruct(src / "p1" / "rs.dcm", ct, rois, colours={"L Eye": (0, 0, 255)})
    lone = write_series(src / "p2", phantom_volume(shape=(3, 8, 8)), patient_id="PAT002")
    report = import_dicom(src, tmp_path / "ds", load_name_map().standardise)
    assert report.cases == {"PAT001_2": ["Brainstem", "Eye_L", "Eye_R"]} and report.test_cases == ["PAT002_2"]
    ds = load_dataset(tmp_path / "ds")
    assert ds.spec.structures == ("Brainstem", "Eye_L", "Eye_R") and ds.spec.label_mode == "multilabel"
    assert [c.case_id for c in ds.cases("train")] == ["PAT001_2"] and ds.cases("train")[0].annotated == {
        "Brainstem", "Eye_L", "Eye_R"}
    assert (tmp_path / "ds" / "imagesTs" / "PAT002_0000.nii.gz").exists() is False
    assert (tmp_path / "ds" / "imagesTs" / "PAT002_2_0000.nii.gz").is_file()
    spec = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert spec["channel_names"] == {"0": "CT"} and spec["colours"]["Eye_L"] == [0, 0, 255]
    stem = read_image(tmp_path / "ds" / "structuresTr" / "PAT001_2" / "Brainstem.nii.gz")
    image = read_image(tmp_path / "ds" / "imagesTr" / "PAT001_2_0000.nii.gz")
    assert stem.geometry == image.geometry and image.geometry.spacing == pytest.approx((0.8, 0.9, 2.5))
    assert stem.array[3, 20, 16] == 0 and stem.array[2, 20, 16] == 1  # the hole, and the slice below
    table = pd.read_csv(tmp_path / "ds" / "import-report.csv", keep_default_na=False)
    status = dict(zip(table["name"], table["status"]))
    assert status["PTV_70"] == "unmapped" and status["Chiasm"] == "empty"
    assert status["Lens_L"] == status["lens l"] == "ambiguous"
    assert report.names_with("unmapped") == ["PTV_70"]
    assert set(table.loc[table["kind"] == "series", "status"]) == {"imported", "test"}
    assert lone.series_uid in set(table["series_uid"])


def test_rtstruct_referencing_a_missing_series_is_a_clear_error(tmp_path: Path) -> None:
    ct = write_series(tmp_path / "elsewhere", phantom_volume(shape=(3, 8, 8)))
    src = tmp_path / "src"
    write_series(src, phantom_volume(shape=(3, 8, 8)), patient_id="OTHER")
    write_rtstruct(src / "rs.dcm", ct, {"Brainstem": _discs(ct, range(1, 2), (4, 4), 2.0)})
    with pytest.raises(DatasetError, match=rf"rs\.dcm: RTSTRUCT references image series {ct.series_uid}"):
        import_dicom(src, tmp_path / "ds")
    assert not (tmp_path / "ds" / "dataset.json").exists()
    result = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds")])
    assert result.exit_code == 1 and "not among the readable series" in result.output.replace("\n", "")
    # skipped on request: the other series is imported, but without any structure there is no dataset
    with pytest.raises(DatasetError, match="no structure could be imported"):
        import_dicom(src, tmp_path / "ds2", allow_missing=True)
    table = pd.read_csv(tmp_path / "ds2" / "import-report.csv", keep_default_na=False)
    assert "referenced series not found" in " ".join(table["detail"])


def test_name_map_rules(tmp_path: Path) -> None:
    names = load_name_map()
    assert name_key(" Eye__L ") == name_key("eye-l") == "eye l"
    assert [names.standardise(n) for n in ("Eye_L", "L Eye", "GLOBE_L", "OD", "os", "Brain Stem", "PTV")] == [
        "Eye_L", "Eye_L", "Eye_L", "Eye_R", "Eye_L", "Brainstem", None]
    with pytest.raises(ConfigError, match="both 'A' and 'B'"):
        NameMap.from_mapping({"A": ["x"], "B": ["X"]})
    path = tmp_path / "names.yaml"
    path.write_text("Eye_L: [Auge links]\nOpticNrv_L: [ON]\n")
    with pytest.raises(ConfigError, match="quote it"):
        load_name_map(path)


def test_cli_import_with_names_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ct = write_series(src, phantom_volume(shape=(4, 16, 16)), patient_id="X1", series_number=4)
    write_rtstruct(src / "rs.dcm", ct, {"Auge links": _discs(ct, range(1, 3), (8, 8), 3.0),
                                        "Tumour bed": _discs(ct, range(1, 3), (8, 8), 2.0)})
    names = tmp_path / "names.yaml"
    names.write_text("Eye_L: [Auge links]\n")
    result = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds"), "--names", str(names)])
    assert result.exit_code == 0, result.output
    assert "unmapped names (not imported): Tumour bed" in result.output
    assert sorted(p.name for p in (tmp_path / "ds" / "structuresTr" / "X1_4").iterdir()) == ["Eye_L.nii.gz"]
    kept = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds2"), "--names", str(names),
                               "--keep-unmapped"])
    assert kept.exit_code == 0, kept.output
    assert (tmp_path / "ds2" / "structuresTr" / "X1_4" / "Tumour_bed.nii.gz").is_file()
    again = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds")])
    assert again.exit_code == 1 and "already holds a dataset" in again.output
