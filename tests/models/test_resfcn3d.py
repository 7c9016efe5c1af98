"""resfcn3d: the seed study's 3D residual FCN (section 3, Fig. 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clinseg.models import create_model, empirical_receptive_field, receptive_field
from clinseg.models.layers import PreActResBlock
from tests.models._helpers import check_trains


@pytest.mark.parametrize(("in_channels", "out_channels"), [(1, 1), (2, 3), (1, 11)])
def test_output_has_input_size_and_one_channel_per_class(in_channels: int, out_channels: int) -> None:
    net = create_model("resfcn3d", in_channels, out_channels, features=(2, 4, 4), blocks=1)
    assert net.size_divisor == 4 and net.out_channels == out_channels
    x = torch.randn(1, in_channels, 8, 12, 16)
    assert net(x).shape == (1, out_channels, 8, 12, 16)


@pytest.mark.parametrize("norm", ["group", "batch", "instance"])
def test_backward_reaches_every_parameter(norm: str) -> None:
    check_trains(create_model("resfcn3d", 1, 2, features=(2, 4, 4), blocks=2, norm=norm), 1, 16)


def test_default_layout_matches_the_paper() -> None:
    net = create_model("resfcn3d", 1, 11)
    blocks = [m for m in net.modules() if isinstance(m, PreActResBlock)]
    assert len(blocks) == 16
    strided = [m for m in net.modules() if isinstance(m, nn.Conv3d) and m.stride == (2, 2, 2)]
    transposed = [m for m in net.modules() if isinstance(m, nn.ConvTranspose3d)]
    assert len(strided) == 2 and len(transposed) == 2
    assert net.head.kernel_size == (1, 1, 1) and net.head.out_channels == 11
    assert isinstance(blocks[0].norm1, nn.GroupNorm)


def test_preact_block_is_identity_plus_residual() -> None:
    block = PreActResBlock(4)
    nn.init.zeros_(block.conv2.weight)
    x = torch.randn(1, 4, 6, 6, 6)
    assert torch.equal(block(x), x)


def test_receptive_field_is_9_plus_16_per_block() -> None:
    # stem 3 -> stride-2 conv 5 -> stride-2 conv 9; each block: two 3³ convs at step 4 add 16.
    net = create_model("resfcn3d", 1, 1, features=(2, 2, 2), blocks=2)
    assert receptive_field(net) == 41
    assert empirical_receptive_field(net, (4, 4, 48)) == 41
    assert receptive_field(create_model("resfcn3d", 1, 1)) == 265  # the default, 16 blocks


def test_default_depth_receptive_field_measured() -> None:
    net = create_model("resfcn3d", 1, 1, features=(1, 1, 1))
    assert empirical_receptive_field(net, (4, 4, 272)) == 265
