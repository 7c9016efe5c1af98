"""Brain-tumour arms in a study: hierarchical voting of other arms, scored in the BRATS regions."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clinseg.phantoms import generate_phantom
from clinseg.studies.execute import execute_run
from clinseg.studies.plan import load_and_prepare
from clinseg.studies.results import write_results


@pytest.fixture(scope="module")
def brain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("brain") / "BrainTumour"
    generate_phantom("brain-tumour", root, cases=4, test_cases=1, seed=0, spacing_mm=8.0, preview=False)
    return root


def _spec(brain: Path, tmp_path: Path, arms: list[dict]) -> Path:
    spec = {"name": "vote", "dataset": str(brain), "validation": 1, "modes": ["patients"], "sizes": [2],
            "regions": "brats", "largest_component": False,
            "base": {"model": "unet3d", "model_kwargs": {"features": [4, 8]}, "patch_size": [8, 8, 8],
                     "batch_size": 2, "iterations": 2, "val_every": 2, "checkpoint_every": 1, "threads": 1,
                     "normalization": "median"},
            "arms": arms}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_vote_arm_merges_other_arms_and_scores_brats_regions(brain: Path, tmp_path: Path):
    arms = [{"name": "a", "method": "baseline"}, {"name": "b", "method": "baseline", "config": {"lr": 0.01}},
            {"name": "c", "method": "baseline", "config": {"lr": 0.003}},
            {"name": "voted", "method": "vote", "options": {"of": ["a", "b", "c"], "thresholds": [0.4, 0.3, 0.4]}}]
    plan = load_and_prepare(_spec(brain, tmp_path, arms), tmp_path / "S")
    for key in plan.runs:
        outcome = execute_run(tmp_path / "S", key, threads=1)
        assert outcome.status == "done", outcome.error
    write_results(plan)
    results = pd.read_csv(tmp_path / "S" / "results.csv")
    assert set(results["structure"]) == {"whole", "core", "enhancing"}
    record = json.loads((tmp_path / "S" / "study.json").read_text())
    assert record["scored"] == ["whole", "core", "enhancing"]  # the report's row order
    assert set(results["arm"]) == {"a", "b", "c", "voted"}
    voted = tmp_path / "S" / "runs" / "voted" / "patients-M2-r0" / "predictions"
    assert {p.name for p in voted.iterdir() if p.is_dir()} == {"brats_test_000"}


def test_vote_arm_refuses_unfinished_inputs(brain: Path, tmp_path: Path):
    arms = [{"name": "a", "method": "baseline"}, {"name": "b", "method": "baseline"},
            {"name": "voted", "method": "vote", "options": {"of": ["a", "b"]}}]
    plan = load_and_prepare(_spec(brain, tmp_path, arms), tmp_path / "S")
    outcome = execute_run(tmp_path / "S", plan.runs[-1], threads=1)
    assert outcome.status == "failed" and "not finished" in outcome.error
