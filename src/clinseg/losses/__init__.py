"""Losses: masked multi-label BCE/Dice, marginal softmax CE/Dice and target-weighted CE, behind a registry."""

from clinseg.losses import adaptive_target as _adaptive_target  # noqa: F401  (registers)
from clinseg.losses import mixed as _mixed  # noqa: F401  (registers mixed_supervision)
from clinseg.losses import multiclass as _multiclass  # noqa: F401  (registers)
from clinseg.losses import multilabel as _multilabel  # noqa: F401  (registers)
from clinseg.losses import target_weighted as _target_weighted  # noqa: F401  (registers)
from clinseg.losses.multiclass import marginal_ce, softmax_dice, to_index
from clinseg.losses.multilabel import masked_bce, masked_soft_dice
from clinseg.losses.registry import create_loss, list_losses, register_loss
from clinseg.losses.target_weighted import target_weighted_ce

__all__ = [
    "create_loss",
    "list_losses",
    "marginal_ce",
    "masked_bce",
    "masked_soft_dice",
    "register_loss",
    "softmax_dice",
    "target_weighted_ce",
    "to_index",
]
