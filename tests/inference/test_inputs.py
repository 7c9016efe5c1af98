"""Issue 22: what predict reads: one file, folders of any names, nnU-Net channels, --channels."""

from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.inputs import find_cases, parse_channels
from clinseg.io import Geometry, write_image

GEOM = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))


def _images(folder: Path, *names: str) -> None:
    for name in names:
        write_image(np.zeros((2, 2, 2), np.float32), GEOM, folder / name)


def test_one_file_is_one_case(tmp_path: Path) -> None:
    _images(tmp_path, "ct.nii.gz", "case_0000.nrrd")
    assert find_cases(tmp_path / "ct.nii.gz", 1) == {"ct": [tmp_path / "ct.nii.gz"]}
    assert find_cases(tmp_path / "case_0000.nrrd", 1) == {"case": [tmp_path / "case_0000.nrrd"]}
    with pytest.raises(DatasetError, match=r"ct.nii.gz: this run reads 2 channels; .* --channels"):
        find_cases(tmp_path / "ct.nii.gz", 2)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="notes.txt: not an image file clinseg reads"):
        find_cases(tmp_path / "notes.txt", 1)
    with pytest.raises(DatasetError, match="nope: input not found"):
        find_cases(tmp_path / "nope", 1)


def test_one_channel_folders_take_any_names(tmp_path: Path) -> None:
    """TotalSegmentator's habit (ct.nii.gz, patient7.nrrd) next to nnU-Net's names; hidden files and Slicer
    segmentations are not inputs."""
    _images(tmp_path, "ct.nii.gz", "patient7.nrrd", "scan_2019.mha", "b_0000.nii.gz", ".hidden.nii.gz")
    (tmp_path / "old.seg.nrrd").write_bytes(b"NRRD0004\n")
    cases = find_cases(tmp_path, 1)
    assert cases == {"b": [tmp_path / "b_0000.nii.gz"], "ct": [tmp_path / "ct.nii.gz"],
                     "patient7": [tmp_path / "patient7.nrrd"], "scan_2019": [tmp_path / "scan_2019.mha"]}


def test_an_extra_channel_beside_channel_0_is_an_error_naming_the_file(tmp_path: Path) -> None:
    _images(tmp_path, "a_0000.nii.gz", "a_0001.nii.gz")
    with pytest.raises(DatasetError, match=r"a_0001.nii.gz: channel 1 of case 'a', but the run reads 1 channel"):
        find_cases(tmp_path, 1)


def test_the_same_case_twice_is_an_error(tmp_path: Path) -> None:
    _images(tmp_path, "ct.nii.gz", "ct.nrrd")
    with pytest.raises(DatasetError, match=r"second file for case 'ct' channel 0"):
        find_cases(tmp_path, 1)


def test_multi_channel_runs_keep_nnunet_names(tmp_path: Path) -> None:
    _images(tmp_path, "p1_0000.nii.gz", "p1_0001.nii.gz", "p2_0000.nii.gz", "p2_0001.nii.gz")
    assert list(find_cases(tmp_path, 2)) == ["p1", "p2"]
    _images(tmp_path, "ct.nii.gz")
    with pytest.raises(DatasetError, match=r"ct.nii.gz: image name must be <case>_<4-digit channel> .*--channels"):
        find_cases(tmp_path, 2)


def test_channels_name_files_in_case_folders_or_by_suffix(tmp_path: Path) -> None:
    # BraTS/TotalSegmentator style: a folder per case
    _images(tmp_path / "cases" / "p7", "t1.nii.gz", "t2.nii.gz", "seg.nii.gz")
    _images(tmp_path / "cases" / "p8", "t1.nii.gz", "t2.nii.gz")
    cases = find_cases(tmp_path / "cases", 2, ["t1.nii.gz", "t2.nii.gz"])
    assert cases == {c: [tmp_path / "cases" / c / "t1.nii.gz", tmp_path / "cases" / c / "t2.nii.gz"]
                     for c in ("p7", "p8")}
    # one case's folder
    assert list(find_cases(tmp_path / "cases" / "p7", 2, ["t1.nii.gz", "t2.nii.gz"])) == ["p7"]
    # suffixes in one folder: the case is what comes before
    _images(tmp_path / "flat", "p1_t1.nii.gz", "p1_t2.nii.gz", "p2-T1.nii.gz", "p2-T2.nii.gz")
    assert list(find_cases(tmp_path / "flat", 2, ["t1.nii.gz", "t2.nii.gz"])) == ["p1", "p2"]
    # one-channel runs too: TotalSegmentator's s0001/ct.nii.gz
    _images(tmp_path / "ts" / "s0001", "ct.nii.gz")
    assert find_cases(tmp_path / "ts", 1, ["ct.nii.gz"]) == {"s0001": [tmp_path / "ts" / "s0001" / "ct.nii.gz"]}


def test_channels_problems_name_the_case_or_file(tmp_path: Path) -> None:
    _images(tmp_path / "in" / "p1", "t1.nii.gz")
    with pytest.raises(DatasetError, match=r"case 'p1' lacks 't2.nii.gz' of 2"):
        find_cases(tmp_path / "in", 2, ["t1.nii.gz", "t2.nii.gz"])
    with pytest.raises(DatasetError, match="no file ending with flair.nii.gz"):
        find_cases(tmp_path / "in", 1, ["flair.nii.gz"])
    with pytest.raises(ConfigError, match="--channels reads a folder"):
        find_cases(tmp_path / "in" / "p1" / "t1.nii.gz", 1, ["t1.nii.gz"])
    _images(tmp_path / "dup", "p1_t1.nii.gz")
    _images(tmp_path / "dup" / "p1", "t1.nii.gz")
    with pytest.raises(DatasetError, match=r"t1.nii.gz: second file for case 'p1' channel 't1.nii.gz'"):
        find_cases(tmp_path / "dup", 1, ["t1.nii.gz"])


def test_parse_channels_by_order_or_by_name() -> None:
    assert parse_channels("t1.nii.gz, t2.nii.gz", ("T1", "T2")) == ("t1.nii.gz", "t2.nii.gz")
    assert parse_channels("T2=b.nrrd,T1=a.nrrd", ("T1", "T2")) == ("a.nrrd", "b.nrrd")
    for bad, message in (("a.nii.gz", "reads 2 channel"), ("T1=a.nii.gz,b.nii.gz", "NAME=ENDING or none"),
                         ("T1=a,FLAIR=b", "'FLAIR' is not a channel"), ("T1=a", "no ending for channel"),
                         ("x/a.nii.gz,b", "not a file-name ending"), ("a.nii.gz,A.NII.GZ", "same ending")):
        with pytest.raises(ConfigError, match=message):
            parse_channels(bad, ("T1", "T2"))
