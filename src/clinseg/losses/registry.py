"""Loss registry: a loss is registered by name and built from the training config.

Every registered loss takes ``(logits, target, annotated)``:

* ``logits`` ``(B, N, Z, Y, X)`` raw network outputs (``N`` structures; ``N + 1`` with background for
  multiclass losses),
* ``target`` ``(B, N, Z, Y, X)`` binary masks, one per structure,
* ``annotated`` ``(B, N)`` bool, whether each case delineates each structure,

and returns a scalar. A new loss is one module plus one ``@register_loss`` line. Networks with training-only
heads pass :class:`clinseg.models.outputs.NetworkOutputs` instead of ``logits`` (wrap a plain loss with
:func:`clinseg.losses.composite.deep_supervision`), and samplers with image-level labels add the keyword
``image_labels``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from clinseg.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("loss")


def register_loss(name: str) -> Callable[[Callable[..., LossFn]], Callable[..., LossFn]]:
    """Register a loss factory ``(**options) -> loss_fn`` under ``name``."""
    return LOSSES.register(name)


def create_loss(name: str, **options: Any) -> LossFn:
    """Build the loss registered as ``name`` (raises :class:`ConfigError` listing known names)."""
    return LOSSES.get(name)(**options)


def list_losses() -> list[str]:
    return LOSSES.names()
