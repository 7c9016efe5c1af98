"""Restoration losses (seed 002 §2.2): the network's linear output against the undistorted patch.

Both take the training loop's ``(logits, target, annotated)``: ``logits`` and ``target`` are
``(B, C, *spatial)`` (the output has as many channels as the image, no activation), ``annotated`` is
ignored (every voxel of an image is its own label).

>>> loss = restoration_loss("l1")
>>> float(loss(torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2), torch.ones(1, 1, dtype=torch.bool)))
1.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clinseg.errors import ConfigError
from clinseg.losses.registry import LossFn

__all__ = ["RESTORATION_LOSSES", "l1_restoration", "mse_restoration", "restoration_loss"]


def l1_restoration(output: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over every voxel and channel (seed 002: "simple L1 loss")."""
    return F.l1_loss(output, target.to(output.dtype))


def mse_restoration(output: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (Models Genesis trains with MSE)."""
    return F.mse_loss(output, target.to(output.dtype))


#: Name (``PretrainConfig.loss``, also the validation score name) -> loss function.
RESTORATION_LOSSES: dict[str, LossFn] = {"l1": l1_restoration, "mse": mse_restoration}


def restoration_loss(name: str) -> LossFn:
    """The restoration loss called ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return RESTORATION_LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown restoration loss {name!r}; known: {', '.join(RESTORATION_LOSSES)}") from None
