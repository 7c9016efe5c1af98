"""Issue 22: every DICOM export re-read with pydicom, highdicom and rt-utils; real codes, ROI types, the
producing model named, and no empty ROI (rt-utils 1.2.7 fails on one)."""

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sequence import Sequence as DicomSequence
rt_utils = pytest.importorskip("rt_utils", reason="rt-utils (opencv) is not importable here")
RTStructBuilder = rt_utils.RTStructBuilder

from clinseg.io.dicom import scan_folder
from clinseg.io.dicom.provenance import Provenance
from clinseg.io.dicom.rtstruct import empty_structures, write_rtstruct
from clinseg.io.dicom.seg import write_seg
from tests.io._dicom_factory import ball, phantom_volume, write_series

NAMES = ["Brainstem", "Parotid_L", "PTV_70", "Lens_R"]
COLOURS = [(200, 180, 60), (0, 150, 255), (255, 0, 0), (10, 20, 30)]


def _series_and_masks(tmp_path: Path):
    # square pixels: rt-utils 1.2.7 swaps the two PixelSpacing values when it fills contours (its own bug)
    info = write_series(tmp_path / "ct", phantom_volume(shape=(8, 32, 32)), spacing=(0.9, 0.9, 2.5))
    series = scan_folder(tmp_path / "ct").series[info.series_uid]
    masks = np.stack([ball(radii=(3, 6, 6)), ball(centre=(4, 10, 22), radii=(2, 4, 4)),
                      ball(centre=(4, 22, 10), radii=(2, 5, 5)), np.zeros((8, 32, 32), np.uint8)])
    return info, series, masks


def _same_within_a_voxel(theirs: np.ndarray, ours: np.ndarray) -> bool:
    """rt-utils fills the contour polygons with their boundary (OpenCV, rounded vertices): it holds every
    voxel of the mask and at most one more ring of voxels in the slice plane."""
    from scipy.ndimage import binary_dilation

    ring = binary_dilation(ours > 0, structure=np.ones((1, 3, 3), bool))
    return bool(np.all(theirs[ours > 0]) and not np.any(theirs & ~ring))


def test_rtstruct_types_provenance_and_no_empty_roi(tmp_path: Path) -> None:
    _, series, masks = _series_and_masks(tmp_path)
    assert empty_structures(masks, NAMES) == ["Lens_R"]
    path = tmp_path / "out" / "rtstruct.dcm"
    write_rtstruct(path, masks, NAMES, COLOURS, series, provenance=Provenance("hn-run", "dynunet"))

    ds = pydicom.dcmread(path)  # pydicom
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["Brainstem", "Parotid_L", "PTV_70"]
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence] == ["ORGAN", "ORGAN", "PTV"]
    assert all("ContourSequence" in item for item in ds.ROIContourSequence)
    assert ds.Manufacturer == "clinseg" and ds.ManufacturerModelName == "clinseg dynunet"
    assert ds.SoftwareVersions.startswith("clinseg ") and ds.SeriesDescription == "clinseg hn-run (dynunet)"
    # ROI numbers keep the mask order (the empty 4th is missing, not renumbered)
    assert [r.ROINumber for r in ds.StructureSetROISequence] == [1, 2, 3]

    rt = RTStructBuilder.create_from(str(tmp_path / "ct"), str(path))  # rt-utils reads every ROI
    assert rt.get_roi_names() == ["Brainstem", "Parotid_L", "PTV_70"]
    for n, name in enumerate(rt.get_roi_names()):
        back = np.transpose(rt.get_roi_mask_by_name(name), (2, 0, 1))  # rt-utils: (Y, X, Z), slices by position
        assert back.shape == masks[n].shape and _same_within_a_voxel(back, masks[n]), name


def test_rt_utils_fails_on_an_empty_roi_which_is_why_it_is_left_out(tmp_path: Path) -> None:
    """What the omission guards against: an ROI without ContourSequence (valid DICOM) breaks rt-utils."""
    info, series, masks = _series_and_masks(tmp_path)
    path = tmp_path / "rtstruct.dcm"
    write_rtstruct(path, masks[:1], NAMES[:1], COLOURS[:1], series)
    ds = pydicom.dcmread(path)
    roi = pydicom.Dataset()
    roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = 9, "Empty", info.frame_uid
    ds.StructureSetROISequence.append(roi)
    item = pydicom.Dataset()
    item.ReferencedROINumber, item.ROIDisplayColor = 9, [1, 2, 3]
    ds.ROIContourSequence.append(item)
    ds.save_as(path)
    rt = RTStructBuilder.create_from(str(tmp_path / "ct"), str(path))
    with pytest.raises(AttributeError):
        rt.get_roi_mask_by_name("Empty")
    assert rt.get_roi_mask_by_name("Brainstem").any()  # the ROI with contours still reads


def test_seg_segments_carry_snomed_codes_and_laterality(tmp_path: Path) -> None:
    _, series, masks = _series_and_masks(tmp_path)
    path = tmp_path / "seg.dcm"
    write_seg(path, masks, NAMES, COLOURS, series, provenance=Provenance("hn-run", "dynunet"))

    ds = pydicom.dcmread(path)  # pydicom
    assert ds.Manufacturer == "clinseg" and ds.ManufacturerModelName == "clinseg dynunet"
    assert ds.SeriesDescription == "clinseg hn-run (dynunet)"
    seg = hd.seg.segread(path)  # highdicom
    found = {}
    for number in seg.get_segment_numbers():
        d = seg.get_segment_description(number)
        modifier = d.get("SegmentedPropertyTypeModifierCodeSequence")
        found[d.SegmentLabel] = (d.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
                                 d.SegmentedPropertyTypeCodeSequence[0].CodeValue,
                                 modifier[0].CodeValue if modifier else None,
                                 d.algorithm_identification[0].AlgorithmName)
    assert found == {
        "Brainstem": ("91723000", "119238007", None, "clinseg dynunet"),
        "Parotid_L": ("91723000", "45289007", "7771000", "clinseg dynunet"),
        "PTV_70": ("309825002", "228793007", None, "clinseg dynunet"),
        "Lens_R": ("91723000", "78076003", "24028007", "clinseg dynunet"),
    }
    pixels = seg.get_pixels_by_source_instance(series.sop_instance_uids, segment_numbers=[1, 2, 3, 4],
                                               assert_missing_frames_are_empty=True, dtype=np.uint8)
    for n in range(4):
        np.testing.assert_array_equal(pixels[..., n], masks[n])


def test_an_roi_with_several_contours_per_slice_survives_rt_utils(tmp_path: Path) -> None:
    _, series, _ = _series_and_masks(tmp_path)
    two = ball(centre=(4, 8, 8), radii=(2, 3, 3)) | ball(centre=(4, 24, 24), radii=(2, 3, 3))
    path = tmp_path / "rs.dcm"
    write_rtstruct(path, two[None], ["Glnd_Submand_L"], [(1, 2, 3)], series)
    contours = pydicom.dcmread(path).ROIContourSequence[0].ContourSequence
    assert isinstance(contours, DicomSequence) and len(contours) >= 6
    back = np.transpose(RTStructBuilder.create_from(str(tmp_path / "ct"), str(path))
                        .get_roi_mask_by_name("Glnd_Submand_L"), (2, 0, 1))
    assert _same_within_a_voxel(back, two)
