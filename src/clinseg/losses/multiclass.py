"""Softmax losses for mutually exclusive classes, with the marginal treatment of absent classes.

The network has ``N + 1`` outputs (background first). For a case that does not delineate some classes,
their voxels are unknown: they may be background or that class. The *marginal* cross-entropy (Fang and Yan,
"Multi-organ segmentation over partially labeled datasets with multi-scale feature abstraction", 2020)
merges the probabilities of the unannotated classes into background, so predicting either is not
penalised there; the soft-Dice term is computed for annotated classes only. With every class annotated
this is exactly softmax CE + Dice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clinseg.losses.registry import LossFn, register_loss


def to_index(target: torch.Tensor) -> torch.Tensor:
    """``(B, N, *spatial)`` binary masks -> ``(B, *spatial)`` int64 class index (0 = background)."""
    fg = target.bool()
    index = torch.argmax(fg.to(torch.uint8), dim=1) + 1
    return torch.where(fg.any(dim=1), index, torch.zeros_like(index))


def marginal_ce(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with unannotated classes merged into background.

    Parameters
    ----------
    logits : ``(B, N + 1, *spatial)``, channel 0 is background.
    target : ``(B, N, *spatial)`` binary, mutually exclusive masks.
    annotated : ``(B, N)`` bool.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    b, c = log_p.shape[:2]
    # merged background = background + every unannotated class (per case)
    merge = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=logits.device), ~annotated.bool()], dim=1)
    shape = (b, c) + (1,) * (log_p.dim() - 2)
    masked = log_p.masked_fill(~merge.view(shape), float("-inf"))
    log_bg = torch.logsumexp(masked, dim=1)  # (B, *spatial)
    index = to_index(target)
    log_fg = torch.gather(log_p, 1, index.unsqueeze(1)).squeeze(1)
    nll = -torch.where(index == 0, log_bg, log_fg)
    return nll.mean()


def softmax_dice(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """Soft Dice over foreground classes that the case annotates (``1 - Dice``, mean over those)."""
    probs = torch.softmax(logits.float(), dim=1)[:, 1:].flatten(2)
    ref = target.float().flatten(2)
    dice = (2 * (probs * ref).sum(2) + smooth) / (probs.sum(2) + ref.sum(2) + smooth)
    loss = torch.where(annotated, 1 - dice, torch.zeros_like(dice))
    return (loss.sum(1) / annotated.sum(1).clamp(min=1)).mean()


@register_loss("marginal_ce_dice")
def make_marginal_ce_dice(dice_weight: float = 1.0, **_: object) -> LossFn:
    """Softmax CE (marginal over unannotated classes) + ``dice_weight`` x soft Dice."""

    def loss(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        value = marginal_ce(logits, target, annotated)
        if dice_weight:
            value = value + dice_weight * softmax_dice(logits, target, annotated)
        return value

    return loss
