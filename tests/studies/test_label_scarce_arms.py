"""The label-scarce arms of seed 002 in one tiny study: baseline, pretrained (shared pretraining) and
interactive (simulated clicks at test time), with the per-arm-and-size table in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clinseg.errors import ConfigError
from clinseg.phantoms import generate_phantom
from clinseg.studies.execute import execute_run
from clinseg.studies.plan import load_and_prepare
from clinseg.studies.report import build_study_report
from clinseg.studies.results import write_results

SLICE_NET = {"model": "unet2d", "model_kwargs": {"features": [4, 8]}, "patch_size": [1, 16, 16],
             "normalization": "none"}


@pytest.fixture(scope="module")
def bone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bone") / "CtBone"
    generate_phantom("ct-bone", root, cases=3, test_cases=1, seed=0, spacing_mm=8.0)
    return root


def test_baseline_pretrained_interactive_study(bone: Path, tmp_path: Path):
    spec = {
        "name": "bone-tiny", "dataset": str(bone), "validation": 1, "modes": ["patients"], "sizes": [1],
        "repeats": 1, "largest_component": False,
        "base": {**SLICE_NET, "batch_size": 2, "iterations": 3, "val_every": 3, "checkpoint_every": 1,
                 "threads": 1},
        "arms": [
            {"name": "baseline", "method": "baseline"},
            {"name": "pretrained", "method": "pretrained",
             "options": {"pretrain": {**SLICE_NET, "batch_size": 2, "iterations": 4, "val_every": 2,
                                      "val_cases": 1, "threads": 1}}},
            {"name": "interactive", "method": "interactive", "options": {"clicks": 2}},
        ],
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    study = tmp_path / "S"
    plan = load_and_prepare(path, study)
    for key in plan.runs:
        outcome = execute_run(study, key, threads=1)
        assert outcome.status == "done", outcome.error

    pretrain = study / "pretrain" / "pretrained"
    assert (pretrain / "checkpoints" / "best.pt").is_file()
    assert json.loads((pretrain / "pretrain.json").read_text())["model"] == "unet2d"
    pretrained_run = study / "runs" / "pretrained" / "patients-M1-r0"
    init = json.loads((pretrained_run / "init.json").read_text())
    assert init["num_transferred"] > 0 and any("head" in name for name in init["skipped"])
    interactive_run = study / "runs" / "interactive" / "patients-M1-r0"
    clicks = json.loads((interactive_run / "predictions" / "clicks.json").read_text())
    assert clicks["clicks"] == 2 and clicks["slice_axis"] == 0

    write_results(plan)
    build_study_report(study)
    arms = pd.read_csv(study / "arms.csv")
    assert list(arms.columns) == ["structure", "mode", "size", "baseline", "pretrained", "interactive"]
    assert arms["interactive"].between(0, 1).all()
    assert "Mean Dice per arm and size" in (study / "report.html").read_text()


def test_unknown_arm_option_is_refused_before_the_study_starts(bone: Path, tmp_path: Path):
    spec = {"name": "bad", "dataset": str(bone), "validation": 1, "modes": ["patients"], "sizes": [1],
            "base": {**SLICE_NET, "iterations": 1, "threads": 1},
            "arms": [{"name": "interactive", "method": "interactive", "options": {"click": 1}}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"arm 'interactive': options \['click'\] unknown"):
        load_and_prepare(path, tmp_path / "S")
    assert not (tmp_path / "S").exists()
