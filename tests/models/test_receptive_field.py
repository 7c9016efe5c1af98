"""Receptive-field tools on hand-computable layer stacks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clinseg.models import create_model, empirical_receptive_field, receptive_field


def _net(*layers: nn.Module, divisor: int = 1) -> nn.Module:
    net = nn.Sequential(*layers)
    net.size_divisor = divisor  # type: ignore[assignment]
    return net


@pytest.mark.parametrize(
    ("layers", "divisor", "expected"),
    [
        # 3 + 4 = 7
        ((nn.Conv3d(1, 1, 3, padding=1), nn.Conv3d(1, 1, 5, padding=2)), 1, 7),
        # dilation 2: kernel 3 spans 5
        ((nn.Conv3d(1, 1, 3, padding=2, dilation=2),), 1, 5),
        # pool 2 -> 2, then conv 3 at step 2 -> 6, upsample by kernel-2 transposed conv adds nothing
        ((nn.MaxPool3d(2), nn.Conv3d(1, 1, 3, padding=1), nn.ConvTranspose3d(1, 1, 2, 2)), 2, 6),
        # stride-2 conv 3 -> 3, conv 3 at step 2 -> 7
        ((nn.Conv3d(1, 1, 3, 2, 1), nn.Conv3d(1, 1, 3, padding=1), nn.ConvTranspose3d(1, 1, 2, 2)), 2, 7),
    ],
)
def test_hand_computed_stacks(layers: tuple[nn.Module, ...], divisor: int, expected: int) -> None:
    net = _net(*layers, divisor=divisor)
    assert receptive_field(net) == expected
    assert empirical_receptive_field(net, 16) == expected


def test_phase_dependent_rf_reports_the_largest() -> None:
    # Transposed conv 2 then conv 2: a fine voxel sees 1 or 2 coarse voxels depending on its parity,
    # i.e. 2 or 4 input voxels after the stride-2 conv 2.
    net = _net(nn.Conv3d(1, 1, 2, 2), nn.ConvTranspose3d(1, 1, 2, 2), nn.Conv3d(1, 1, 2),
               divisor=2)
    assert receptive_field(net) == 4
    assert empirical_receptive_field(net, 16) == 4


def test_model_and_its_mode_are_left_untouched() -> None:
    net = create_model("resfcn3d", 1, 1, features=(2, 2, 2), blocks=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    receptive_field(net)
    empirical_receptive_field(net, (4, 4, 32))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_too_small_input_and_unsupported_layers_raise() -> None:
    with pytest.raises(ValueError, match="border"):
        empirical_receptive_field(create_model("resfcn3d", 1, 1, features=(1, 1, 1), blocks=2), 16)
    with pytest.raises(ValueError, match="Upsample"):
        receptive_field(_net(nn.Conv3d(1, 1, 3, padding=1), nn.Upsample(scale_factor=2)))
