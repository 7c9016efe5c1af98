"""The study folder and a changed spec: a cell that never finished takes the fixed configuration; a finished
cell keeps its arm's configuration, and the folder refuses a change, naming the differing options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clinseg.errors import ConfigError
from clinseg.studies.execute import execute_run
from clinseg.studies.executors import pending_runs
from clinseg.studies.plan import load_and_prepare, open_study
from tests.studies._helpers import TINY_BASE

#: features (4, 4, 4) need patches divisible by 4: a 6³ patch fails when the cell trains, not before
BROKEN = {"name": "small", "config": {"patch_size": [6, 6, 6]}}
FIXED = {"name": "small", "config": {"patch_size": [8, 8, 8]}}


def test_a_failed_cell_runs_again_with_the_fixed_configuration(write_spec, tmp_path: Path) -> None:
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(arms=[BROKEN], modes=["concentrated"]), study)
    key = plan.runs[0]
    outcome = execute_run(study, key, threads=1)
    assert outcome.status == "failed" and "multiple of 4" in outcome.error
    assert yaml.safe_load((plan.run_dir(key) / "config.yaml").read_text())["patch_size"] == [6, 6, 6]

    plan = load_and_prepare(write_spec("fixed.yaml", arms=[FIXED], modes=["concentrated"]), study)
    assert plan.status(key) == "pending"  # the failure belonged to the old configuration
    assert pending_runs(plan) == [key]
    assert yaml.safe_load((study / "study.yaml").read_text())["arms"][0]["config"] == {"patch_size": [8, 8, 8]}
    outcome = execute_run(study, key, threads=1)
    assert outcome.status == "done", outcome.error
    config = yaml.safe_load((plan.run_dir(key) / "config.yaml").read_text())
    assert config["patch_size"] == [8, 8, 8]  # not the failed run's saved configuration


def test_an_interrupted_cell_restarts_with_the_new_configuration(write_spec, tmp_path: Path) -> None:
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(modes=["concentrated"]), study)
    key = plan.runs[0]
    run_dir = plan.run_dir(key)
    run_dir.mkdir(parents=True)  # what an interrupted run leaves: its configuration, no done.json
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**TINY_BASE, "iterations": 2}))
    plan = load_and_prepare(write_spec("longer.yaml", modes=["concentrated"],
                                       base={**TINY_BASE, "iterations": 3}), study)
    assert not run_dir.exists() and plan.status(key) == "pending"
    assert execute_run(study, key, threads=1).status == "done"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3]


def test_a_finished_cell_refuses_a_changed_arm_naming_the_options(write_spec, tmp_path: Path) -> None:
    study = tmp_path / "S"
    plan = load_and_prepare(write_spec(arms=[FIXED, "baseline"], modes=["concentrated"]), study)
    done = plan.runs[0]
    assert execute_run(study, done, threads=1).status == "done"
    stamp = (study / "study.yaml").read_bytes()

    changed = {"name": "small", "config": {"patch_size": [8, 8, 8], "lr": 0.01, "batch_size": 3}}
    with pytest.raises(ConfigError) as info:
        load_and_prepare(write_spec("changed.yaml", arms=[changed, "baseline"], modes=["concentrated"]), study)
    message = str(info.value)
    assert f"{study}: arm 'small' was run with another configuration" in message
    assert "batch_size: 2 -> 3" in message and "lr: 0.0 -> 0.01" in message  # 0: the optimiser default
    assert "patch_size" not in message
    assert "finished: concentrated-M1-r0" in message and "give the changed arm a new name" in message

    # a change of base reaches every arm; the arm with a finished cell refuses, naming the option
    with pytest.raises(ConfigError, match=r"arm 'small' .*iterations: 2 -> 5"):
        load_and_prepare(write_spec("base.yaml", arms=[FIXED, "baseline"], modes=["concentrated"],
                                    base={**TINY_BASE, "iterations": 5}), study)
    with pytest.raises(ConfigError, match=r"arm 'small' .*method: segment -> two-stage"):
        load_and_prepare(write_spec("method.yaml", arms=[{**FIXED, "method": "two-stage"}, "baseline"],
                                    modes=["concentrated"]), study)
    assert (study / "study.yaml").read_bytes() == stamp  # nothing was written
    assert open_study(study).status(done) == "done"

    # the same configuration written differently is no change (a preset's value, a default made explicit)
    same = {"name": "small", "config": {"patch_size": [8, 8, 8], "lr": 0.0}}
    load_and_prepare(write_spec("same.yaml", arms=[same, "baseline"], modes=["concentrated"]), study)
    # the arm without a finished cell may change
    plan = load_and_prepare(write_spec("other.yaml", modes=["concentrated"],
                                       arms=[same, {"name": "baseline", "config": {"lr": 0.01}}]), study)
    assert [plan.status(k) for k in plan.runs] == ["done", "pending"]
