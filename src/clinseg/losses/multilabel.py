"""Masked multi-label loss for partially delineated scans (seed 000, Sec. 3 and Fig. 1).

One sigmoid per structure; the loss of a case is ``sum_n c_n * lambda_n`` where ``lambda_n`` is the
binary cross-entropy of structure ``n`` and ``c_n = 1`` when the case delineates ``n``, else ``0``. A
structure missing from a case therefore contributes exactly zero gradient: nothing is learned about it
from that case, rather than learning that it is background. An optional soft-Dice term per structure is
masked the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clinseg.data.loading import UNKNOWN
from clinseg.losses.registry import LossFn, register_loss


def masked_bce(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """``mean_b sum_n c_{b,n} * BCE_{b,n}`` with the per-class BCE averaged over voxels.

    Parameters
    ----------
    logits : ``(B, N, *spatial)`` raw outputs.
    target : ``(B, N, *spatial)`` binary references (any dtype); voxels of
        :data:`~clinseg.data.loading.UNKNOWN` (the dataset's ``ignore`` label) have no loss.
    annotated : ``(B, N)`` bool — ``c_{b,n}``.
    """
    known = target != UNKNOWN
    if bool(known.all()):
        per_voxel = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
        per_class = per_voxel.flatten(2).mean(dim=2)  # lambda_{b,n}
    else:  # the ignore label: unknown voxels have no loss; the BCE is averaged over the known ones
        ref = torch.where(known, target, torch.zeros_like(target)).float()
        per_voxel = F.binary_cross_entropy_with_logits(logits.float(), ref, reduction="none") * known
        per_class = per_voxel.flatten(2).sum(dim=2) / known.flatten(2).sum(dim=2).clamp(min=1)
    weights = annotated.to(per_class.dtype)
    # where() rather than a product so that a NaN/Inf in an unannotated class cannot leak in.
    return torch.where(annotated, per_class * weights, torch.zeros_like(per_class)).sum(dim=1).mean()


def masked_soft_dice(
    logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor, smooth: float = 1e-5
) -> torch.Tensor:
    """Masked *batch* soft Dice: ``sum_n (1 - softDice_n)`` over structures with reference voxels.

    Summed, like the BCE, so that each structure's loss is ``lambda_n = BCE_n + w (1 - Dice_n)`` and the
    total is ``sum_n c_n lambda_n`` as in seed 000; a mean over structures would give each of 11 classes
    a ninth of the Dice gradient of a single-class model, and small organs then stay unlearned for
    thousands of iterations while the brainstem dominates.

    For each structure the intersection and the volumes are summed over the cases of the batch that
    delineate it (``c_{b,n} = 1``); the others contribute nothing. Structures without any reference voxel
    among those cases are left to the cross-entropy: a per-patch Dice of an absent structure is ~0 for any
    non-zero prediction, which would push every output towards zero (the usual reason to prefer batch Dice
    on small patches, as nnU-Net does).
    """
    known = (target != UNKNOWN).flatten(2)
    probs = torch.sigmoid(logits.float()).flatten(2) * known  # unknown voxels (the ignore label) count nowhere
    ref = (target.flatten(2) == 1).float()
    weight = annotated.to(probs.dtype)  # (B, N)
    intersection = ((probs * ref).sum(dim=2) * weight).sum(dim=0)
    volumes = ((probs.sum(dim=2) + ref.sum(dim=2)) * weight).sum(dim=0)
    present = (ref.sum(dim=2) * weight).sum(dim=0) > 0
    if not bool(present.any()):
        return probs.sum() * 0.0
    dice = (2 * intersection + smooth) / (volumes + smooth)
    return (1 - dice[present]).sum()


@register_loss("masked_bce")
def make_masked_bce(dice_weight: float = 0.0, **_: object) -> LossFn:
    """The seed's loss (BCE, c_n masking), plus ``dice_weight`` times the masked soft Dice."""

    def loss(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        value = masked_bce(logits, target, annotated)
        if dice_weight:
            value = value + dice_weight * masked_soft_dice(logits, target, annotated)
        return value

    return loss
