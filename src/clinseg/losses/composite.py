"""Losses over :class:`~clinseg.models.outputs.NetworkOutputs`: the main and auxiliary segmentation heads.

Seed 001 §2.2.2 penalises the auxiliary classification layer of each subnetwork beside the main output
(e.g. weight 0.75 for the main output and 0.05 for each of the K + 1 subnetworks' layers). A plain network's
logits pass through unchanged, so one wrapped loss serves both.
"""

from __future__ import annotations

from typing import Any

import torch

from clinseg.losses.registry import LossFn
from clinseg.models.outputs import NetworkOutputs


def deep_supervision(loss_fn: LossFn) -> LossFn:
    """``main_weight * loss(main) + sum_k aux_weights[k] * loss(aux_k)`` for :class:`NetworkOutputs`;
    ``loss(logits)`` for a plain tensor. Extra keywords (``image_labels``) are ignored. A loss that reads
    :class:`NetworkOutputs` and the extras itself (attribute ``accepts_outputs``, e.g. mixed supervision)
    is returned unchanged."""
    if getattr(loss_fn, "accepts_outputs", False):
        return loss_fn

    def loss(outputs: torch.Tensor | NetworkOutputs, target: torch.Tensor, annotated: torch.Tensor,
             **_: Any) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return loss_fn(outputs, target, annotated)
        total = outputs.main_weight * loss_fn(outputs.logits, target, annotated)
        for weight, aux in zip(outputs.aux_weights, outputs.aux):
            total = total + weight * loss_fn(aux, target, annotated)
        return total

    return loss
