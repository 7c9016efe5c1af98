"""Training configuration: presets, YAML round trip, auto values, clear errors."""

from pathlib import Path

import pytest

from clinseg.data import load_dataset
from clinseg.errors import ConfigError
from clinseg.training.config import (
    TrainConfig,
    config_from_dict,
    load_config,
    save_config,
)


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(model="unet3d", patch_size=[16, 16, 16], lr=3e-4)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_preset_and_override() -> None:
    cfg = config_from_dict({"preset": "oar-2019", "iterations": 10})
    assert cfg.patch_size == [64, 64, 64] and cfg.batch_size == 4 and cfg.lr == 1e-3
    assert cfg.loss_kwargs == {"dice_weight": 0.0} and cfg.iterations == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learning_rate": 1}, r"unknown option\(s\) \['learning_rate'\]"),
        ({"preset": "nope"}, "unknown preset 'nope'"),
        ({"patch_size": [2, 2, 2]}, "patch_size must be three sizes >= 4"),
        ({"foreground_fraction": 2}, r"foreground_fraction must be in \[0, 1\]"),
    ],
)
def test_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_resolved_fills_auto_values(make_dataset) -> None:
    spec = load_dataset(make_dataset()).spec
    cpu = TrainConfig().resolved(spec, "cpu")
    assert cpu.label_mode == "multilabel" and cpu.loss == "masked_bce" and cpu.patch_size == [32, 32, 32]
    assert TrainConfig().resolved(spec, "cuda").patch_size == [64, 64, 64]
    assert TrainConfig(label_mode="multiclass").resolved(spec, "cpu").loss == "marginal_ce_dice"


def test_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")
