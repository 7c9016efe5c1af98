"""dynunet: MONAI DynUNet as the nnU-Net-like reference."""

from __future__ import annotations

import pytest
import torch

from clinseg.models import create_model, empirical_receptive_field, receptive_field
from tests.models._helpers import check_trains


@pytest.mark.parametrize(("in_channels", "out_channels"), [(1, 1), (2, 4)])
def test_output_is_a_plain_tensor_of_input_size_in_train_and_eval(in_channels: int, out_channels: int) -> None:
    net = create_model("dynunet", in_channels, out_channels, depth=3, features=(2, 4, 4))
    assert net.size_divisor == 4 and net.out_channels == out_channels
    x = torch.randn(2, in_channels, 8, 12, 16)
    for train in (True, False):
        net.train(train)
        out = net(x)
        assert isinstance(out, torch.Tensor) and out.shape == (2, out_channels, 8, 12, 16)


def test_defaults_and_bad_depth() -> None:
    net = create_model("dynunet", 1, 2)
    assert net.size_divisor == 8
    assert list(net.net.filters) == [8, 16, 32, 64]
    assert [list(s) for s in net.net.strides] == [[1, 1, 1]] + [[2, 2, 2]] * 3
    with pytest.raises(ValueError, match="features must give 4"):
        create_model("dynunet", 1, 2, features=(2, 4))


def test_backward_reaches_every_parameter() -> None:
    check_trains(create_model("dynunet", 1, 2, depth=3, features=(2, 4, 4)), 1, 16)


@pytest.mark.parametrize(("depth", "expected"), [(3, 35), (4, 79)])
def test_receptive_field_analytic_matches_measured(depth: int, expected: int) -> None:
    net = create_model("dynunet", 1, 1, depth=depth, features=(2,) * depth)
    assert receptive_field(net) == expected
    assert empirical_receptive_field(net, (8, 8, 96)) == expected
