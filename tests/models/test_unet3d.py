"""unet3d: plain 3D U-Net with GroupNorm and same-size output."""

from __future__ import annotations

import pytest
import torch

from clinseg.models import create_model, empirical_receptive_field, receptive_field
from tests.models._helpers import check_trains


@pytest.mark.parametrize(("in_channels", "out_channels", "features"), [(1, 1, (2, 4)), (2, 3, (2, 4, 8)),
                                                                         (3, 5, (2, 2, 4, 4))])
def test_output_has_input_size(in_channels: int, out_channels: int, features: tuple[int, ...]) -> None:
    net = create_model("unet3d", in_channels, out_channels, features=features)
    assert net.size_divisor == 2 ** (len(features) - 1) and net.out_channels == out_channels
    x = torch.randn(2, in_channels, 8, 16, 24)
    assert net(x).shape == (2, out_channels, 8, 16, 24)


def test_defaults() -> None:
    net = create_model("unet3d", 1, 2)
    assert net.size_divisor == 8
    assert [e[0][0].out_channels for e in net.encoders] == [8, 16, 32, 64]


def test_backward_reaches_every_parameter() -> None:
    check_trains(create_model("unet3d", 1, 2, features=(2, 4, 4)), 1, 16)


@pytest.mark.parametrize(("features", "expected"), [((2, 2), 18), ((2, 2, 2), 44), ((2, 2, 2, 2), 100)])
def test_receptive_field_analytic_matches_measured(features: tuple[int, ...], expected: int) -> None:
    net = create_model("unet3d", 1, 1, features=features)
    assert receptive_field(net) == expected
    assert empirical_receptive_field(net, (8, 8, expected + 16 - expected % 8)) == expected


def test_default_receptive_field() -> None:
    assert receptive_field(create_model("unet3d", 1, 1)) == 100
