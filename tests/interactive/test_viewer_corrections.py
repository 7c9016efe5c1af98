"""Which case id corrections are saved under (:func:`free_case_id`): an existing case's image is never
replaced. Tiny images written in ``tmp_path``, no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import DatasetError
from clinseg.interactive.viewer.corrections import free_case_id, same_image, save_case
from clinseg.io import Geometry, write_image

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), shape=(2, 3, 4))


def _image(path: Path, value: float, geometry: Geometry = GEOM) -> Path:
    write_image(np.full(geometry.shape, value, np.float32), geometry, path)
    return path


def test_same_image_compares_voxels_and_geometry(tmp_path: Path) -> None:
    a = _image(tmp_path / "a.nii.gz", 1.0)
    assert same_image(a, a) and same_image(_image(tmp_path / "b.nii.gz", 1.0), a)
    assert same_image(_image(tmp_path / "c.nrrd", 1.0), a)  # re-encoded, same voxels and grid
    assert not same_image(_image(tmp_path / "d.nii.gz", 2.0), a)
    assert not same_image(_image(tmp_path / "e.nii.gz", 1.0, Geometry(spacing=(1.0, 1.0, 3.0), shape=(2, 3, 4))), a)


def test_free_case_id_keeps_free_and_same_image_ids_and_skips_taken_ones(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    mine = [_image(tmp_path / "mine_0000.nii.gz", 1.0)]
    assert free_case_id(root, "p", mine, ".nii.gz") == "p"  # no dataset yet
    _image(root / "imagesTr" / "p_0000.nii.gz", 1.0)
    assert free_case_id(root, "p", mine, ".nii.gz") == "p"  # holds this very image: an update
    _image(root / "imagesTr" / "p_0000.nii.gz", 5.0)
    assert free_case_id(root, "p", mine, ".nii.gz") == "p_2"  # another image
    _image(root / "imagesTr" / "p_2_0000.nii.gz", 6.0)
    assert free_case_id(root, "p", mine, ".nii.gz") == "p_3"
    (root / "structuresTr" / "q").mkdir(parents=True)  # masks without an image: taken
    assert free_case_id(root, "q", mine, ".nii.gz") == "q_2"
    _image(root / "imagesTs" / "t_0000.nii.gz", 1.0)  # a test case, even of the same image: taken
    assert free_case_id(root, "t", mine, ".nii.gz") == "t_2"
    _image(root / "labelsTr" / "l.nii.gz", 1.0)
    assert free_case_id(root, "l", mine, ".nii.gz") == "l_2"
    assert free_case_id(root, "listed", mine, ".nii.gz", {"listed": {"weak_labels": {"tumour": True}}}) == "listed_2"
    two = [mine[0], _image(tmp_path / "mine_0001.nii.gz", 2.0)]
    _image(root / "imagesTr" / "m_0000.nii.gz", 1.0)  # one channel of a two-channel image: not the same
    assert free_case_id(root, "m", two, ".nii.gz") == "m_2"


def test_save_case_refuses_unsafe_case_ids_and_reports_the_id_used(tmp_path: Path) -> None:
    image = _image(tmp_path / "x_0000.nii.gz", 1.0)
    mask = {"A": np.ones(GEOM.shape, np.uint8)}
    for bad in ("../p", "a/b", ".p", ""):
        with pytest.raises(DatasetError, match="case id"):
            save_case(tmp_path / "ds", bad, image, ("CT",), ("A",), mask, GEOM)
    assert not (tmp_path / "ds").exists()
    _image(tmp_path / "ds" / "imagesTr" / "p_0000.nii.gz", 9.0)
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"A": 1}, "label_mode": "multilabel", "file_ending": ".nii.gz"}))
    saved = save_case(tmp_path / "ds", "p", image, ("CT",), ("A",), mask, GEOM)
    assert (saved.case_id, saved.requested, saved.renamed) == ("p_2", "p", True)
    assert saved.files[0] == tmp_path / "ds" / "imagesTr" / "p_2_0000.nii.gz"
    assert not (tmp_path / "ds" / "structuresTr" / "p").exists()
