"""The learning schedule: warm-up then poly/cosine decay, optimisers, durations."""

from __future__ import annotations

import pytest
import torch

from clinseg.errors import ConfigError
from clinseg.training.schedule import ScheduleSettings, build_optimizer, lr_factor, parse_duration


def test_warm_up_then_poly_decay() -> None:
    s = ScheduleSettings(warmup=10, decay="poly")
    assert lr_factor(0, 1000, s) == pytest.approx(0.1) and lr_factor(9, 1000, s) == pytest.approx(1.0)
    assert lr_factor(10, 1000, s) == pytest.approx(1.0)
    assert lr_factor(505, 1000, s) == pytest.approx((1 - 495 / 990) ** 0.9)
    assert lr_factor(999, 1000, s) < 0.01
    assert lr_factor(0, 20, s) == pytest.approx(0.5)  # at most a tenth of the run warms up (2 steps)


def test_cosine_and_constant() -> None:
    assert lr_factor(50, 100, ScheduleSettings(warmup=0, decay="cosine")) == pytest.approx(0.5)
    assert lr_factor(99, 100, ScheduleSettings(warmup=0, decay="constant")) == 1.0


def test_optimisers() -> None:
    net = torch.nn.Linear(2, 2)
    sgd = build_optimizer(net, ScheduleSettings(optimizer="sgd"), 0.01)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.99
    assert isinstance(build_optimizer(net, ScheduleSettings(), 1e-3), torch.optim.AdamW)  # the default


def test_durations() -> None:
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("soon", "-5m", "0s", "30x"):
        with pytest.raises(ConfigError):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="optimizer"):
        ScheduleSettings(optimizer="lbfgs").validate()
