"""Studies end to end on a tiny dataset: spec checks, subsets on disk, runs, resume, failures, executors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data.subsets import Subset
from clinseg.errors import ConfigError
from clinseg.studies.execute import execute_run
from clinseg.studies.executors import pending_runs, run_local
from clinseg.studies.plan import RunKey, load_and_prepare, open_study
from clinseg.studies.report import build_study_report
from clinseg.studies.results import collect_results, write_results
from tests.studies._helpers import TINY_BASE


def test_prepare_writes_subsets_and_records(write_spec, tmp_path: Path) -> None:
    plan = load_and_prepare(write_spec(sizes=[1, 2]), tmp_path / "S")
    assert [k.name for k in plan.runs] == ["baseline/concentrated-M1-r0", "baseline/concentrated-M2-r0",
                                           "baseline/distributed-M1-r0", "baseline/distributed-M2-r0"]
    subset = Subset.from_json((tmp_path / "S" / "subsets" / "distributed-M2-r0.json").read_text())
    assert list(subset.cases) == ["case_0", "case_1", "case_2"]  # validation case excluded
    assert subset.references("A") == 2 and subset.references("B") == 2
    concentrated = plan.subset(RunKey("baseline", "concentrated", 2, 0))
    assert set(concentrated.cases) == {"case_0", "case_2"}  # the complete ones
    record = json.loads((tmp_path / "S" / "study.json").read_text())
    assert record["structures"] == ["A", "B"] and record["validation"] == ["case_3"]


def test_impossible_grid_is_refused_before_anything_is_written(write_spec, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"concentrated: M = 3 needs 3 completely delineated cases, but only 2"):
        load_and_prepare(write_spec(sizes=[1, 3]), tmp_path / "S")
    assert not (tmp_path / "S" / "subsets").exists()


def test_spec_errors_are_clear(write_spec, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown mode"):
        load_and_prepare(write_spec(modes=["clustered"]), tmp_path / "S")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['iters'\]"):
        load_and_prepare(write_spec(base={"iters": 3}), tmp_path / "S")
    with pytest.raises(ConfigError, match="arm names must be unique"):
        load_and_prepare(write_spec(arms=["a", "a"]), tmp_path / "S")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['size'\]"):
        load_and_prepare(write_spec(size=3), tmp_path / "S")


def test_a_study_folder_refuses_another_study(write_spec, tmp_path: Path) -> None:
    load_and_prepare(write_spec(), tmp_path / "S")
    with pytest.raises(ConfigError, match="another seed"):
        load_and_prepare(write_spec("other.yaml", seed=5), tmp_path / "S")
    with pytest.raises(ConfigError, match="another validation"):
        load_and_prepare(write_spec("validated.yaml", validation=["case_2"]), tmp_path / "S")
    load_and_prepare(write_spec("more.yaml", repeats=2), tmp_path / "S")  # extending is fine


def test_runs_resume_and_finished_runs_are_never_recomputed(write_spec, tmp_path: Path) -> None:
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(), study)
    key = plan.runs[0]
    outcome = execute_run(study, key, threads=1)
    assert outcome.status == "done", outcome.error
    run_dir = plan.run_dir(key)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["subset"] == {"case_0": ["A", "B"]} or config["subset"] == {"case_2": ["A", "B"]}
    assert config["val_ids"] == ["case_3"]
    stamp = (run_dir / "done.json").stat().st_mtime_ns
    weights = (run_dir / "checkpoints" / "last.pt").read_bytes()
    assert execute_run(study, key, threads=1).status == "skipped"
    assert (run_dir / "done.json").stat().st_mtime_ns == stamp
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == weights
    assert pending_runs(open_study(study)) == [plan.runs[1]]
    results = collect_results(open_study(study))
    assert set(results.columns) >= {"arm", "mode", "size", "repeat", "case", "structure", "dice", "hd95"}
    assert len(results) == 2  # one test case x two structures
    assert results["dice"].between(0, 1).all()


def test_failed_run_is_reported_and_retried_only_on_request(write_spec, tmp_path: Path) -> None:
    # features (4, 8, 16) need patches divisible by 4: the run fails at training time
    bad = {"name": "bad", "config": {"model_kwargs": {"features": [4, 4, 4], "blocks": 1}, "patch_size": [6, 6, 6]}}
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(arms=[bad], modes=["concentrated"]), study)
    outcome = execute_run(study, plan.runs[0], threads=1)
    assert outcome.status == "failed" and "multiple of 4" in outcome.error
    failed = json.loads((plan.run_dir(plan.runs[0]) / "failed.json").read_text())
    assert "multiple of 4" in failed["error"] and "Traceback" in failed["traceback"]
    assert execute_run(study, plan.runs[0], threads=1).status == "skipped"
    assert pending_runs(open_study(study)) == []
    assert pending_runs(open_study(study), retry_failed=True) == list(plan.runs)
    assert execute_run(study, plan.runs[0], threads=1, retry_failed=True).status == "failed"


def test_cli_runs_the_grid_on_local_workers_and_resumes(write_spec, tmp_path: Path) -> None:
    study = tmp_path / "S"
    runner = CliRunner()
    result = runner.invoke(app, ["study", "run", str(write_spec()), "--out", str(study), "--workers", "1"])
    assert result.exit_code == 0, result.output
    plan = open_study(study)
    assert [plan.status(k) for k in plan.runs] == ["done", "done"]
    stamps = [(plan.run_dir(k) / "done.json").stat().st_mtime_ns for k in plan.runs]
    again = runner.invoke(app, ["study", "run", str(write_spec()), "--out", str(study)])
    assert again.exit_code == 0 and "0 to run" in again.output
    assert [(plan.run_dir(k) / "done.json").stat().st_mtime_ns for k in plan.runs] == stamps


def test_local_executor_counts_outcomes(write_spec, tmp_path: Path) -> None:
    plan = load_and_prepare(write_spec(modes=["distributed"]), tmp_path / "S")
    state = run_local(plan, plan.runs, workers=1)
    assert (state.done, len(state.failed), state.total) == (1, 0, 1)


def test_ray_executor_runs_a_two_run_grid_on_a_local_instance(write_spec, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is an optional dependency (pip install 'clinseg[ray]')")
    from clinseg.studies.executors import run_ray

    plan = load_and_prepare(write_spec(resources={"cpus": 1, "gpus": 0}), tmp_path / "S")
    state = run_ray(plan, plan.runs, "local", num_cpus=2)
    assert (state.done, len(state.failed)) == (2, 0), [o.error for o in state.failed]
    assert all(plan.status(k) == "done" for k in plan.runs)
    assert len(collect_results(open_study(tmp_path / "S"))) == 4


def test_localisation_arms_run_and_record_measures(write_spec, tmp_path: Path) -> None:
    arms = [{"name": "baseline", "method": "baseline"},
            {"name": "two-stage", "method": "two-stage", "options": {"margin": 2}},
            {"name": "gt", "method": "gt-localised", "options": {"margin": 2, "organ_from": "two-stage"}}]
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(arms=arms, modes=["patients"], sizes=[3], base={**TINY_BASE,
                                                                                      "val_every": 1}), study)
    for key in plan.runs:
        outcome = execute_run(study, key, threads=1)
        assert outcome.status == "done", outcome.error
    runs = {k.arm: plan.run_dir(k) for k in plan.runs}
    two = json.loads((runs["two-stage"] / "measures.json").read_text())
    assert set(two["networks"]) == {"localiser", "organ"}
    assert 0 <= two["voxels_segmented_fraction"] <= 2 and two["inference_seconds_per_case"] > 0
    gt = json.loads((runs["gt"] / "measures.json").read_text())
    assert gt["networks"]["organ"]["iterations"] == 2
    assert not (runs["gt"] / "organ").exists()  # the two-stage arm's organ network was reused
    base = json.loads((runs["baseline"] / "measures.json").read_text())
    assert base["networks"]["network"]["validations"] == 2
    results = collect_results(open_study(study))
    assert sorted(results["arm"].unique()) == ["baseline", "gt", "two-stage"]

    write_results(open_study(study))
    runs_table = pd.read_csv(study / "runs.csv")
    assert {"train_seconds", "converged", "organ_seconds_to_best", "inference_seconds_per_case"} <= set(runs_table)
    assert runs_table.set_index("arm").loc["two-stage", "train_seconds"] > 0
    structures = pd.read_csv(study / "structures.csv")
    assert structures["foreground_percent"].between(0, 100).all() and len(structures) == 2
    page = build_study_report(study, dpi=30).read_text()
    assert "Training and inference cost" in page and "Benefit against structure size" in page
    costs = pd.read_csv(study / "costs.csv")
    assert list(costs["arm"]) == ["baseline", "two-stage", "gt"]
    assert (study / "figures" / "dice-gain_vs_foreground.png").is_file()
