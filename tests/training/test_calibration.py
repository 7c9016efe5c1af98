"""Thresholds chosen on the validation cases (``calibrate: true``): the choice on a network whose output is
known, the run's thresholds.json, its use by predict, and the errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from clinseg.data.loading import CaseData
from clinseg.errors import CheckpointError, ConfigError
from clinseg.inference.predictor import Predictor
from clinseg.io.image import Geometry
from clinseg.training.calibration import THRESHOLDS_FILE, choose_thresholds, read_thresholds
from clinseg.training.config import TrainConfig
from clinseg.training.run import train

TINY = dict(model="resfcn3d", model_kwargs={"features": [4, 4, 4], "blocks": 1}, patch_size=[8, 8, 8],
            batch_size=2, val_cases=1, val_every=2, checkpoint_every=2, threads=1, device="cpu")


def _identity_network() -> torch.nn.Module:
    """A 1x1x1 convolution whose logit for class 0 is the image and for class 1 minus the image."""
    conv = torch.nn.Conv3d(1, 2, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1, 1))
        conv.bias.zero_()
    return conv.eval()


def _case(logits: np.ndarray, target: np.ndarray, annotated: tuple[bool, bool]) -> CaseData:
    return CaseData("c", logits[None].astype(np.float32), target.astype(np.uint8), np.array(annotated),
                    Geometry(spacing=(1.0, 1.0, 1.0), shape=logits.shape))


def test_the_lowest_threshold_that_drops_the_margin_is_chosen() -> None:
    # an object (logit 2, p = 0.88) inside a margin (logit 0.3, p = 0.574) that 0.5 calls positive
    logits = np.full((8, 8, 8), -3.0)
    logits[2:6, 2:6, 2:6] = 0.3
    logits[3:5, 3:5, 3:5] = 2.0
    target = np.zeros((2, 8, 8, 8))
    target[0] = logits == 2.0
    chosen = choose_thresholds(_identity_network(), [_case(logits, target, (True, False))], ("object", "other"),
                               patch_size=(8, 8, 8), overlap=0.5, default=0.5, device=torch.device("cpu"))
    obj = chosen["object"]
    assert obj["threshold"] == 0.58 and obj["dice"] == 1.0 and obj["cases"] == 1
    assert obj["dice_default"] == pytest.approx(2 * 8 / (2 * 8 + 64 - 8), abs=1e-4)  # the margin is FP
    assert chosen["other"]["threshold"] == 0.5 and chosen["other"]["cases"] == 0  # not delineated: default kept
    assert math.isnan(chosen["other"]["dice"])


def test_a_calibrated_run_writes_and_applies_its_thresholds(make_dataset, tmp_path: Path) -> None:
    run, dataset = tmp_path / "run", make_dataset()
    state = train(dataset, run, TrainConfig(**TINY, calibrate=True), iterations=4)
    record = json.loads((run / THRESHOLDS_FILE).read_text())
    assert record["iteration"] == state.best_iteration
    predictor = Predictor.from_run(run)
    assert predictor.thresholds is not None and len(predictor.thresholds) == len(predictor.structures)
    assert predictor.thresholds == tuple(record["classes"][s]["threshold"] for s in predictor.structures)
    assert any(values["cases"] for values in record["classes"].values())
    for name, values in record["classes"].items():
        assert 0 < values["threshold"] < 1
        if values["cases"]:  # the chosen threshold is the best on the grid, so never worse than 0.5
            assert values["dice"] >= values["dice_default"]
    image = np.random.default_rng(0).normal(size=(1, 12, 12, 12)).astype(np.float32)
    _, probs = predictor.predict_with_probabilities(image)
    expected = np.stack([probs[n] >= np.float32(t) for n, t in enumerate(predictor.thresholds)])
    np.testing.assert_array_equal(predictor.predict(image), expected)

    # a finished run is not calibrated again; an extended one whose best checkpoint moved is
    (run / THRESHOLDS_FILE).write_text(json.dumps({**record, "classes": {
        s: {**v, "threshold": 0.25} for s, v in record["classes"].items()}}))
    train(dataset, run, None)
    assert read_thresholds(run, predictor.structures) == (0.25,) * len(predictor.structures)
    (run / THRESHOLDS_FILE).write_text(json.dumps({**record, "iteration": -1}))
    state = train(dataset, run, None)
    assert json.loads((run / THRESHOLDS_FILE).read_text())["iteration"] == state.best_iteration


def test_errors_name_the_problem(make_dataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set val_cases"):
        train(make_dataset(), tmp_path / "a", TrainConfig(**{**TINY, "val_cases": 0}, calibrate=True), iterations=1)
    with pytest.raises(ConfigError, match="label_mode multilabel"):
        TrainConfig(**TINY, calibrate=True, label_mode="multiclass").validate()
    (tmp_path / THRESHOLDS_FILE).write_text(json.dumps({"classes": {"Liver": {"threshold": 1.5}}}))
    with pytest.raises(CheckpointError, match="thresholds must lie in"):
        read_thresholds(tmp_path, ("Liver",))
    with pytest.raises(CheckpointError, match="unreadable thresholds"):
        read_thresholds(tmp_path, ("Spleen",))
