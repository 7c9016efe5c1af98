"""``clinseg predict RUN DICOM_DIR OUT --format nifti|rtstruct|dicom-seg`` on a run trained on imported DICOM."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.inference.dicom_predict import PALETTE, structure_colours
from clinseg.io.dicom import rasterise, read_rtstruct, scan_folder
from clinseg.io.dicom.importer import import_dicom
from clinseg.io.dicom.seg import read_seg
from clinseg.io.image import read_image
from clinseg.training.config import TrainConfig
from clinseg.training.run import train
from tests.io._dicom_factory import circle, phantom_volume, write_rtstruct, write_series

runner = CliRunner()
TINY = {"model": "unet3d", "model_kwargs": {"features": [4, 8]}, "patch_size": [8, 8, 8], "batch_size": 1,
        "val_cases": 0, "threads": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run trained 2 iterations on a dataset imported from DICOM, and a DICOM folder to predict."""
    root = tmp_path_factory.mktemp("dicom_predict")
    for i in range(2):
        ct = write_series(root / "src" / f"p{i}", phantom_volume(shape=(8, 16, 16), seed=i), patient_id=f"P{i}")
        write_rtstruct(root / "src" / f"p{i}" / "rs.dcm", ct,
                       {"Brain Stem": [circle(ct, z, (8, 8), 4.0) for z in range(2, 6)],
                        "L Eye": [circle(ct, z, (4, 4), 2.0) for z in range(3, 5)]},
                       colours={"L Eye": (1, 2, 3)})
    import_dicom(root / "src", root / "ds", lambda name: {"Brain Stem": "Brainstem", "L Eye": "Eye_L"}.get(name))
    train(root / "ds", root / "run", TrainConfig(**TINY), iterations=2)
    write_series(root / "new", phantom_volume(shape=(8, 16, 16), seed=5), patient_id="NEW", series_number=5)
    return root / "run", root / "new"


def _run_with_thresholds(run: Path, tmp_path: Path, thresholds: dict[str, float]) -> Path:
    """A copy of ``run`` whose ``thresholds.json`` (what ``--calibrate`` writes) fixes what is predicted: a
    threshold near 0 gives a (body-wide) mask, one near 1 an empty one, whatever 2 iterations learned."""
    import json
    import shutil

    copy = Path(shutil.copytree(run, tmp_path / "run"))
    classes = {name: {"threshold": value} for name, value in thresholds.items()}
    (copy / "thresholds.json").write_text(json.dumps({"classes": classes, "iteration": 2}))
    return copy


def test_predict_rtstruct_seg_and_nifti_from_dicom(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from rt_utils import RTStructBuilder

    run, new = trained
    run = _run_with_thresholds(run, tmp_path, {"Brainstem": 1e-6, "Eye_L": 0.999999})
    said = {}
    for fmt in ("rtstruct", "dicom-seg", "nifti", "seg-nrrd"):
        result = runner.invoke(app, ["predict", str(run), str(new), str(tmp_path / fmt), "--format", fmt,
                                     "--device", "cpu"])
        assert result.exit_code == 0, result.output
        said[fmt] = " ".join(result.output.split())
    series = next(iter(scan_folder(new).series.values()))
    nifti = {n: read_image(tmp_path / "nifti" / "NEW_5" / f"{n}.nii.gz").array for n in ("Brainstem", "Eye_L")}
    assert nifti["Brainstem"].any() and not nifti["Eye_L"].any()
    path = tmp_path / "rtstruct" / "NEW_5" / "rtstruct.dcm"
    rs = pydicom.dcmread(path)
    assert rs.Modality == "RTSTRUCT" and rs.PatientID == "NEW"
    assert rs.Manufacturer == "clinseg" and rs.SeriesDescription == "clinseg run (unet3d)"
    assert [o.RTROIInterpretedType for o in rs.RTROIObservationsSequence] == ["ORGAN"]
    ss = read_rtstruct(path)
    assert ss.referenced_series_uids == (series.uid,)
    assert [r.name for r in ss.rois] == ["Brainstem"]  # Eye_L predicted empty: left out, and said so
    assert "no ROI for Eye_L (predicted empty" in said["rtstruct"]
    np.testing.assert_array_equal(rasterise(ss.rois[0].contours, series.geometry), nifti["Brainstem"])
    assert RTStructBuilder.create_from(str(new), str(path)).get_roi_names() == ["Brainstem"]  # rt-utils reads it
    segments = read_seg(tmp_path / "dicom-seg" / "NEW_5" / "seg.dcm", series)
    assert [name for name, _, _ in segments] == ["Brainstem", "Eye_L"]
    assert segments[1][1] == pytest.approx((1, 2, 3), abs=2)  # the dataset's colour (the clinical RTSTRUCT's)
    for name, _, mask in segments:
        np.testing.assert_array_equal(mask, nifti[name])
    from clinseg.io.seg_nrrd import read_seg_nrrd

    segs, geometry = read_seg_nrrd(tmp_path / "seg-nrrd" / "NEW_5.seg.nrrd")
    assert [s.name for s in segs] == ["Brainstem", "Eye_L"] and geometry == series.geometry
    np.testing.assert_array_equal(segs[0].mask, nifti["Brainstem"])


def test_dicom_formats_need_dicom_input(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = trained
    images = run.parent / "ds" / "imagesTr"
    result = runner.invoke(app, ["predict", str(run), str(images), str(tmp_path / "o"), "--format", "rtstruct"])
    assert result.exit_code == 1 and "must be a folder of DICOM files" in result.output.replace("\n", "")
    result = runner.invoke(app, ["predict", str(run), str(images), str(tmp_path / "o"), "--format", "png"])
    assert result.exit_code == 1 and "--format must be one of" in result.output.replace("\n", "")
    result = runner.invoke(app, ["predict", str(run), str(images), str(tmp_path / "n"), "--device", "cpu"])
    assert result.exit_code == 0, result.output  # NIfTI input: the usual layout, unchanged
    assert (tmp_path / "n" / "P0_2" / "Brainstem.nii.gz").is_file()


def test_colours_fall_back_to_a_deterministic_palette() -> None:
    assert structure_colours(["A", "B"], {"B": [1, 2, 3]}) == [PALETTE[0], (1, 2, 3)]
