"""Mixed-supervision loss: segmentation on annotated images, image-level classification on all (seed 001 §3.3).

A batch holds ``k`` fully annotated tumour images, ``m`` images without tumour and ``n`` images only known to
contain tumour (weakly annotated). The thesis' loss (lines 1620-1672) is

    Loss = a * Loss_s + (1 - a) * Loss_c

* ``Loss_s``: a segmentation loss "on images of types 1 and 2" (the ``k + m`` images with a segmentation;
  the segmentation of a tumour-free image is all zero), the target-weighted cross-entropy in the thesis.
  Here an image takes part when ``annotated`` is True for at least one class; weakly annotated images carry
  ``annotated`` all False and are *left out of the batch the segmentation loss sees*, so they never produce
  a segmentation gradient, whatever segmentation loss is configured (``target_weighted_ce`` ignores
  ``annotated`` and would otherwise read them as background).
* ``Loss_c``: cross-entropy of the image-level labels on all ``k + m + n`` images, averaged over the batch,
  then over the classification branches (multiclass, line 1721). Here each branch is a sigmoid
  (absent/present), and labels that are unknown (NaN in ``image_labels``) are left out of the average.

Thesis settings: ``a = 0.7`` for binary problems, ``a = 0.3`` for the end-to-end multiclass one (line 1837);
target weights ``t_0 = 0.7`` (background) and ``t_1 = t_2 = t_3 = 0.1`` (multiclass) or ``t_1 = 0.3``
(binary) (lines 1848-1857).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from clinseg.errors import ConfigError
from clinseg.losses.registry import LossFn, create_loss, register_loss
from clinseg.models.outputs import NetworkOutputs

log = logging.getLogger(__name__)

#: The thesis' trade-off ``a`` between segmentation and classification losses (seed 001 line 1837).
ALPHA_BINARY: float = 0.7
ALPHA_MULTICLASS: float = 0.3


def image_label_bce(image_logits: torch.Tensor, image_labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of image-level labels, unknown labels ignored.

    Parameters
    ----------
    image_logits : ``(B, N)`` one logit per image and class.
    image_labels : ``(B, N)`` float, 1 = present, 0 = absent, NaN = unknown.

    Returns
    -------
    torch.Tensor
        Scalar: per class, the mean BCE over the images whose label is known; then the mean over the classes
        with at least one known label (0, still attached to the graph, when no label is known).

    Examples
    --------
    >>> logits = torch.zeros(2, 2)
    >>> labels = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])
    >>> round(float(image_label_bce(logits, labels)), 4)  # ln 2
    0.6931
    """
    logits = image_logits.float()
    labels = image_labels.to(device=logits.device, dtype=logits.dtype)
    known = ~torch.isnan(labels)
    bce = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(labels, nan=0.0), reduction="none")
    bce = torch.where(known, bce, torch.zeros_like(bce))
    counts = known.sum(0)
    per_class = bce.sum(0) / counts.clamp(min=1)
    has = counts > 0
    if not bool(has.any()):
        return logits.sum() * 0.0
    return per_class[has].mean()


def segmented_rows(annotated: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: the images with a segmentation (``annotated`` True for some class); weakly annotated
    images (``annotated`` all False) are excluded from the segmentation loss."""
    return annotated.bool().any(dim=1)


def _segmentation(seg_fn: LossFn, outputs: NetworkOutputs, target: torch.Tensor,
                  annotated: torch.Tensor) -> torch.Tensor:
    rows = segmented_rows(annotated)
    if not bool(rows.any()):
        return outputs.logits.float().sum() * 0.0
    total = outputs.main_weight * seg_fn(outputs.logits[rows], target[rows], annotated[rows])
    for weight, aux in zip(outputs.aux_weights, outputs.aux):
        total = total + weight * seg_fn(aux[rows], target[rows], annotated[rows])
    return total


@register_loss("mixed_supervision")
def make_mixed_supervision(alpha: float = ALPHA_MULTICLASS, seg_loss: str = "target_weighted_ce",
                           seg_kwargs: dict[str, Any] | None = None, **options: object) -> LossFn:
    """``alpha * seg_loss + (1 - alpha) * image_label_bce`` (see the module docstring).

    Parameters
    ----------
    alpha : the thesis' ``a`` in [0, 1]; 1 ignores the image-level labels (and so the weak images).
    seg_loss, seg_kwargs : registered segmentation loss and its options, e.g. ``target_weighted_ce`` with
        ``{"target_weights": [0.7, 0.1, 0.1, 0.1]}`` (the thesis) or ``marginal_ce_dice`` for partially
        delineated cases.

    The returned loss takes ``(outputs, target, annotated, image_labels=...)`` with ``outputs`` a
    :class:`NetworkOutputs` holding ``image_logits`` (a network with classification branches, e.g.
    ``mixed_unet``); a plain tensor or missing ``image_labels`` is a :class:`ConfigError`, since silently
    training without the classification loss would drop the weak images.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"mixed_supervision: alpha must be in [0, 1], got {alpha}")
    if seg_loss == "mixed_supervision":
        raise ConfigError("mixed_supervision: seg_loss cannot be mixed_supervision itself")
    if options:
        log.warning("mixed_supervision ignores the option(s) %s", ", ".join(sorted(options)))
    seg_fn = create_loss(seg_loss, **(seg_kwargs or {}))
    a = float(alpha)

    def loss(outputs: torch.Tensor | NetworkOutputs, target: torch.Tensor, annotated: torch.Tensor,
             image_labels: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        if not isinstance(outputs, NetworkOutputs) or outputs.image_logits is None:
            raise ConfigError("mixed_supervision needs a network with image-level outputs (NetworkOutputs."
                              "image_logits, e.g. model mixed_unet) passed through unchanged")
        if image_labels is None:
            raise ConfigError("mixed_supervision needs batches with image_labels (sampler: mixed)")
        seg = _segmentation(seg_fn, outputs, target, annotated)
        cls = image_label_bce(outputs.image_logits, image_labels)
        return a * seg + (1.0 - a) * cls

    loss.accepts_outputs = True  # type: ignore[attr-defined]  (it reads NetworkOutputs.image_logits itself)
    return loss
