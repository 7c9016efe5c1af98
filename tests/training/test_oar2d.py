"""``--method oar2d`` (seed 001 chapter 4) end to end on a tiny head phantom: organs merged, voxel-level
unknowns, class-centred batches, then ``predict --ensemble --postprocess anatomy``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import load_dataset
from clinseg.errors import ConfigError
from clinseg.inference.organs import OrganPipeline, ensemble_runs, uses_organs
from clinseg.inference.predictor import Predictor
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom
from clinseg.training.config import TrainConfig
from clinseg.training.methods import run_method
from clinseg.training.oar2d import oar2d_config

TINY = TrainConfig(model_kwargs={"features": [4, 8]}, batch_size=9, iterations=2, val_cases=1, val_every=2,
                   checkpoint_every=2, threads=1, device="cpu", seed=0)
ORGANS = ("Brain", "Brainstem", "Hippocampus", "Eye", "Lens", "OpticNrv", "OpticChiasm", "Pituitary")


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oar") / "Head"
    return generate_phantom("head-oar", out, cases=3, test_cases=1, seed=0, spacing_mm=4.0, structures="seed001",
                            preview=False)


@pytest.fixture(scope="module")
def runs(head: Path) -> dict[str, Path]:
    out = {}
    for plane in ("axial", "coronal"):
        run = head.parent / f"run-{plane}"
        run_method("oar2d", head, run, dataclasses.replace(TINY), plane=plane, size=48)
        out[plane] = run
    return out


def test_config_sets_the_method(head: Path) -> None:
    spec = load_dataset(head).spec
    cfg = oar2d_config(TINY, spec, "coronal", 48)
    assert cfg.patch_size == [48, 1, 48] and cfg.model_kwargs == {"features": [4, 8], "plane": "coronal"}
    assert (cfg.loss, cfg.sampler, cfg.unknowns, cfg.merge_bilateral) == ("adaptive_target", "class-centred",
                                                                         "voxel", True)
    assert [ORGANS[k] for k in cfg.sampler_kwargs["two_sided"]] == ["Hippocampus", "Eye", "Lens", "OpticNrv"]
    per_class = oar2d_config(dataclasses.replace(TINY, unknowns="class"), spec, "axial")
    assert per_class.unknowns == "class" and per_class.patch_size == [1, 96, 96]
    with pytest.raises(ConfigError, match="plane must be"):
        oar2d_config(TINY, spec, "oblique")
    with pytest.raises(ConfigError, match="set unknowns"):
        dataclasses.replace(TINY, loss="adaptive_target", label_mode="multilabel").validate()


def test_runs_output_organs(runs: dict[str, Path]) -> None:
    info = json.loads((runs["axial"] / "run.json").read_text())
    assert tuple(info["outputs"]) == ORGANS and len(info["structures"]) == 12
    assert info["relations"]["bilateral"]["Eye"] == ["Eye_L", "Eye_R"]
    assert uses_organs(runs["axial"])
    predictor = Predictor.from_run(runs["axial"])
    assert predictor.structures == ORGANS and predictor.model.out_channels == 8
    metrics = [json.loads(line) for line in (runs["coronal"] / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["iteration"] == 2 and "val_dice/Eye" in metrics[-1]


def test_ensemble_with_anatomy_writes_dataset_structures(head: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["predict", str(runs["axial"]), str(head / "imagesTs"), str(out),
                                      "--ensemble", str(runs["coronal"]), "--postprocess", "anatomy"])
    assert result.exit_code == 0, result.output
    assert "majority vote of 2 runs" in result.output
    names = sorted(p.name.removesuffix(".nii.gz") for p in (out / "head_test_000").iterdir())
    assert names == sorted(load_dataset(head).spec.structures)
    # without --postprocess, a merged run's organs are still split into sides
    plain = tmp_path / "plain"
    assert CliRunner().invoke(app, ["predict", str(runs["axial"]), str(head / "imagesTs"), str(plain)]).exit_code == 0
    assert (plain / "head_test_000" / "Eye_L.nii.gz").is_file()


def test_pipeline_votes_and_splits(runs: dict[str, Path], head: Path) -> None:
    pipeline = OrganPipeline.from_runs([runs["axial"], runs["coronal"]], "none")
    assert pipeline.structures == load_dataset(head).spec.structures
    shape = read_image(next((head / "imagesTs").iterdir())).array.shape
    outputs = np.zeros((8,) + shape, np.uint8)
    outputs[3, 10, 10, 5] = 1  # one voxel of Eye
    organs = pipeline.organ_masks(pipeline.predictors[0], outputs)
    assert set(organs) == set(ORGANS) and [o for o, m in organs.items() if m.any()] == ["Eye"]
    assert ensemble_runs("a", ["b,c", "a"]) == [Path("a"), Path("b"), Path("c")]
    with pytest.raises(ConfigError, match="--disable-rule switches off"):
        from clinseg.cli.train import _organ_pipeline

        _organ_pipeline([runs["axial"]], "none", ["eyes"], "best", "cpu")


def test_dicom_series_gets_the_same_pipeline(head: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    """A DICOM series of a test image, voted and post-processed into an RTSTRUCT of the dataset's structures,
    equals the pipeline's output on the NIfTI image; a merged run alone still splits sides."""
    from clinseg.io.dicom import rasterise, read_rtstruct, scan_folder
    from tests.io._dicom_factory import write_series

    image = read_image(head / "imagesTs" / "head_test_000_0000.nii.gz")
    assert np.all(image.array == np.round(image.array)) and image.array.min() >= 0  # stored exactly as uint16
    write_series(tmp_path / "dicom", image.array, spacing=image.geometry.spacing, origin=image.geometry.origin,
                 modality="MR", intercept=0.0, patient_id="HEAD")
    series = next(iter(scan_folder(tmp_path / "dicom").series.values()))
    common = ["--ensemble", str(runs["coronal"]), "--postprocess", "anatomy", "--device", "cpu"]
    for source, out, extra in ((head / "imagesTs", "nifti", []), (tmp_path / "dicom", "rtstruct",
                                                                   ["--format", "rtstruct"])):
        result = CliRunner().invoke(app, ["predict", str(runs["axial"]), str(source), str(tmp_path / out),
                                          *common, *extra])
        assert result.exit_code == 0, result.output
    assert "majority vote of 2 runs, post-processing: anatomy" in " ".join(result.output.split())
    rois = read_rtstruct(tmp_path / "rtstruct" / "HEAD_2" / "rtstruct.dcm").rois
    spec = load_dataset(head).spec
    predicted = [s for s in spec.structures
                 if (read_image(tmp_path / "nifti" / "head_test_000" / f"{s}.nii.gz").array > 0).any()]
    assert [r.name for r in rois] == predicted  # a structure predicted empty gets no ROI (issue 22)
    for roi in rois:  # contours of the same masks (a contour round trip of small masks is not exact)
        nifti = read_image(tmp_path / "nifti" / "head_test_000" / f"{roi.name}.nii.gz").array > 0
        contour = rasterise(roi.contours, series.geometry) > 0
        assert abs(int(contour.sum()) - int(nifti.sum())) <= max(4, 0.2 * nifti.sum()), roi.name
    as_nifti = CliRunner().invoke(app, ["predict", str(runs["axial"]), str(tmp_path / "dicom"),
                                        str(tmp_path / "dn"), *common])
    assert as_nifti.exit_code == 0, as_nifti.output
    for name in spec.structures:  # the same image and geometry: the same voxels
        np.testing.assert_array_equal(read_image(tmp_path / "dn" / "HEAD_2" / f"{name}.nii.gz").array,
                                      read_image(tmp_path / "nifti" / "head_test_000" / f"{name}.nii.gz").array)
    plain = CliRunner().invoke(app, ["predict", str(runs["axial"]), str(tmp_path / "dicom"), str(tmp_path / "p"),
                                     "--device", "cpu"])
    assert plain.exit_code == 0, plain.output
    assert sorted(p.name for p in (tmp_path / "p" / "HEAD_2").iterdir()) == sorted(
        f"{s}.nii.gz" for s in spec.structures)


def test_study_anatomy_arm_post_processes_finished_arms(head: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from clinseg.studies.arms import ARM_METHODS, ArmContext

    study = tmp_path / "study"
    for arm, run in runs.items():
        shutil.copytree(run, study / "runs" / arm / "k")
    (study / "runs" / "axial" / "k" / "done.json").write_text("{}")
    context = ArmContext(head, head / "imagesTs", study / "runs" / "final" / "k", study / "runs" / "final" / "k" /
                         "predictions", TINY, {"of": ["axial", "coronal"]}, study_dir=study, arm="final")
    with pytest.raises(ConfigError, match="not finished"):
        ARM_METHODS.get("anatomy")(context)
    (study / "runs" / "coronal" / "k" / "done.json").write_text("{}")
    ARM_METHODS.get("anatomy")(context)
    written = sorted(p.name for p in (context.predictions_dir / "head_test_000").iterdir())
    assert len(written) == 12 and "OpticNrv_R.nii.gz" in written
    assert json.loads((context.run_dir / "measures.json").read_text())["post-processed"] == "axial + coronal"
    with pytest.raises(ConfigError, match="options \\['vote'\\] unknown"):
        ARM_METHODS.get("anatomy")(dataclasses.replace(context, options={"of": ["axial"], "vote": 1}))
