"""DICOM-SEG: exact mask -> SEG -> mask round trip, readable by pydicom and highdicom."""

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from clinseg.data.structure_names import NameMap
from clinseg.errors import DatasetError
from clinseg.io.dicom import scan_folder
from clinseg.io.dicom.importer import import_dicom
from clinseg.io.dicom.seg import read_seg, read_seg_segments, write_seg
from clinseg.io.image import read_image
from tests.io._dicom_factory import ball, phantom_volume, write_series


def test_seg_round_trip_is_exact(tmp_path: Path) -> None:
    info = write_series(tmp_path / "ct", phantom_volume())
    series = scan_folder(tmp_path / "ct").series[info.series_uid]
    hollow = ball(radii=(3, 9, 9)) - ball(radii=(2, 4, 4))
    small = ball(centre=(1, 5, 5), radii=(1, 2, 2))
    masks = np.stack([hollow, small, np.zeros_like(small)])
    write_seg(tmp_path / "out" / "seg.dcm", masks, ["Ring", "Lens_L", "Nothing"],
              [(255, 0, 0), (0, 200, 0), (0, 0, 255)], series)
    ds = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY" and ds.PatientID == info.patient_id
    seg = hd.seg.segread(tmp_path / "out" / "seg.dcm")
    assert {s for _, s, _ in seg.get_source_image_uids()} == {info.series_uid}
    segments = read_seg(tmp_path / "out" / "seg.dcm", series)
    assert [name for name, _, _ in segments] == ["Ring", "Lens_L", "Nothing"]
    for (_, colour, mask), expected in zip(segments, masks):
        np.testing.assert_array_equal(mask, expected)
    assert segments[0][1] == pytest.approx((255, 0, 0), abs=2)  # via CIELab
    uid, _ = read_seg_segments(tmp_path / "out" / "seg.dcm", scan_folder(tmp_path))
    assert uid == info.series_uid


def test_import_reads_seg_objects_and_reports_a_missing_series(tmp_path: Path) -> None:
    info = write_series(tmp_path / "src" / "ct", phantom_volume(), patient_id="P7", series_number=3)
    series = scan_folder(tmp_path / "src").series[info.series_uid]
    eye = ball(radii=(2, 5, 5))
    write_seg(tmp_path / "src" / "seg.dcm", eye[None], ["Globe_L"], [(10, 20, 30)], series)
    report = import_dicom(tmp_path / "src", tmp_path / "ds", NameMap.from_mapping({"Eye_L": ["Globe_L"]}).standardise)
    assert report.cases == {"P7_3": ["Eye_L"]}
    np.testing.assert_array_equal(read_image(tmp_path / "ds" / "structuresTr" / "P7_3" / "Eye_L.nii.gz").array, eye)
    # the same SEG without its series: a clear error naming the file, or a skip with --allow-missing
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "seg.dcm").write_bytes((tmp_path / "src" / "seg.dcm").read_bytes())
    write_series(tmp_path / "lonely" / "other", phantom_volume(shape=(2, 8, 8)))
    with pytest.raises(DatasetError, match="seg.dcm.*not among"):
        import_dicom(tmp_path / "lonely", tmp_path / "ds2")
