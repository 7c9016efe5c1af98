"""Issue 22 end to end: predict one file, folders of any names, -i/-o, --channels; Slicer and ITK-SNAP outputs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.io import Geometry, read_geometry, read_image, write_image
from clinseg.io.colour_tables import read_colour_table

runner = CliRunner()
TINY = {"model": "unet3d", "model_kwargs": {"features": [4, 8]}, "patch_size": [8, 8, 8], "batch_size": 1,
        "iterations": 2, "val_cases": 0, "threads": 1, "device": "cpu"}
GEOM = Geometry((1.0, 1.0, 2.0), shape=(8, 10, 12))


def _invoke(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _error(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


def _train(dataset: Path, run: Path, config: Path) -> Path:
    config.write_text(yaml.safe_dump(TINY))
    _invoke("train", dataset, "--out", run, "--config", config)
    return run


@pytest.fixture(scope="module")
def one_channel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A multilabel one-channel run (structures A, B) and its dataset."""
    from tests.conftest import _blob

    root = tmp_path_factory.mktemp("one") / "ds"
    spec = {"name": "One", "channel_names": {"0": "CT"}, "labels": {"A": 1, "B": 2}, "label_mode": "multilabel",
            "file_ending": ".nii.gz"}
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(0)
    for split, cases in (("Tr", ("c0", "c1")), ("Ts", ("t0",))):
        for case in cases:
            write_image(rng.normal(size=GEOM.shape).astype(np.float32), GEOM, root / f"images{split}" / f"{case}_0000.nii.gz")
            write_image(_blob(GEOM.shape, (4, 5, 4), 2), GEOM, root / f"structures{split}" / case / "A.nii.gz")
            write_image(_blob(GEOM.shape, (4, 5, 6), 2), GEOM, root / f"structures{split}" / case / "B.nii.gz")
    return root, _train(root, root.parent / "run", root.parent / "tiny.yaml")


@pytest.fixture(scope="module")
def two_channels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A multiclass two-channel run (T1, T2; classes 'necrosis core' = 1, enhancing = 4) and its dataset."""
    root = tmp_path_factory.mktemp("two") / "ds"
    spec = {"name": "Two", "channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, "core": 1,
            "enhancing": 4}, "label_mode": "multiclass", "file_ending": ".nii.gz",
            "colours": {"enhancing": [250, 10, 20]}}
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(1)
    for case in ("c0", "c1"):
        for channel in range(2):
            write_image(rng.normal(size=GEOM.shape).astype(np.float32), GEOM,
                        root / "imagesTr" / f"{case}_{channel:04d}.nii.gz")
        labels = np.zeros(GEOM.shape, np.uint8)
        labels[2:5, 2:6, 2:6], labels[3, 3:5, 7:9] = 1, 4
        write_image(labels, GEOM, root / "labelsTr" / f"{case}.nii.gz")
    return root, _train(root, root.parent / "run", root.parent / "tiny.yaml")


def test_one_file_and_folders_of_any_names(one_channel: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = one_channel
    image = root / "imagesTs" / "t0_0000.nii.gz"
    single = tmp_path / "in" / "ct.nii.gz"
    single.parent.mkdir()
    shutil.copy(image, single)
    shutil.copy(image, tmp_path / "in" / "patient7.nii.gz")

    said = _invoke("predict", run, single, tmp_path / "one")  # TotalSegmentator's habit: one file
    assert "predicted 1 case(s)" in said
    assert read_geometry(tmp_path / "one" / "ct" / "A.nii.gz") == read_geometry(single)
    _invoke("predict", run, tmp_path / "in", tmp_path / "folder")  # a folder of any names
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["ct", "patient7"]
    _invoke("predict", run, "-i", tmp_path / "in", "-o", tmp_path / "io")  # nnU-Net's -i/-o
    _invoke("predict", run, "-o", tmp_path / "mixed", tmp_path / "in")
    assert (tmp_path / "io" / "patient7" / "B.nii.gz").is_file() and (tmp_path / "mixed" / "ct").is_dir()
    assert "give the input and the output once each" in _error("predict", run, "-i", single, tmp_path / "x",
                                                               tmp_path / "y")
    assert "give the input and the output once each" in _error("predict", run, single)
    # TotalSegmentator's dataset layout: a folder per case, one file named by --channels
    (tmp_path / "cases" / "s0001").mkdir(parents=True)
    shutil.copy(image, tmp_path / "cases" / "s0001" / "ct.nii.gz")
    _invoke("predict", run, tmp_path / "cases", tmp_path / "ts", "--channels", "ct.nii.gz")
    assert (tmp_path / "ts" / "s0001" / "A.nii.gz").is_file()


def test_extra_channel_beside_channel_0_still_names_the_file(one_channel: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    root, run = one_channel
    shutil.copytree(root / "imagesTs", tmp_path / "in")
    extra = tmp_path / "in" / "t0_0001.nii.gz"
    shutil.copy(tmp_path / "in" / "t0_0000.nii.gz", extra)
    assert f"{extra}: channel 1 of case 't0', but the run reads 1 channel(s)" in _error(
        "predict", run, tmp_path / "in", tmp_path / "out")


def test_seg_nrrd_of_overlapping_structures(one_channel: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = one_channel
    said = _invoke("predict", run, root / "imagesTs", tmp_path / "out", "--format", "seg-nrrd")
    assert "wrote 1 Slicer segmentation(s)" in said
    masks = [read_image(tmp_path / "out" / "t0" / f"{n}.nii.gz").array for n in ("A", "B")]
    image = sitk.ReadImage(str(tmp_path / "out" / "t0.seg.nrrd"))
    assert image.GetMetaData("Segment0_Name") == "A" and image.GetMetaData("Segment1_Name") == "B"
    assert image.GetOrigin() == read_geometry(root / "imagesTs" / "t0_0000.nii.gz").origin
    voxels = sitk.GetArrayFromImage(image)
    voxels = voxels[..., None] if voxels.ndim == 3 else voxels
    for n, mask in enumerate(masks):
        layer, value = int(image.GetMetaData(f"Segment{n}_Layer")), int(image.GetMetaData(f"Segment{n}_LabelValue"))
        np.testing.assert_array_equal(voxels[..., layer] == value, mask > 0)
    assert not (tmp_path / "out" / "labels.ctbl").exists()  # overlapping classes: no label maps, no tables


def test_channels_for_a_multi_channel_run_and_label_map_tables(two_channels: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    root, run = two_channels
    case = tmp_path / "in" / "p7"
    case.mkdir(parents=True)
    shutil.copy(root / "imagesTr" / "c0_0000.nii.gz", case / "t1.nii.gz")
    shutil.copy(root / "imagesTr" / "c0_0001.nii.gz", case / "t2.nii.gz")
    _invoke("predict", run, case, tmp_path / "out", "--channels", "T2=t2.nii.gz,T1=t1.nii.gz")
    assert sorted(p.name for p in (tmp_path / "out" / "p7").iterdir()) == ["core.nii.gz", "enhancing.nii.gz"]
    labels = read_image(tmp_path / "out" / "p7.nii.gz").array
    assert set(np.unique(labels)) <= {0, 1, 4}
    assert read_colour_table(tmp_path / "out" / "labels.ctbl") == [
        (1, "core", (230, 25, 75)), (4, "enhancing", (250, 10, 20))]  # the dataset's colour, else the palette
    assert read_colour_table(tmp_path / "out" / "labels_itksnap.txt") == read_colour_table(
        tmp_path / "out" / "labels.ctbl")
    assert "reads 2 channels" in _error("predict", run, case / "t1.nii.gz", tmp_path / "x")
    assert "'FLAIR' is not a channel of this run (T1, T2)" in _error(
        "predict", run, case, tmp_path / "x", "--channels", "T1=t1.nii.gz,FLAIR=t2.nii.gz")
