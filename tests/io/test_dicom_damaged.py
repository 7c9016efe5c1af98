"""import-dicom on damaged and hostile input: every problem is a report row (or one clear error), never a traceback.

Each test writes real DICOM files with the factory and then damages them the way broken exporters, interrupted
copies and hostile users do (cut ContourData, NaN, missing tags, truncated files, unsafe names).
"""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data.structure_names import load_name_map
from clinseg.errors import DatasetError, ImageReadError
from clinseg.io.dicom import read_rtstruct, scan_folder
from clinseg.io.dicom.importer import import_dicom
from clinseg.io.image import read_image
from clinseg.names import MAX_NAME_LENGTH, name_problem
from tests.io._dicom_factory import (
    SeriesInfo,
    circle,
    edit_dicom,
    phantom_volume,
    truncate,
    write_rtstruct,
    write_series,
)

runner = CliRunner()
SHAPE = (6, 16, 16)  # z = 30, 32.5, ..., 42.5 mm (factory origin and spacing)
standardise = load_name_map().standardise


def _disc(info: SeriesInfo, z: int, radius: float = 3.0) -> np.ndarray:
    return circle(info, z, (8, 8), radius, points=12)


def _case(folder: Path, patient_id: str = "PAT001", rois: dict | None = None) -> tuple[SeriesInfo, Path]:
    """A 6-slice CT and an RTSTRUCT (Brainstem on z 1-4, Eye_L on z 2-3 unless ``rois``) in ``folder``."""
    info = write_series(folder, phantom_volume(shape=SHAPE), patient_id=patient_id)
    if rois is None:
        rois = {"Brainstem": [_disc(info, z) for z in range(1, 5)], "Eye_L": [_disc(info, z, 2.0) for z in (2, 3)]}
    path = folder / "rs.dcm"
    write_rtstruct(path, info, rois)
    return info, path


def _rows(dataset: Path) -> list[dict[str, str]]:
    with open(dataset / "import-report.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _row(rows: list[dict[str, str]], name: str, kind: str = "rtstruct") -> dict[str, str]:
    found = [r for r in rows if r["name"] == name and r["kind"] == kind]
    assert len(found) == 1, (name, rows)
    return found[0]


def _contour(ds: Dataset, roi: int, contour: int) -> Dataset:
    return ds.ROIContourSequence[roi].ContourSequence[contour]


# --- damaged contours: the ROI is reported "damaged", the others are imported -------------------------------


def test_contour_data_not_a_multiple_of_3_damages_only_its_roi(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")

    def cut(ds: Dataset) -> None:
        _contour(ds, 1, 1).ContourData = _contour(ds, 1, 1).ContourData[:-2]  # 12 points = 36 values -> 34

    edit_dicom(rs, cut)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    row = _row(_rows(tmp_path / "ds"), "Eye_L")
    assert row["status"] == "damaged" and row["case"] == "PAT001_2" and row["file"] == str(rs)
    assert "contour 2: ContourData holds 34 values, not a multiple of 3" in row["detail"]
    assert not (tmp_path / "ds" / "structuresTr" / "PAT001_2" / "Eye_L.nii.gz").exists()
    assert report.names_with("damaged") == ["Eye_L"]


@pytest.mark.parametrize(("value", "problem"), [("nan", "NaN or infinite"), ("-inf", "NaN or infinite")])
def test_non_finite_contour_data_damages_only_its_roi(tmp_path: Path, value: str, problem: str) -> None:
    _, rs = _case(tmp_path / "src")

    def poison(ds: Dataset) -> None:
        values = list(_contour(ds, 1, 0).ContourData)
        values[4] = value
        _contour(ds, 1, 0).ContourData = values

    edit_dicom(rs, poison)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    row = _row(_rows(tmp_path / "ds"), "Eye_L")
    assert row["status"] == "damaged" and f"contour 1: ContourData holds {problem} coordinates" in row["detail"]


def test_contour_without_contour_data_damages_its_roi(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")
    edit_dicom(rs, lambda ds: delattr(_contour(ds, 0, 2), "ContourData"))
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Eye_L"]}
    row = _row(_rows(tmp_path / "ds"), "Brainstem")
    assert row["status"] == "damaged" and "contour 3: no ContourData" in row["detail"]


def test_contour_item_without_referenced_roi_number(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")
    edit_dicom(rs, lambda ds: delattr(ds.ROIContourSequence[1], "ReferencedROINumber"))
    ss = read_rtstruct(rs)
    assert [(r.name, r.damage is None) for r in ss.rois] == [("Brainstem", True), ("Eye_L", False)]
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    rows = _rows(tmp_path / "ds")
    eye = _row(rows, "Eye_L")
    assert eye["status"] == "damaged" and "ROIContourSequence item 2 has no ReferencedROINumber" in eye["detail"]
    whole = _row(rows, "")  # the file-level problem has its own row
    assert whole["status"] == "damaged" and "item 2 has no ReferencedROINumber" in whole["detail"]


def test_truncated_rtstruct_imports_the_rois_before_the_cut(tmp_path: Path) -> None:
    info, rs = _case(tmp_path / "src")
    data = rs.read_bytes()
    marker = "\\".join(f"{v:.3f}" for v in _disc(info, 3, 2.0).ravel()[:6]).encode()  # Eye_L, its 2nd contour
    cut = data.rfind(marker) + len(marker) // 2
    assert 0 < cut < len(data) - 100
    truncate(rs, cut)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    eye = _row(_rows(tmp_path / "ds"), "Eye_L")
    assert eye["status"] == "damaged" and "no ReferencedROINumber" in eye["detail"]
    brainstem = read_image(tmp_path / "ds" / "structuresTr" / "PAT001_2" / "Brainstem.nii.gz").array
    assert [int(brainstem[z].any()) for z in range(6)] == [0, 1, 1, 1, 1, 0]


def test_every_truncation_of_an_rtstruct_is_reported_not_raised(tmp_path: Path) -> None:
    """Cut the file every 233 bytes: the import never raises anything but a one-line DatasetError."""
    _case(tmp_path / "ref")
    full = (tmp_path / "ref" / "rs.dcm").read_bytes()
    good = tmp_path / "good"
    _case(good, patient_id="PAT002")  # a second, intact case: the dataset can always be built
    for n, keep in enumerate(range(len(full) - 1, 131, -233)):
        src = tmp_path / f"src{n}"
        shutil.copytree(tmp_path / "ref", src / "a")
        shutil.copytree(good, src / "b")
        truncate(src / "a" / "rs.dcm", keep)
        try:
            report = import_dicom(src, tmp_path / f"ds{n}", standardise)
        except DatasetError as exc:  # only the "series not found" error of a cut series reference is allowed
            assert "RTSTRUCT references image series" in str(exc) and "\n" not in str(exc)
            continue
        assert report.cases["PAT002_2"] == ["Brainstem", "Eye_L"]
        assert (tmp_path / f"ds{n}" / "import-report.csv").is_file()


def test_rtstruct_cut_between_two_rois_flags_the_roi_without_contours(tmp_path: Path) -> None:
    """Cut after Brainstem's contour item: Eye_L is declared, has no item, and the observations are gone."""
    _, rs = _case(tmp_path / "src")

    def cut(ds: Dataset) -> None:
        del ds.ROIContourSequence[1]
        del ds.RTROIObservationsSequence

    edit_dicom(rs, cut)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    eye = _row(_rows(tmp_path / "ds"), "Eye_L")
    assert eye["status"] == "damaged" and "the file has no RTROIObservationsSequence" in eye["detail"]


def test_roi_number_declared_twice(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")
    edit_dicom(rs, lambda ds: setattr(ds.StructureSetROISequence[1], "ROINumber", 1))
    rois = read_rtstruct(rs).rois
    assert [(r.number, r.name) for r in rois] == [(1, "Brainstem"), (2, "ROI_2")]
    assert rois[0].damage == ("ROI number 1 is declared twice ('Brainstem', 'Eye_L'): which contours belong to "
                              "which is unknown")
    with pytest.raises(DatasetError, match=r"no structure could be imported \(unmapped: ROI_2; damaged: Brainstem\)"):
        import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert _row(_rows(tmp_path / "ds"), "Brainstem")["status"] == "damaged"


def test_series_reference_without_series_uid_falls_back_to_the_contoured_slices(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")

    def drop_uid(ds: Dataset) -> None:
        ref = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        del ref.SeriesInstanceUID

    edit_dicom(rs, drop_uid)
    assert read_rtstruct(rs).referenced_series_uids == ()
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem", "Eye_L"]}


def test_rtstruct_naming_no_series_at_all_is_reported_and_the_import_goes_on(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src" / "a")
    _case(tmp_path / "src" / "b", patient_id="PAT002")

    def orphan(ds: Dataset) -> None:
        del ds.ReferencedFrameOfReferenceSequence
        for item in ds.ROIContourSequence:
            for contour in item.ContourSequence:
                del contour.ContourImageSequence

    edit_dicom(rs, orphan)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT002_2": ["Brainstem", "Eye_L"]} and report.test_cases == ["PAT001_2"]
    row = next(r for r in _rows(tmp_path / "ds") if r["file"] == str(rs))
    assert row["status"] == "damaged" and "names no image series" in row["detail"]


def test_rtstruct_with_zero_rois(tmp_path: Path) -> None:
    info, _ = _case(tmp_path / "src")
    empty = tmp_path / "src" / "empty-rs.dcm"
    write_rtstruct(empty, info, {})
    assert read_rtstruct(empty).rois == ()
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem", "Eye_L"]}
    row = next(r for r in _rows(tmp_path / "ds") if r["file"] == str(empty))
    assert row["status"] == "empty" and row["case"] == "PAT001_2" and row["detail"] == "the structure set holds no ROI"


def test_contours_with_one_or_two_points_are_ignored_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    info = write_series(src, phantom_volume(shape=SHAPE))
    rois = {
        "Brainstem": [_disc(info, 2), _disc(info, 3)[:2], _disc(info, 4)[:1]],
        "Eye_L": [_disc(info, 3)[:2]],
    }
    write_rtstruct(src / "rs.dcm", info, rois)
    report = import_dicom(src, tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    rows = _rows(tmp_path / "ds")
    stem = _row(rows, "Brainstem")
    assert stem["status"] == "imported"
    assert "2 contours with fewer than 3 points ignored (contours 2, 3)" in stem["detail"]
    mask = read_image(tmp_path / "ds" / "structuresTr" / "PAT001_2" / "Brainstem.nii.gz").array
    assert [int(mask[z].any()) for z in range(6)] == [0, 0, 1, 0, 0, 0]
    eye = _row(rows, "Eye_L")
    assert eye["status"] == "empty" and "1 contour with fewer than 3 points ignored (contour 1)" in eye["detail"]


def test_contours_outside_the_series_are_reported(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")

    def shift(ds: Dataset) -> None:  # Brainstem's last contour and all of Eye_L move 50 mm up, off the series
        for roi, contour in [(0, 3), (1, 0), (1, 1)]:
            values = [float(v) for v in _contour(ds, roi, contour).ContourData]
            values[2::3] = [v + 50.0 for v in values[2::3]]
            _contour(ds, roi, contour).ContourData = [f"{v:.3f}" for v in values]

    edit_dicom(rs, shift)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem"]}
    rows = _rows(tmp_path / "ds")
    stem = _row(rows, "Brainstem")
    assert stem["status"] == "imported"
    covers = "the series covers z = 30 to 42.5 mm"
    assert f"1 of 4 contours outside the series ignored (z = 90 mm; {covers})" in stem["detail"]
    mask = read_image(tmp_path / "ds" / "structuresTr" / "PAT001_2" / "Brainstem.nii.gz").array
    assert [int(mask[z].any()) for z in range(6)] == [0, 1, 1, 1, 0, 0]
    eye = _row(rows, "Eye_L")
    assert eye["status"] == "empty"
    assert f"all 2 contours lie outside the series (z = 85, 87.5 mm; {covers})" in eye["detail"]


def test_bad_display_colour_is_ignored(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")
    edit_dicom(rs, lambda ds: setattr(ds.ROIContourSequence[0], "ROIDisplayColor", [300, 2]))
    assert read_rtstruct(rs).rois[0].colour is None
    import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["colours"] == {"Eye_L": [255, 0, 0]}


# --- files that are not usable DICOM --------------------------------------------------------------------------


def test_non_dicom_empty_and_garbage_files_are_skipped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _case(src / "a")
    (src / "notes.txt").write_text("not dicom")
    (src / "empty.dcm").write_bytes(b"")
    (src / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(0).bytes(600))
    report = import_dicom(src, tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem", "Eye_L"]}
    skipped = {Path(r["file"]).name: r["detail"] for r in _rows(tmp_path / "ds") if r["status"] == "skipped"}
    assert set(skipped) == {"notes.txt", "empty.dcm", "garbage.dcm"}
    assert skipped["notes.txt"].startswith("not a readable DICOM file")
    assert skipped["garbage.dcm"] == "not a DICOM object clinseg can use (no SOPClassUID or Modality)"
    assert report.skipped_files == 3


def test_slice_with_unusable_geometry_rejects_its_series(tmp_path: Path) -> None:
    info = write_series(tmp_path / "a", phantom_volume(shape=SHAPE))
    edit_dicom(info.files[2], lambda ds: setattr(ds, "ImageOrientationPatient", [0, 0, 0, 0, 0, 0]))
    other = write_series(tmp_path / "b", phantom_volume(shape=SHAPE), patient_id="PAT002")
    edit_dicom(other.files[1], lambda ds: setattr(ds, "PixelSpacing", [0, 0.9]))
    scan = scan_folder(tmp_path)
    assert not scan.series
    assert scan.rejected[info.series_uid] == (f"{info.files[2].name}: ImageOrientationPatient [0, 0, 0, 0, 0, 0] "
                                             "is not two orthogonal unit vectors")
    assert scan.rejected[other.series_uid] == f"{other.files[1].name}: PixelSpacing must be two positive numbers"
    assert len(scan.skipped) == 12


def test_colour_slice_skips_its_series_and_the_import_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "src"
    info, _ = _case(src / "a")
    _case(src / "b", patient_id="PAT002")

    def rgb(ds: Dataset) -> None:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = bytes(16 * 16 * 3)

    edit_dicom(info.files[2], rgb)
    report = import_dicom(src, tmp_path / "ds", standardise)
    assert report.cases == {"PAT002_2": ["Brainstem", "Eye_L"]}
    row = next(r for r in _rows(tmp_path / "ds") if r["kind"] == "series" and r["case"] == "PAT001_2")
    assert row["status"] == "skipped" and row["file"] == str(info.files[2].parent)
    assert row["detail"].startswith(f"{info.files[2]}: pixel data of shape (16, 16, 3) with 3 samples per pixel")
    assert row["detail"].endswith("case not imported; 2 drawn structures not imported")
    assert not (tmp_path / "ds" / "imagesTr" / "PAT001_2_0000.nii.gz").exists()


# --- a series rejected by the scan says why, and the report is written ---------------------------------------


def _gap(info: SeriesInfo, src: Path) -> None:
    info.files[3].unlink()  # z = 37.5 missing


def _stray(info: SeriesInfo, src: Path) -> None:
    truncate(info.files[2], info.files[2].stat().st_size - 100, out=src / "a" / "stray.dcm")  # z = 35, cut copy


def _truncated(info: SeriesInfo, src: Path) -> None:
    truncate(info.files[2], info.files[2].stat().st_size - 100)


@pytest.mark.parametrize(("damage", "reason"), [
    (_gap, "unevenly spaced slices at z = 35 to 40 mm (a gap of 5 mm; the others are 2.5 mm: missing slices?)"),
    (_stray, "two slices at the same position z = 35 mm ("),
    (_truncated, "is truncated: its pixel data holds 412 of 512 bytes"),
])
def test_rtstruct_on_a_rejected_series_says_why(tmp_path: Path, damage, reason: str) -> None:
    src = tmp_path / "src"
    info, rs = _case(src / "a")
    _case(src / "b", patient_id="PAT002")
    damage(info, src)
    with pytest.raises(DatasetError) as err:
        import_dicom(src, tmp_path / "ds", standardise)
    message = str(err.value)
    assert message.startswith(f"{rs}: RTSTRUCT references image series {info.series_uid}, whose slices were skipped: ")
    assert reason in message and "not among the readable" not in message and "--allow-missing" in message
    if damage is _stray:
        assert "stray.dcm" in message
    rows = _rows(tmp_path / "ds")  # written although the import failed
    assert not (tmp_path / "ds" / "dataset.json").exists()
    assert reason in next(r for r in rows if r["file"] == str(rs))["detail"]
    report = import_dicom(src, tmp_path / "ds2", standardise, allow_missing=True)
    assert report.cases == {"PAT002_2": ["Brainstem", "Eye_L"]}
    row = next(r for r in _rows(tmp_path / "ds2") if r["file"] == str(rs))
    assert row["status"] == "skipped" and reason in row["detail"]


def test_cli_reports_damage_without_a_traceback(tmp_path: Path) -> None:
    src = tmp_path / "src"
    info, rs = _case(src / "a")
    edit_dicom(rs, lambda ds: delattr(ds.ROIContourSequence[1], "ReferencedROINumber"))
    result = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "damaged ROIs (not imported): Eye_L" in result.output and "Traceback" not in result.output
    _gap(info, src)
    failed = runner.invoke(app, ["import-dicom", str(src), str(tmp_path / "ds2")])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "unevenly spaced slices at z = 35 to 40 mm" in failed.output.replace("\n", "")
    assert (tmp_path / "ds2" / "import-report.csv").is_file()


# --- names that become paths -----------------------------------------------------------------------------------


def _written_outside(root: Path, *inside: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(i) for i in inside)]


def test_hostile_patient_ids_stay_inside_the_dataset(tmp_path: Path) -> None:
    src, out = tmp_path / "a" / "b" / "src", tmp_path / "a" / "b" / "ds"
    _case(src / "1", patient_id="../../x")
    write_series(src / "2", phantom_volume(shape=(2, 8, 8)), patient_id="..")
    write_series(src / "3", phantom_volume(shape=(2, 8, 8)), patient_id="p1")
    write_series(src / "4", phantom_volume(shape=(2, 8, 8)), patient_id="P1")
    write_series(src / "5", phantom_volume(shape=(2, 8, 8)), patient_id="L" * 200)
    report = import_dicom(src, out, standardise)
    assert report.cases == {"x_2": ["Brainstem", "Eye_L"]}
    cases = set(report.test_cases)
    assert "anon_2" in cases and {c.lower() for c in cases} >= {"p1_2", "p1_2-2"} and len(cases) == 4
    assert all(name_problem(c) is None and len(c) <= 80 for c in cases)
    assert _written_outside(tmp_path, src, out) == []
    assert (out / "imagesTr" / "x_2_0000.nii.gz").is_file()


def test_hostile_roi_names_are_sanitised_with_keep_unmapped(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "ds"
    info = write_series(src, phantom_volume(shape=SHAPE))
    names = ["../../evil", ".hidden", "a/b:c", "", "???", "tab\tname", "y" * 200, "GTV", "gtv"]
    write_rtstruct(src / "rs.dcm", info, {n: [_disc(info, 2)] for n in names})
    report = import_dicom(src, out, standardise, keep_unmapped=True)
    folder = out / "structuresTr" / "PAT001_2"
    written = sorted(p.name.removesuffix(".nii.gz") for p in folder.iterdir())
    # an empty ROIName is named after its ROI number (the 4th ROI), like a missing one
    assert written == sorted(["evil", "hidden", "a_b_c", "ROI_4", "unnamed", "tab_name", "y" * MAX_NAME_LENGTH])
    assert all(name_problem(n) is None for n in written)
    assert _written_outside(tmp_path, src, out) == []
    rows = _rows(out)
    assert _row(rows, "GTV")["status"] == _row(rows, "gtv")["status"] == "ambiguous"  # one file on macOS/Windows
    assert report.cases["PAT001_2"] == sorted(written)


@pytest.mark.parametrize(("name", "safe"), [("CON", "CON_"), ("nul.x", "nul_.x"), ("Com1", "Com1_"),
                                            ("LPT9.nii", "LPT9_.nii"), ("CONSOLE", "CONSOLE")])
def test_windows_device_names_get_an_underscore(name: str, safe: str) -> None:
    from clinseg.io.dicom.importer import sanitise_structure_name

    assert sanitise_structure_name(name) == safe and name_problem(safe) is None


def test_formula_like_names_are_neutralised_in_the_report_only(tmp_path: Path) -> None:
    """ROI names (and patient ids) starting ``= + - @`` would run as formulas in a spreadsheet (CSV injection):
    the CSV cell gets a leading quote, the report rows and the imported names do not."""
    src, out = tmp_path / "src", tmp_path / "ds"
    info = write_series(src, phantom_volume(shape=SHAPE), patient_id="=1+2")
    names = ['=HYPERLINK("http://x","y")', "+1", "-x", "@SUM(A1)", "Brainstem"]
    write_rtstruct(src / "rs.dcm", info, {n: [_disc(info, 2)] for n in names})
    report = import_dicom(src, out, standardise, keep_unmapped=True)
    assert {r["name"] for r in report.rows if r["kind"] == "rtstruct"} == set(names)
    cells = {r["name"]: r for r in _rows(out) if r["kind"] == "rtstruct"}
    assert set(cells) == {"'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-x", "'@SUM(A1)", "Brainstem"}
    assert all(r["patient_id"] == "'=1+2" for r in cells.values())
    assert cells["'-x"]["structure"] == "'-x" and cells["'-x"]["status"] == "imported"
    assert report.cases == {"1-2_2": sorted(["HYPERLINK_http_x_y", "1", "-x", "SUM_A1", "Brainstem"])}


def test_a_rename_giving_an_unsafe_name_is_one_clear_error(tmp_path: Path) -> None:
    _, rs = _case(tmp_path / "src")
    with pytest.raises(DatasetError, match=r"rs\.dcm: structure name '\.\./x' contains '/'"):
        import_dicom(tmp_path / "src", tmp_path / "ds", lambda name: "../x")
    assert not (tmp_path / "x.nii.gz").exists() and not any(tmp_path.glob("**/x.nii.gz"))


def test_read_rtstruct_of_a_file_that_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "rs.dcm"
    path.write_bytes(os.urandom(64))
    with pytest.raises(ImageReadError) as err:
        read_rtstruct(path)
    assert str(err.value).startswith(f"{path}: not a readable DICOM file")


def test_seg_whose_frames_do_not_fit_its_series_is_skipped(tmp_path: Path) -> None:
    from clinseg.io.dicom.seg import write_seg

    info, _ = _case(tmp_path / "src")
    series = scan_folder(tmp_path / "src").series[info.series_uid]
    masks = np.zeros((1, *SHAPE), np.uint8)
    masks[0, 2:4, 4:10, 4:10] = 1
    seg = tmp_path / "src" / "seg.dcm"
    write_seg(seg, masks, ["Eye_R"], [(1, 2, 3)], series)
    edit_dicom(seg, lambda ds: setattr(ds, "Rows", 12))  # a garbled header: 12 x 16 frames on a 16 x 16 series
    report = import_dicom(tmp_path / "src", tmp_path / "ds", standardise)
    assert report.cases == {"PAT001_2": ["Brainstem", "Eye_L"]}
    row = next(r for r in _rows(tmp_path / "ds") if r["kind"] == "seg")
    assert row["status"] == "skipped" and row["file"] == str(seg)
    assert row["detail"] == (f"{seg}: its frames of shape (12, 16) do not lie on the grid of series "
                             f"{info.series_uid} (16, 16)")
