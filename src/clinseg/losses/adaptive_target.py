"""Adaptive target-weight loss per class with voxel-level unknowns (seed 001 §4.2.1.2).

Every class ``c`` has its own binary segmentation output (non-exclusive classes). In a batch, with ``N1_c``
positive, ``N0_c`` negative and some unknown voxels for class ``c`` (target value
:data:`clinseg.data.voxel_labels.UNKNOWN`), a positive voxel weighs ``t_c / N1_c``, a negative one
``(1 - t_c) / N0_c`` and an unknown one 0:

    Loss_c = - sum_voxels w * log p_label            Loss = (1 / C) sum_c Loss_c

so the positives of each class carry the share ``t_c`` of its loss whatever their number (a lens of a few
voxels weighs as much as the brain). One sigmoid per class is the seed's two-channel softmax per class
(``softmax([a, b])_1 = sigmoid(b - a)``). When a batch has no positive (or no negative) voxel of a class,
the other side carries its whole loss, as in ``target_weighted_ce``.

The seed gives no value of ``t_c`` for the OAR model; the default 0.3 follows its brain-tumour chapters,
where non-tumour voxels carry 70 %.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from clinseg.errors import ConfigError
from clinseg.losses.registry import LossFn, register_loss

log = logging.getLogger(__name__)

#: Default positive share ``t_c`` of every class.
DEFAULT_TARGET_WEIGHT = 0.3


def adaptive_target_bce(logits: torch.Tensor, target: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """The seed's loss on ``logits (B, C, *spatial)`` and ``target (B, C, *spatial)`` (1, 0 or UNKNOWN).

    Parameters
    ----------
    target_weights : ``(C,)`` the positive share ``t_c`` of each class, in ``(0, 1)``.

    Examples
    --------
    >>> logits = torch.zeros(1, 1, 1, 1, 4)                   # p = 1/2 everywhere
    >>> target = torch.tensor([1, 0, 0, UNKNOWN], dtype=torch.uint8).view(1, 1, 1, 1, 4)
    >>> float(adaptive_target_bce(logits, target, torch.tensor([0.3])))   # (0.3 + 0.7) * ln 2
    0.6931...
    """
    if logits.shape[1] != target.shape[1]:
        raise ConfigError(f"adaptive_target_bce: {logits.shape[1]} outputs for {target.shape[1]} classes")
    labels = target.to(torch.int16)
    positive = (labels == 1).flatten(2).transpose(0, 1).flatten(1)  # (C, B*V)
    negative = (labels == 0).flatten(2).transpose(0, 1).flatten(1)
    x = logits.float().flatten(2).transpose(0, 1).flatten(1)
    log_p1, log_p0 = F.logsigmoid(x), F.logsigmoid(-x)
    n1, n0 = positive.sum(dim=1).to(x.dtype), negative.sum(dim=1).to(x.dtype)
    t = target_weights.to(device=x.device, dtype=x.dtype)
    t1 = torch.where(n1 > 0, torch.where(n0 > 0, t, torch.ones_like(t)), torch.zeros_like(t))
    t0 = torch.where(n0 > 0, 1 - t1, torch.zeros_like(t))
    loss_pos = -(torch.where(positive, log_p1, torch.zeros_like(x))).sum(dim=1) / n1.clamp(min=1)
    loss_neg = -(torch.where(negative, log_p0, torch.zeros_like(x))).sum(dim=1) / n0.clamp(min=1)
    return (t1 * loss_pos + t0 * loss_neg).mean()


def check_weights(target_weights: float | Sequence[float]) -> tuple[float, ...]:
    """``t`` as a tuple (one value means the same for every class), each strictly between 0 and 1."""
    values = (target_weights,) if isinstance(target_weights, (int, float)) else tuple(target_weights)
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"adaptive_target: target_weights must be a number or a list of numbers, got "
                          f"{target_weights!r}") from exc
    bad = [v for v in values if not (math.isfinite(v) and 0.0 < v < 1.0)]
    if bad or not values:
        raise ConfigError(f"adaptive_target: target weights must lie strictly between 0 and 1, got {list(values)}")
    return values


@register_loss("adaptive_target")
def make_adaptive_target(target_weights: float | Sequence[float] = DEFAULT_TARGET_WEIGHT, **options: object) -> LossFn:
    """Seed 001's OAR loss; ``target_weights`` is one ``t_c`` for all classes or one per class."""
    weights = check_weights(target_weights)
    if options:
        log.warning("adaptive_target ignores the option(s) %s", ", ".join(sorted(options)))

    def loss(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        t = torch.tensor(weights * (logits.shape[1] if len(weights) == 1 else 1))
        if t.numel() != logits.shape[1]:
            raise ConfigError(f"adaptive_target: {t.numel()} target weights for {logits.shape[1]} classes")
        return adaptive_target_bce(logits, target, t)

    return loss
