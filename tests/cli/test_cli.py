"""The CLI end to end on a tiny dataset with typer's runner: validate, train, predict, evaluate, report."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.io import read_geometry, read_image

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "phantom", "train", "predict", "evaluate", "report"):
        assert command in result.output


def test_validate_ok_and_problems(make_dataset) -> None:
    root = make_dataset()
    result = runner.invoke(app, ["validate", str(root)])
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output and "Delineations per structure" in result.output
    (root / "imagesTr" / "case_0_0000.nii.gz").unlink()
    result = runner.invoke(app, ["validate", str(root)])
    assert result.exit_code == 1 and "missing channel 0" in result.output


def test_missing_dataset_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "error:" in result.output and "dataset folder not found" in result.output
    assert "Traceback" not in result.output


def test_train_predict_evaluate_report(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": "resfcn3d", "model_kwargs": {"features": [4, 4, 4], "blocks": 1}, "patch_size": [8, 8, 8],
        "batch_size": 2, "val_cases": 1, "val_every": 2, "threads": 1,
    }))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(root), "--out", str(run), "--config", str(config),
                                 "--iterations", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((run / "config.yaml").read_text())["iterations"] == 2

    pred = tmp_path / "pred"
    result = runner.invoke(app, ["predict", str(run), str(root / "imagesTs"), str(pred)])
    assert result.exit_code == 0, result.output
    for structure in ("A", "B"):
        mask_path = pred / "test_0" / f"{structure}.nii.gz"
        assert read_geometry(mask_path) == read_geometry(root / "imagesTs" / "test_0_0000.nii.gz")
        assert read_image(mask_path).array.dtype == np.uint8
    assert not [p for p in pred.iterdir() if p.name.startswith(".")]  # no temporary leftovers

    out = run / "evaluation"
    result = runner.invoke(app, ["evaluate", str(pred), str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv")
    for column in ("case", "structure", "dice", "hd95", "assd", "surface_dice", "sensitivity", "precision",
                   "volume_diff_ml", "delineated"):
        assert column in metrics.columns
    assert len(metrics) == 2 and metrics["delineated"].all()
    assert (out / "summary.csv").is_file()

    (run / "predictions").symlink_to(pred)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "Test-set evaluation" in page and page.count("data:image/png;base64") >= 4
    info = json.loads((run / "run.json").read_text())
    assert info["dataset"] == str(root.resolve()) and info["label_values"] == {"A": 1, "B": 2}


def test_predict_rejects_missing_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path), str(tmp_path), str(tmp_path / "o")])
    assert result.exit_code == 1 and "not a clinseg run folder" in result.output


def test_phantom_command_writes_a_valid_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ph"
    result = runner.invoke(app, ["phantom", "head-oar", str(out), "--cases", "2", "--test-cases", "1",
                                 "--spacing", "8"])
    assert result.exit_code == 0, result.output
    assert (out / "preview.png").is_file()
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    result = runner.invoke(app, ["phantom", "nope", str(tmp_path / "x")])
    assert result.exit_code == 1 and "unknown phantom 'nope'" in result.output


def test_two_stage_train_and_cascade_predict(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": "resfcn3d", "model_kwargs": {"features": [4, 4, 4], "blocks": 1}, "patch_size": [8, 8, 8],
        "batch_size": 2, "val_cases": 1, "val_every": 1, "threads": 1,
    }))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(root), "--out", str(run), "--config", str(config), "-n", "1",
                                 "--method", "two-stage", "--margin", "3", "--jitter", "1,4"])
    assert result.exit_code == 0, result.output
    assert "localiser: 1 iterations" in result.output and "organ: 1 iterations" in result.output
    assert yaml.safe_load((run / "organ" / "config.yaml").read_text())["sampler_kwargs"] == {"margin": 3,
                                                                                          "jitter": [1, 4]}
    result = runner.invoke(app, ["predict", str(run), str(root / "imagesTs"), str(tmp_path / "pred")])
    assert result.exit_code == 0, result.output
    assert read_geometry(tmp_path / "pred" / "test_0" / "B.nii.gz") == read_geometry(
        root / "imagesTs" / "test_0_0000.nii.gz")
    result = runner.invoke(app, ["train", str(root), "--out", str(tmp_path / "x"), "--margin", "3", "-n", "1"])
    assert result.exit_code == 1 and "method 'single' takes no option(s) ['margin']" in result.output
