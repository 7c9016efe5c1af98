"""Target-weighted cross-entropy (seed 001 Eq. 2.1): values by hand, absent classes, gradients, options."""

import math

import pytest
import torch
import torch.nn.functional as F

from clinseg.errors import ConfigError
from clinseg.losses import create_loss, list_losses, target_weighted_ce, to_index

LN2, LN3 = math.log(2), math.log(3)


def _batch(second_foreground: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two cases of 2 voxels, 3 classes. Case 0: background, class 1; case 1: background, ``second_foreground``.

    Logits are chosen so that p(true class) is 1/2, 1/2, 3/4 and 1/3.
    """
    logits = torch.tensor([
        [[LN2, 0.0], [0.0, LN2], [0.0, 0.0]],      # case 0: voxel 0 p0 = 2/4, voxel 1 p1 = 2/4
        [[math.log(6), 0.0], [0.0, 0.0], [0.0, 0.0]],  # case 1: voxel 0 p0 = 6/8, voxel 1 p = 1/3
    ]).view(2, 3, 1, 1, 2)
    target = torch.zeros(2, 2, 1, 1, 2)
    target[0, 0, 0, 0, 1] = 1
    target[1, second_foreground - 1, 0, 0, 1] = 1
    return logits, target


def test_value_by_hand() -> None:
    logits, target = _batch(second_foreground=2)
    # N = (2, 1, 1), t = (0.5, 0.25, 0.25): W = (0.25, 0.25, 0.25)
    expected = 0.25 * (-math.log(1 / 2) - math.log(3 / 4)) + 0.25 * -math.log(1 / 2) + 0.25 * -math.log(1 / 3)
    assert expected == pytest.approx(LN2)  # 0.25 * (ln2 + ln4 - ln3 + ln2 + ln3)
    value = target_weighted_ce(logits, target, torch.tensor([0.5, 0.25, 0.25]))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    loss = create_loss("target_weighted_ce", target_weights=[0.5, 0.25, 0.25])
    assert loss(logits, target, torch.ones(2, 2, dtype=torch.bool)).item() == pytest.approx(expected, rel=1e-6)


def test_absent_class_is_dropped_and_present_weights_rescaled() -> None:
    logits, target = _batch(second_foreground=1)  # no voxel of class 2: N = (2, 2, 0)
    # t = (0.5, 0.25, 0.25) -> present (0.5, 0.25) rescaled to (2/3, 1/3); W = (1/3, 1/6)
    expected = (1 / 3) * (LN2 + math.log(4 / 3)) + (1 / 6) * (LN2 + LN3)
    assert expected == pytest.approx(0.6255700, abs=1e-6)
    value = target_weighted_ce(logits, target, torch.tensor([0.5, 0.25, 0.25]))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # the absent class's own weight plays no part, only the ratio of the present ones
    other = target_weighted_ce(logits, target, torch.tensor([0.6, 0.3, 0.1]))
    assert other.item() == pytest.approx(expected, rel=1e-6)


def test_zero_total_weight_of_present_classes_gives_zero_loss_with_a_graph() -> None:
    logits, target = _batch(second_foreground=1)
    logits.requires_grad_(True)
    value = target_weighted_ce(logits, target, torch.tensor([0.0, 0.0, 1.0]))
    value.backward()
    assert value.item() == 0.0 and torch.all(logits.grad == 0)


def test_gradient_flows_and_raises_the_true_class() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 3, 3, requires_grad=True)
    index = torch.randint(0, 4, (2, 3, 3, 3))
    target = torch.stack([(index == c).float() for c in (1, 2, 3)], dim=1)
    value = create_loss("target_weighted_ce", target_weights="seed001_3d")(logits, target, torch.ones(2, 3, dtype=torch.bool))
    value.backward()
    grad = logits.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    true_grad = torch.gather(grad, 1, index.unsqueeze(1))
    assert torch.all(true_grad < 0)  # gradient descent raises every voxel's true-class logit


def test_weights_proportional_to_class_frequencies_give_plain_mean_ce() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, 4)
    target = (torch.rand(2, 2, 4, 4, 4) > 0.6).float()
    index = to_index(target)
    counts = torch.bincount(index.flatten(), minlength=3).double()
    t = (counts / counts.sum()).float()
    value = target_weighted_ce(logits, target, t)
    assert value.item() == pytest.approx(F.cross_entropy(logits, index).item(), rel=1e-5)


def test_options_are_validated() -> None:
    assert "target_weighted_ce" in list_losses()
    with pytest.raises(ConfigError, match="needs the option target_weights"):
        create_loss("target_weighted_ce", dice_weight=1.0)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\], got \[1.5, -0.5\]"):
        create_loss("target_weighted_ce", target_weights=[1.5, -0.5])
    with pytest.raises(ConfigError, match="must sum to 1"):
        create_loss("target_weighted_ce", target_weights=[0.5, 0.2])
    with pytest.raises(ConfigError, match="unknown target_weights preset"):
        create_loss("target_weighted_ce", target_weights="seed001_4d")
    with pytest.raises(ConfigError, match="must be a list of numbers"):
        create_loss("target_weighted_ce", target_weights=["a", "b"])
    loss = create_loss("target_weighted_ce", target_weights="seed001_2d")  # 4 classes
    logits, target = _batch(second_foreground=2)  # 3 classes
    with pytest.raises(ConfigError, match="4 target weights for a network with 3 outputs"):
        loss(logits, target, torch.ones(2, 2, dtype=torch.bool))
