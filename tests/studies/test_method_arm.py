"""The generic ``method`` arm: any `clinseg train --method` in a study, predicted with the run's own predictor."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from clinseg.studies.execute import execute_run
from clinseg.studies.plan import load_and_prepare


def test_2d3d_method_arm_runs_and_records_each_network(make_dataset, tmp_path: Path):
    root = make_dataset(cases=4)
    spec = {"name": "m", "dataset": str(root), "validation": ["case_3"], "sizes": [1], "modes": ["concentrated"],
            "base": {"model": "unet3d", "model_kwargs": {"features": [4, 8]}, "patch_size": [8, 8, 8],
                     "batch_size": 2, "iterations": 2, "val_every": 2, "checkpoint_every": 1, "threads": 1},
            "arms": [{"name": "twod3d", "method": "method",
                      "options": {"method": "2d-3d", "method_options": {"size2d": 8, "model2d_kwargs": {"features": [4, 8]}}}}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    plan = load_and_prepare(path, tmp_path / "S")
    outcome = execute_run(tmp_path / "S", plan.runs[0], threads=1)
    assert outcome.status == "done", outcome.error
    run = tmp_path / "S" / "runs" / "twod3d" / "concentrated-M1-r0"
    measures = json.loads((run / "measures.json").read_text())
    assert set(measures["networks"]) == {"axial", "coronal", "sagittal", "net3d"}
    assert (run / "evaluation" / "metrics.csv").is_file()
