"""Issue 22: evaluate label maps (nnU-Net) and mask folders with a name map (TotalSegmentator)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.evaluate import evaluate_predictions
from clinseg.io import read_image, write_image

runner = CliRunner()


def _reference(root: Path) -> tuple[np.ndarray, np.ndarray, object]:
    a = read_image(root / "structuresTs" / "test_0" / "A.nii.gz")
    b = read_image(root / "structuresTs" / "test_0" / "B.nii.gz")
    return a.array > 0, b.array > 0, a.geometry


def _dice(x: np.ndarray, y: np.ndarray) -> float:
    return 2 * float((x & y).sum()) / float(x.sum() + y.sum())


def test_nnunet_label_maps(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    a, b, geometry = _reference(root)
    labels = np.zeros(a.shape, np.uint8)
    labels[a], labels[b] = 1, 2  # the dataset's values (A: 1, B: 2); B wins the voxel both hold
    write_image(labels, geometry, tmp_path / "nnunet" / "test_0.nii.gz")
    table = evaluate_predictions(tmp_path / "nnunet", root, layout="labelmap")
    dice = dict(zip(table["structure"], table["dice"]))
    assert dice["B"] == pytest.approx(1.0) and dice["A"] == pytest.approx(_dice(a, a & ~b)) and dice["A"] < 1

    # their values differ from ours: --names maps ours to theirs, and only those are scored
    swapped = np.where(labels == 1, 7, labels).astype(np.uint8)
    write_image(swapped, geometry, tmp_path / "other" / "test_0.nrrd")
    table = evaluate_predictions(tmp_path / "other", root, layout="labelmap", names={"A": 7})
    assert table["structure"].tolist() == ["A"] and table["dice"].iloc[0] == pytest.approx(_dice(a, a & ~b))


def test_totalsegmentator_folders_with_a_name_map(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    a, b, geometry = _reference(root)
    write_image(a.astype(np.uint8), geometry, tmp_path / "ts" / "test_0" / "kidney_left.nii.gz")
    write_image(np.zeros_like(b, np.uint8), geometry, tmp_path / "ts" / "test_0" / "liver.nii.gz")
    names = tmp_path / "names.yaml"
    names.write_text("A: kidney_left\nB: liver.nii.gz\n")
    table = evaluate_predictions(tmp_path / "ts", root, layout="folder", names=names)
    assert dict(zip(table["structure"], table["dice"])) == {"A": 1.0, "B": 0.0}
    with pytest.raises(DatasetError, match=r"test_0/A.nii.gz: prediction missing for case 'test_0' structure 'A'"):
        evaluate_predictions(tmp_path / "ts", root, layout="folder")  # without the map: our own names
    names.write_text("Kidney: kidney_left\n")
    with pytest.raises(ConfigError, match=r"names.yaml: 'Kidney' not a structure of the reference dataset"):
        evaluate_predictions(tmp_path / "ts", root, layout="folder", names=names)
    with pytest.raises(ConfigError, match="--pred-layout must be one of clinseg, labelmap, folder"):
        evaluate_predictions(tmp_path / "ts", root, layout="totalseg")
    with pytest.raises(ConfigError, match="use it with --pred-layout folder or labelmap"):
        evaluate_predictions(tmp_path / "ts", root, names={"A": "x"})


def test_evaluate_cli_layouts_and_json(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    a, b, geometry = _reference(root)
    labels = np.zeros(a.shape, np.uint8)
    labels[b], labels[a] = 2, 1
    write_image(labels, geometry, tmp_path / "pred" / "test_0.nii.gz")
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(tmp_path / "pred"), str(root), "--out", str(out),
                                 "--pred-layout", "labelmap", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout holds only the JSON; messages go to stderr
    assert document["layout"] == "labelmap" and document["metrics_csv"] == str(out / "metrics.csv")
    rows = {r["structure"]: r for r in document["summary"]}
    assert rows["A"]["dice_mean"] == pytest.approx(1.0) and rows["A"]["n"] == 1
    assert rows["B"]["dice_mean"] == pytest.approx(_dice(b, b & ~a))
    assert rows["A"]["dice_std"] is None  # one case: no spread (NaN in the CSV, null in JSON)
    assert pd.read_csv(out / "summary.csv")["structure"].tolist() == ["A", "B", "mean"]

    result = runner.invoke(app, ["evaluate", str(tmp_path / "pred"), str(root), "--out", str(out),
                                 "--pred-layout", "labelmap"])  # not a terminal: the table as plain lines
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Segmentation metrics"
    assert lines[1].split("\t") == ["Structure", "n", "Dice mean ± std [95% CI]", "HD95 (mm) mean ± std"]
    assert lines[2].startswith("A\t1\t1.000 ± n/a")
