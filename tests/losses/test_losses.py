"""Loss masking: absent structures contribute exactly zero gradient; values match hand computations."""

import math

import pytest
import torch

from clinseg.errors import ConfigError
from clinseg.losses import (
    create_loss,
    marginal_ce,
    masked_bce,
    masked_soft_dice,
    to_index,
)


def test_masked_bce_value_by_hand() -> None:
    logits = torch.zeros(1, 2, 2, 1, 1)  # p = 0.5 everywhere -> BCE = ln 2 per voxel
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(1, 2, 2, 1, 1)
    both = torch.tensor([[True, True]])
    one = torch.tensor([[True, False]])
    assert masked_bce(logits, target, both).item() == pytest.approx(2 * math.log(2))
    assert masked_bce(logits, target, one).item() == pytest.approx(math.log(2))


def test_absent_structure_gets_exactly_zero_gradient() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    target = (torch.rand(2, 3, 4, 4, 4) > 0.5).float()
    annotated = torch.tensor([[True, False, True], [False, True, True]])
    loss = create_loss("masked_bce", dice_weight=1.0)(logits, target, annotated)
    loss.backward()
    grad = logits.grad
    assert torch.all(grad[0, 1] == 0) and torch.all(grad[1, 0] == 0)
    assert grad[0, 0].abs().sum() > 0 and grad[1, 1].abs().sum() > 0 and grad[0, 2].abs().sum() > 0


def test_loss_ignores_garbage_target_of_unannotated_class() -> None:
    logits = torch.randn(1, 2, 3, 3, 3)
    target = torch.zeros(1, 2, 3, 3, 3)
    annotated = torch.tensor([[True, False]])
    other = target.clone()
    other[0, 1] = 1
    assert masked_bce(logits, target, annotated) == masked_bce(logits, other, annotated)
    assert masked_soft_dice(logits, target, annotated) == masked_soft_dice(logits, other, annotated)


def test_soft_dice_perfect_prediction_is_near_zero() -> None:
    target = torch.zeros(1, 1, 4, 4, 4)
    target[..., :2] = 1
    logits = (target * 2 - 1) * 50
    assert masked_soft_dice(logits, target, torch.tensor([[True]])).item() == pytest.approx(0, abs=1e-6)


def test_marginal_ce_merges_unannotated_class_into_background() -> None:
    # 3 outputs (bg, A, B); one voxel of background. With B unannotated, the merged background probability
    # is p_bg + p_B, so predicting B there costs nothing more than predicting background.
    logits = torch.tensor([0.0, 0.0, 5.0]).view(1, 3, 1, 1, 1)
    target = torch.zeros(1, 2, 1, 1, 1)
    p = torch.softmax(logits.flatten(), 0)
    full = marginal_ce(logits, target, torch.tensor([[True, True]]))
    marginal = marginal_ce(logits, target, torch.tensor([[True, False]]))
    assert full.item() == pytest.approx(-math.log(p[0]))
    assert marginal.item() == pytest.approx(-math.log(p[0] + p[2]))


def test_to_index() -> None:
    target = torch.zeros(1, 2, 1, 1, 3)
    target[0, 0, 0, 0, 1] = 1
    target[0, 1, 0, 0, 2] = 1
    assert to_index(target).flatten().tolist() == [0, 1, 2]


def test_unknown_loss() -> None:
    with pytest.raises(ConfigError, match="unknown loss 'nope'; known: adaptive_target, marginal_ce_dice, masked_bce"):
        create_loss("nope")


def test_batch_dice_by_hand_and_absent_structures_left_to_bce() -> None:
    # structure 0: reference 2 voxels; predictions p = 1 on both and on one background voxel (logit +-50)
    target = torch.zeros(1, 2, 1, 1, 4)
    target[0, 0, ..., :2] = 1
    logits = torch.full((1, 2, 1, 1, 4), -50.0)
    logits[0, 0, ..., :3] = 50.0
    logits[0, 1, ..., 0] = 50.0  # structure 1 has no reference voxel in the batch: no Dice term
    annotated = torch.tensor([[True, True]])
    expected = 1 - (2 * 2) / (3 + 2)
    assert masked_soft_dice(logits, target, annotated).item() == pytest.approx(expected, abs=1e-4)
