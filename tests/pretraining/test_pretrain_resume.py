"""Resuming a pretraining run follows the rules of a training run (:mod:`clinseg.training.resume`): changed
options are refused naming both values, ``--force`` keeps the saved configuration and records it, a larger
iteration target extends the run, a smaller one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError
from clinseg.pretraining.config import PretrainConfig, save_pretrain_config
from clinseg.pretraining.run import pretrain
from clinseg.training.resume import HISTORY_FILE, ResumePolicy
from tests.pretraining.test_pretrain_run import TINY_2D, _keep_torch_threads, write_images  # noqa: F401

TINY = {**TINY_2D, "patch_size": [1, 8, 8], "batch_size": 2, "val_cases": 0, "checkpoint_every": 1}
runner = CliRunner()


def _saved(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, Path]:
    """A pretraining run of 2 iterations on two small images: (image folder, run folder)."""
    source = write_images(tmp_path / "images", 2, shape=(2, 8, 8))
    pretrain(source, tmp_path / "run", PretrainConfig(**TINY, iterations=2))
    return source, tmp_path / "run"


def test_changed_options_are_refused_naming_both_values(finished: tuple[Path, Path]) -> None:
    source, run = finished
    before = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError) as info:
        pretrain(source, run, PretrainConfig(**{**TINY, "loss": "mse", "seed": 4}, iterations=2))
    assert str(info.value) == (
        f"{run} was trained with loss=l1, seed=0; you asked for loss=mse, seed=4: use a new --out folder, "
        "or --force to resume it with its saved configuration")
    assert (run / "config.yaml").read_text() == before
    # only the fields named in the policy are compared; the device and thread count may change
    policy = ResumePolicy(explicit=frozenset({"loss"}))
    assert pretrain(source, run, PretrainConfig(loss="l1", threads=2), 3, resume=policy).iteration == 3
    assert _saved(run)["model"] == "unet2d" and _saved(run)["patch_size"] == [1, 8, 8]


def test_fewer_iterations_are_refused_and_more_extend(finished: tuple[Path, Path]) -> None:
    source, run = finished
    with pytest.raises(ConfigError, match=r"has already trained 2 iterations; --iterations 1 cannot undo them"):
        pretrain(source, run, None, iterations=1)
    assert _saved(run)["iterations"] == 2 and not (run / HISTORY_FILE).exists()
    assert pretrain(source, run, None).iteration == 2  # as saved: nothing to do, nothing recorded
    assert not (run / HISTORY_FILE).exists()
    assert pretrain(source, run, None, iterations=3).iteration == 3
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [(e["from"], e["to"], e["trained"]) for e in history["extensions"]] == [(2, 3, 2)]


def test_force_resumes_with_the_saved_configuration(finished: tuple[Path, Path]) -> None:
    source, run = finished
    state = pretrain(source, run, PretrainConfig(**{**TINY, "seed": 9}, iterations=3),
                     resume=ResumePolicy(force=True))
    assert state.iteration == 3 and _saved(run)["seed"] == 0 and _saved(run)["iterations"] == 3
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [(f["saved"], f["ignored"]) for f in history["forced"]] == [({"seed": 0}, {"seed": 9})]


def test_cli_compares_only_the_options_given(tmp_path: Path) -> None:
    source = write_images(tmp_path / "images", 2, shape=(2, 8, 8))
    config, run = tmp_path / "pre.yaml", tmp_path / "run"
    save_pretrain_config(PretrainConfig(**TINY), config)
    base = ["pretrain", str(source), "--out", str(run)]
    first = runner.invoke(app, [*base, "-c", str(config), "-n", "2"])
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, base).exit_code == 0  # plain: resumes as saved
    refused = runner.invoke(app, [*base, "--seed", "1", "--loss", "mse"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert " ".join(refused.output.split()) == (
        f"error: {run} was trained with loss=l1, seed=0; you asked for loss=mse, seed=1: use a new --out folder, "
        "or --force to resume it with its saved configuration")
    shorter = runner.invoke(app, [*base, "-n", "1"])
    assert shorter.exit_code == 1 and "has already trained 2 iterations" in shorter.output
    forced = runner.invoke(app, [*base, "--seed", "1", "--force", "-n", "3"])
    assert forced.exit_code == 0, forced.output
    assert "pretrained unet2d for 3 iterations" in forced.output and _saved(run)["seed"] == 0
