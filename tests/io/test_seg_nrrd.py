"""Issue 22: overlapping predictions as one Slicer .seg.nrrd, re-read with SimpleITK (geometry + metadata)."""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from clinseg.io import Geometry
from clinseg.io.seg_nrrd import assign_layers, read_seg_nrrd, write_seg_nrrd

# a rotated, anisotropic grid: direction columns are the voxel axes (x -> +y, y -> -x, z -> z)
GEOM = Geometry((0.8, 0.9, 2.5), (-12.0, 5.0, 30.0), (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0), (4, 6, 8))


def _masks() -> np.ndarray:
    masks = np.zeros((3, 4, 6, 8), np.uint8)
    masks[0, 1:3, 1:5, 1:7] = 1  # Eye_L
    masks[1, 2, 2:4, 3:5] = 1  # Lens_L, inside the eye: overlaps it
    masks[2, 0, 0, 0] = 1  # Brainstem, apart
    return masks


def test_overlaps_go_to_layers_and_slicer_fields_are_written(tmp_path: Path) -> None:
    masks, path = _masks(), tmp_path / "case.seg.nrrd"
    placement = write_seg_nrrd(path, masks, ["Eye_L", "Lens_L", "Brainstem"],
                               [(255, 0, 0), (0, 255, 0), (51, 102, 153)], GEOM)
    assert placement == [(0, 1), (1, 1), (0, 2)]  # the lens needs a second layer; the brainstem shares layer 0

    image = sitk.ReadImage(str(path))  # SimpleITK reads the layers as vector components
    assert image.GetSize() == (8, 6, 4) and image.GetNumberOfComponentsPerPixel() == 2
    assert image.GetSpacing() == GEOM.spacing and image.GetOrigin() == GEOM.origin
    assert np.allclose(image.GetDirection(), GEOM.direction)
    meta = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    assert meta["Segment0_Name"] == "Eye_L" and meta["Segment1_Name"] == "Lens_L"
    assert meta["Segment1_Layer"] == "1" and meta["Segment2_Layer"] == "0" and meta["Segment2_LabelValue"] == "2"
    assert meta["Segment2_Color"] == "0.2 0.4 0.6"
    assert meta["Segment0_Extent"] == "1 6 1 4 1 2"  # x0 x1 y0 y1 z0 z1
    assert meta["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert meta["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    assert "SCT^81745001^Eye~SCT^7771000^Left" in meta["Segment0_Tags"]  # Slicer terminology: eye, left
    voxels = sitk.GetArrayFromImage(image)  # (Z, Y, X, layer)
    assert voxels[2, 2, 3].tolist() == [1, 1] and voxels[0, 0, 0].tolist() == [2, 0]

    segments, geometry = read_seg_nrrd(path)
    assert geometry == GEOM
    assert [(s.name, s.colour, s.layer, s.label_value) for s in segments] == [
        ("Eye_L", (255, 0, 0), 0, 1), ("Lens_L", (0, 255, 0), 1, 1), ("Brainstem", (51, 102, 153), 0, 2)]
    for segment, mask in zip(segments, masks):
        np.testing.assert_array_equal(segment.mask, mask)


def test_segments_that_do_not_overlap_make_a_3d_file(tmp_path: Path) -> None:
    masks = _masks()[[0, 2]]
    write_seg_nrrd(tmp_path / "c.seg.nrrd", np.concatenate([masks, np.zeros_like(masks[:1])]),
                   ["A", "B", "Empty"], [(1, 2, 3)] * 3, GEOM)
    header = (tmp_path / "c.seg.nrrd").read_bytes().split(b"\n\n", 1)[0].decode()
    assert "dimension: 3" in header and "kinds: domain domain domain" in header
    assert "Segment2_Extent:=0 -1 0 -1 0 -1" in header  # Slicer's empty extent
    image = sitk.ReadImage(str(tmp_path / "c.seg.nrrd"))
    assert image.GetNumberOfComponentsPerPixel() == 1 and image.GetDimension() == 3
    segments, _ = read_seg_nrrd(tmp_path / "c.seg.nrrd")
    assert [int(s.mask.sum()) for s in segments] == [int(masks[0].sum()), 1, 0]


def test_assign_layers_is_greedy_in_order() -> None:
    a, b, c = (np.array([[[v]]]) for v in ([1, 1, 0], [0, 1, 1], [0, 0, 1]))
    assert assign_layers(np.stack([a, b, c])) == [(0, 1), (1, 1), (0, 2)]
    assert assign_layers(np.stack([a, a, a])) == [(0, 1), (1, 1), (2, 1)]
