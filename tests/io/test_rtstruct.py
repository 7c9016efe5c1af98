"""RTSTRUCT: rasterising hand-made contours (holes, several per slice), and mask -> RTSTRUCT -> mask."""

from pathlib import Path

import numpy as np
import pydicom
import pytest

from clinseg.errors import ImageReadError
from clinseg.io.dicom import rasterise, read_rtstruct, scan_folder, write_rtstruct
from clinseg.io.image import Geometry
from tests.io._dicom_factory import ball, circle, phantom_volume, write_series
from tests.io._dicom_factory import write_rtstruct as factory_rtstruct

GRID = Geometry(spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0), shape=(2, 10, 10))


def _square(x0: float, y0: float, x1: float, y1: float, z_mm: float = 0.0) -> np.ndarray:
    return np.array([[x0, y0, z_mm], [x1, y0, z_mm], [x1, y1, z_mm], [x0, y1, z_mm]])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(int(a.sum() + b.sum()), 1)


def test_rasterise_fills_voxel_centres_inside_the_polygon() -> None:
    mask = rasterise([_square(1.5, 2.5, 4.5, 6.5)], GRID)  # centres x 2..4, y 3..6 on slice 0
    expected = np.zeros(GRID.shape, np.uint8)
    expected[0, 3:7, 2:5] = 1
    np.testing.assert_array_equal(mask, expected)


def test_inner_contour_is_a_hole_and_islands_add_up() -> None:
    outer, hole, island = _square(0.5, 0.5, 8.5, 8.5), _square(2.5, 2.5, 6.5, 6.5), _square(3.5, 3.5, 5.5, 5.5)
    other = _square(0.5, 0.5, 1.5, 1.5, z_mm=2.0)  # slice 1, a second structure part
    mask = rasterise([outer, hole, island, other], GRID)
    expected = np.zeros(GRID.shape, np.uint8)
    expected[0, 1:9, 1:9] = 1
    expected[0, 3:7, 3:7] = 0
    expected[0, 4:6, 4:6] = 1
    expected[1, 1:2, 1:2] = 1
    np.testing.assert_array_equal(mask, expected)
    # contours out of the volume are ignored
    assert rasterise([_square(0.5, 0.5, 3.5, 3.5, z_mm=40.0)], GRID).sum() == 0


def test_read_factory_rtstruct_with_hole(tmp_path: Path) -> None:
    info = write_series(tmp_path / "ct", phantom_volume())
    rings = [circle(info, z, (16, 16), 10.0) for z in range(2, 6)] + \
            [circle(info, z, (16, 16), 4.0, clockwise=True) for z in range(2, 6)]
    factory_rtstruct(tmp_path / "rs.dcm", info, {"Ring": rings, "Empty": []}, colours={"Ring": (1, 2, 3)})
    ss = read_rtstruct(tmp_path / "rs.dcm")
    assert ss.referenced_series_uids == (info.series_uid,)
    assert [r.name for r in ss.rois] == ["Ring", "Empty"] and ss.rois[0].colour == (1, 2, 3)
    series = scan_folder(tmp_path / "ct").series[info.series_uid]
    mask = rasterise(ss.rois[0].contours, series.geometry)
    # voxel (16, 16) is the centre of the hole, (16, 16 + 8 mm / 0.8 mm) lies in the ring
    assert mask[3, 16, 16] == 0 and mask[3, 16, 26] == 1 and mask[0].sum() == 0
    area = mask[3].sum() * 0.8 * 0.9
    assert area == pytest.approx(np.pi * (10.0**2 - 4.0**2), rel=0.06)


def test_mask_rtstruct_mask_round_trip(tmp_path: Path) -> None:
    info = write_series(tmp_path / "ct", phantom_volume())
    series = scan_folder(tmp_path / "ct").series[info.series_uid]
    ring = ball(radii=(3, 9, 9)) - ball(radii=(2, 4, 4))  # a hollow ball: holes on the middle slices
    two = ball(centre=(4, 8, 8), radii=(2, 3, 3)) | ball(centre=(4, 24, 24), radii=(2, 3, 3))  # 2 per slice
    edge = np.zeros_like(ring)
    edge[1:4, 0:5, 0:32] = 1  # touches the border of the image
    masks = np.stack([ring, two, edge, np.zeros_like(ring)])
    uid = write_rtstruct(tmp_path / "out.dcm", masks, ["Ring", "Two", "Edge", "None"],
                         [(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)], series)
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    assert ds.SOPInstanceUID == uid and ds.Modality == "RTSTRUCT" and ds.file_meta.TransferSyntaxUID
    assert ds.PatientID == info.patient_id and ds.StudyInstanceUID == info.study_uid
    assert ds.FrameOfReferenceUID == info.frame_uid
    referenced = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == info.series_uid
    contour = ds.ROIContourSequence[0].ContourSequence[0]
    assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in info.sop_uids
    ss = read_rtstruct(tmp_path / "out.dcm")
    assert [r.name for r in ss.rois] == ["Ring", "Two", "Edge"]  # the empty 'None' is left out (issue 22)
    for roi, expected in zip(ss.rois[:3], masks[:3]):
        back = rasterise(roi.contours, series.geometry)
        assert dice(back, expected) >= 0.98
        np.testing.assert_array_equal(back, expected)  # measured: exact on these phantoms


def test_not_an_rtstruct_is_a_clear_error(tmp_path: Path) -> None:
    info = write_series(tmp_path / "ct", phantom_volume(shape=(2, 8, 8)))
    with pytest.raises(ImageReadError, match="not an RTSTRUCT"):
        read_rtstruct(info.files[0])
    (tmp_path / "junk.dcm").write_text("hello")
    with pytest.raises(ImageReadError, match="junk.dcm"):
        read_rtstruct(tmp_path / "junk.dcm")


def test_head_phantom_structures_round_trip(tmp_path: Path) -> None:
    """Every organ of a simulated head (4 mm grid): mask -> RTSTRUCT -> mask, Dice >= 0.98 (measured: 1.0)."""
    from clinseg.phantoms.head_oar import simulate_case

    case = simulate_case(0, "test", 0, spacing_mm=4.0)
    info = write_series(tmp_path / "mr", case.image, spacing=case.geometry.spacing, origin=case.geometry.origin,
                        modality="MR")
    series = scan_folder(tmp_path / "mr").series[info.series_uid]
    names = list(case.clean)
    masks = np.stack([case.clean[n] for n in names]).astype(np.uint8)
    write_rtstruct(tmp_path / "rs.dcm", masks, names, [(200, 100, 0)] * len(names), series)
    rois = read_rtstruct(tmp_path / "rs.dcm").rois
    scores = {r.name: dice(rasterise(r.contours, series.geometry), m) for r, m in zip(rois, masks)}
    assert len(scores) == len(names) >= 10 and min(scores.values()) >= 0.98, scores
