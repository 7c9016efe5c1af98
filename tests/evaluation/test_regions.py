"""BRATS region evaluation: whole/core/enhancing from per-structure masks, empty regions, the CLI option."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.evaluate import evaluate_predictions, evaluate_to_folder
from clinseg.evaluation.regions import (
    REGION_PRESETS,
    Region,
    get_regions,
    region_mask,
    region_structures,
)
from clinseg.io import Geometry, write_image

GEOM = Geometry(spacing=(1.0, 1.0, 1.0), shape=(4, 6, 6))
LABELS = {"background": 0, "necrosis": 1, "oedema": 2, "enhancing": 3}
NAMES = ("necrosis", "oedema", "enhancing")


def _reference(enhancing: bool) -> np.ndarray:
    """Slabs along x: oedema x 0-1 (48 voxels), necrosis x 2 (24), enhancing x 3-4 (48) or oedema there."""
    labels = np.zeros(GEOM.shape, dtype=np.uint8)
    labels[..., 0:2] = 2
    labels[..., 2] = 1
    labels[..., 3:5] = 3 if enhancing else 2
    return labels


def _write_prediction(pred: Path, case: str, labels: np.ndarray) -> None:
    for value, name in enumerate(NAMES, start=1):
        write_image(labels == value, GEOM, pred / case / f"{name}.nii.gz")
    write_image(labels, GEOM, pred / f"{case}.nii.gz")


@pytest.fixture
def brats(tmp_path: Path) -> Path:
    """Test cases c0 (with enhancing tumour) and c1 (without), as label maps."""
    root = tmp_path / "brats"
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "T1"}, "labels": LABELS, "label_mode": "multiclass", "file_ending": ".nii.gz"}))
    for case, enhancing in (("c0", True), ("c1", False)):
        write_image(np.zeros(GEOM.shape, np.float32), GEOM, root / "imagesTs" / f"{case}_0000.nii.gz")
        write_image(_reference(enhancing), GEOM, root / "labelsTs" / f"{case}.nii.gz")
    return root


def test_region_table_and_masks() -> None:
    assert [(r.name, sorted(r.labels)) for r in get_regions("brats")] == [
        ("whole", [1, 2, 3]), ("core", [1, 3]), ("enhancing", [3])]
    members = region_structures(REGION_PRESETS["brats"], {"necrosis": 1, "oedema": 2, "enhancing": 3})
    assert members == {"whole": ("necrosis", "oedema", "enhancing"), "core": ("necrosis", "enhancing"),
                       "enhancing": ("enhancing",)}
    masks = np.array([[[[1, 0, 0, 0]]], [[[0, 1, 0, 0]]], [[[0, 0, 1, 0]]]])  # necrosis, oedema, enhancing
    assert region_mask(masks, NAMES, members["core"]).astype(int).tolist() == [[[1, 0, 1, 0]]]
    with pytest.raises(ConfigError, match="unknown region set 'bratz'"):
        get_regions("bratz")
    with pytest.raises(DatasetError, match=r"region 'enhancing' uses label value\(s\) \[3\], which no structure"):
        region_structures([Region("enhancing", frozenset({3}))], {"tumour": 1, "oedema": 2})


def test_brats_regions_by_hand_and_empty_enhancing(brats: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    p0 = _reference(True)
    p0[..., 4] = 1  # half of the enhancing core (x = 4) predicted as necrosis
    _write_prediction(pred, "c0", p0)
    _write_prediction(pred, "c1", _reference(False))  # no enhancing, correctly
    metrics, summary = evaluate_to_folder(pred, brats, tmp_path / "eval", regions="brats")
    assert list(metrics.structure) == ["whole", "core", "enhancing"] * 2
    by = metrics.set_index(["case", "structure"])
    assert by.loc[("c0", "whole"), "dice"] == 1.0 and by.loc[("c0", "core"), "dice"] == 1.0
    assert by.loc[("c0", "enhancing"), "dice"] == pytest.approx(2 * 24 / (24 + 48))
    assert by.loc[("c0", "enhancing"), "sensitivity"] == pytest.approx(0.5)
    assert by.loc[("c0", "enhancing"), "hd95"] == pytest.approx(1.0)  # the missed x = 4 slab is 1 mm away
    # c1: empty reference and empty prediction: Dice 1, HD95 0 (BRATS convention), still counted
    assert by.loc[("c1", "enhancing"), "dice"] == 1.0 and by.loc[("c1", "enhancing"), "hd95"] == 0.0
    assert math.isnan(by.loc[("c1", "enhancing"), "sensitivity"]) and by.loc[("c1", "enhancing"), "delineated"]
    assert summary.set_index("structure").loc["enhancing", "dice_mean"] == pytest.approx((2 / 3 + 1) / 2)
    written = pd.read_csv(tmp_path / "eval" / "metrics.csv")
    assert list(written.structure) == ["whole", "core", "enhancing"] * 2

    # a false-positive enhancing region where the reference has none: Dice 0, HD95 undefined (NaN)
    p1 = _reference(False)
    p1[0, 0, 4] = 3
    _write_prediction(pred, "c1", p1)
    row = evaluate_predictions(pred, brats, regions="brats").set_index(["case", "structure"]).loc[("c1", "enhancing")]
    assert row.dice == 0.0 and math.isnan(row.hd95)
    # without regions: per-label rows, as before
    assert list(evaluate_predictions(pred, brats).structure) == list(NAMES) * 2


def test_regions_cli_option(brats: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for case, enhancing in (("c0", True), ("c1", False)):
        _write_prediction(pred, case, _reference(enhancing))
    result = CliRunner().invoke(app, ["evaluate", str(pred), str(brats), "--out", str(tmp_path / "ev"),
                                      "--regions", "brats"])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(tmp_path / "ev" / "summary.csv").structure) >= {"whole", "core", "enhancing"}
    bad = CliRunner().invoke(app, ["evaluate", str(pred), str(brats), "--out", str(tmp_path / "ev2"),
                                   "--regions", "nope"])
    assert bad.exit_code == 1 and "unknown region set 'nope'" in bad.output
