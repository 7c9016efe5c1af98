"""The adaptive target-weight loss with unknown voxels (seed 001 §4.2.1.2), on hand-computed batches."""

from __future__ import annotations

import math

import pytest
import torch

from clinseg.data.voxel_labels import UNKNOWN
from clinseg.errors import ConfigError
from clinseg.losses import create_loss
from clinseg.losses.adaptive_target import adaptive_target_bce


def _bce(p: float) -> float:
    return -math.log(p)


def test_hand_computed_two_classes() -> None:
    # class 0: logits 0 (p=.5): 1 positive, 3 negatives; class 1: logit 2 everywhere, 2 positives, 1 negative,
    # 1 unknown whose (wrong) prediction must not count.
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]]).view(1, 2, 1, 1, 4)
    target = torch.tensor([[1, 0, 0, 0], [1, 1, 0, UNKNOWN]], dtype=torch.uint8).view(1, 2, 1, 1, 4)
    t = torch.tensor([0.3, 0.6])
    s = 1 / (1 + math.exp(-2.0))
    loss0 = 0.3 * _bce(0.5) + 0.7 * _bce(0.5)            # t/N1 * 1 voxel + (1-t)/N0 * 3 voxels
    loss1 = 0.6 * _bce(s) + 0.4 * _bce(1 - s)            # 2 positives share 0.6, 1 negative 0.4
    value = adaptive_target_bce(logits, target, t)
    assert float(value) == pytest.approx((loss0 + loss1) / 2, rel=1e-6)


def test_unknown_voxels_give_no_gradient() -> None:
    logits = torch.zeros(2, 1, 1, 3, 3, requires_grad=True)
    target = torch.full((2, 1, 1, 3, 3), UNKNOWN, dtype=torch.uint8)
    target[0, 0, 0, 0, 0] = 1
    target[0, 0, 0, 0, 1] = 0
    adaptive_target_bce(logits, target, torch.tensor([0.5])).backward()
    grad = logits.grad.abs()
    assert grad[0, 0, 0, 0, :2].gt(0).all()
    assert float(grad.sum() - grad[0, 0, 0, 0, :2].sum()) == 0.0


def test_one_sided_class_and_all_unknown() -> None:
    logits = torch.zeros(1, 2, 1, 1, 2)
    target = torch.tensor([[0, 0], [UNKNOWN, UNKNOWN]], dtype=torch.uint8).view(1, 2, 1, 1, 2)
    # class 0 has only negatives: they carry its whole loss; class 1 is unknown: 0; mean over the 2 classes
    assert float(adaptive_target_bce(logits, target, torch.tensor([0.3, 0.3]))) == pytest.approx(math.log(2) / 2)


def test_registered_loss_and_errors() -> None:
    loss = create_loss("adaptive_target", target_weights=0.25)
    logits = torch.zeros(1, 3, 1, 2, 2)
    target = torch.ones(1, 3, 1, 2, 2, dtype=torch.uint8)
    assert float(loss(logits, target, torch.ones(1, 3, dtype=torch.bool))) == pytest.approx(math.log(2))
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        create_loss("adaptive_target", target_weights=[0.3, 1.0])
    with pytest.raises(ConfigError, match="2 target weights for 3 classes"):
        create_loss("adaptive_target", target_weights=[0.3, 0.3])(logits, target, None)
