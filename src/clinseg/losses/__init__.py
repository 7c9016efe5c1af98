"""Losses: masked multi-label BCE/Dice and marginal softmax CE/Dice, behind a registry."""

from clinseg.losses import multiclass as _multiclass  # noqa: F401  (registers)
from clinseg.losses import multilabel as _multilabel  # noqa: F401  (registers)
from clinseg.losses.multiclass import marginal_ce, softmax_dice, to_index
from clinseg.losses.multilabel import masked_bce, masked_soft_dice
from clinseg.losses.registry import create_loss, list_losses, register_loss

__all__ = [
    "create_loss",
    "list_losses",
    "marginal_ce",
    "masked_bce",
    "masked_soft_dice",
    "register_loss",
    "softmax_dice",
    "to_index",
]
