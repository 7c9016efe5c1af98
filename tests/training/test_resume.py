"""Resuming a run refuses changed options instead of ignoring them (issue 18 item 6); --force keeps the saved
configuration; a new iteration target is recorded, fewer iterations than trained are refused."""

import json
from pathlib import Path

import pytest
import yaml

from clinseg.errors import ConfigError
from clinseg.training.config import TrainConfig, given_fields
from clinseg.training.methods import run_method
from clinseg.training.resume import HISTORY_FILE, ResumePolicy
from clinseg.training.run import train
from tests.training.test_run import TINY


def _saved(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_changed_options_are_refused_naming_both_values(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=2)
    before = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError) as info:
        train(root, run, TrainConfig(**{**TINY, "model": "unet3d", "seed": 1}), iterations=2)
    assert str(info.value) == (
        f"{run} was trained with model=resfcn3d, seed=0; you asked for model=unet3d, seed=1: use a new --out "
        "folder, or --force to resume it with its saved configuration")
    assert (run / "config.yaml").read_text() == before


def test_only_the_explicit_fields_are_compared(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=2)
    # the defaults differ everywhere (model, patch, batch …), but only 'seed' was asked for, and it matches
    state = train(root, run, TrainConfig(seed=0), iterations=3, resume=ResumePolicy(explicit=frozenset({"seed"})))
    assert state.iteration == 3 and _saved(run)["model"] == "resfcn3d"
    with pytest.raises(ConfigError, match=r"trained with seed=0; you asked for seed=5"):
        train(root, run, TrainConfig(seed=5), resume=ResumePolicy(explicit=frozenset({"seed"})))
    # the device and thread count may change between sessions
    assert train(root, run, TrainConfig(**{**TINY, "threads": 2}), iterations=3).iteration == 3


def test_force_resumes_with_the_saved_configuration_and_records_it(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=2)
    state = train(root, run, TrainConfig(**{**TINY, "seed": 7}), iterations=3, resume=ResumePolicy(force=True))
    assert state.iteration == 3 and _saved(run)["seed"] == 0 and _saved(run)["iterations"] == 3
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [(f["saved"], f["ignored"]) for f in history["forced"]] == [({"seed": 0}, {"seed": 7})]
    assert [(e["from"], e["to"], e["trained"]) for e in history["extensions"]] == [(2, 3, 2)]


def test_extending_a_finished_run_is_recorded_and_fewer_iterations_refused(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=4)
    with pytest.raises(ConfigError, match=r"has already trained 4 iterations; --iterations 2 cannot undo them"):
        train(root, run, None, iterations=2)
    assert _saved(run)["iterations"] == 4 and not (run / HISTORY_FILE).exists()
    assert train(root, run, None, iterations=4).iteration == 4  # same target: nothing to record
    assert not (run / HISTORY_FILE).exists()
    assert train(root, run, None, iterations=6).iteration == 6
    assert _saved(run)["iterations"] == 6
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [(e["from"], e["to"], e["trained"]) for e in history["extensions"]] == [(4, 6, 4)]
    assert set(history["extensions"][0]) == {"time", "from", "to", "trained"}


def test_methods_pass_the_policy_to_each_network(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    run_method("two-stage", root, run, TrainConfig(**TINY), 1, margin=2)
    with pytest.raises(ConfigError, match=r"localiser was trained with seed=0; you asked for seed=3"):
        run_method("two-stage", root, run, TrainConfig(**{**TINY, "seed": 3}), 1, margin=2,
                   resume=ResumePolicy(explicit=frozenset({"seed"})))
    summary = run_method("two-stage", root, run, TrainConfig(**{**TINY, "seed": 3}), 2, margin=2,
                         resume=ResumePolicy(explicit=frozenset({"seed"}), force=True))
    assert summary.startswith("localiser: 2 iterations") and _saved(run / "organ")["seed"] == 0


def test_given_fields_expand_a_preset() -> None:
    assert given_fields({"seed": 1}) == {"seed"}
    fields = given_fields({"preset": "cpu-demo", "lr": 0.1})
    assert {"model", "patch_size", "batch_size", "iterations", "lr"} <= fields and "preset" not in fields
