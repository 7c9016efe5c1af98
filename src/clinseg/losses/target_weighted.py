"""Weighted cross-entropy with *target weights* set from the composition of each batch (seed 001, Sec. 2.2.3.1).

Each class ``c`` (background first) gets a target weight ``t_c`` in ``[0, 1]`` with ``sum_c t_c = 1``: the
share of the loss that all voxels of class ``c`` in the batch carry together. With ``N_c`` voxels of class
``c`` in the batch (all cases of the batch counted together), each of them weighs ``W_c = t_c / N_c`` and

    loss = - sum_voxels W_{class(voxel)} * log p_{class(voxel)}(voxel)            (seed 001, Eq. 2.1)

Setting ``t_c`` above the proportion of voxels of class ``c`` favours its sensitivity; with ``t_c = N_c / N``
every voxel weighs ``1 / N`` and the loss is the plain mean cross-entropy.

Absent classes: the seed assumes "that in each training batch there is at least one voxel of each class"
(seed 001 lines 713-714) and samples batches to make it so (line 1698). When a class is absent anyway it has
no voxel to carry its weight; we drop it and rescale the target weights of the present classes to sum to 1
(``t_c / sum_{present} t_k``), so the loss stays normalised (total voxel weight 1, as the seed's losses are:
line 1668) and the present classes keep their relative shares. If every present class has ``t_c = 0`` the
loss is 0.

The ``annotated`` argument of the loss signature is not used: the seed trains on fully delineated BRATS
cases. For partially delineated data use ``marginal_ce_dice``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from clinseg.errors import ConfigError
from clinseg.losses.multiclass import to_index
from clinseg.losses.registry import LossFn, register_loss

log = logging.getLogger(__name__)

#: The seed's target weights (background, non-enhancing core, oedema, enhancing core), seed 001 lines 946-957.
TARGET_WEIGHT_PRESETS: dict[str, tuple[float, ...]] = {
    "seed001_2d": (0.7, 0.1, 0.1, 0.1),
    "seed001_3d": (0.4, 0.2, 0.2, 0.2),
}


def target_weighted_ce(logits: torch.Tensor, target: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy where the voxels of class ``c`` share the total weight ``t_c`` of the batch.

    Parameters
    ----------
    logits : ``(B, C, *spatial)`` raw outputs, ``C = N + 1`` with channel 0 background.
    target : ``(B, N, *spatial)`` binary, mutually exclusive masks (a voxel in none is background).
    target_weights : ``(C,)`` the ``t_c``, background first (validated by :func:`check_target_weights`).

    Returns
    -------
    torch.Tensor
        Scalar ``- sum_c t'_c / N_c * sum_{voxels of c} log p_c`` with ``t'`` the target weights of the
        classes present in the batch rescaled to sum to 1 (see the module docstring); 0 when they sum to 0.

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 1, 1, 4)           # p = 1/2 everywhere
    >>> target = torch.tensor([0, 0, 0, 1.0]).view(1, 1, 1, 1, 4)
    >>> float(target_weighted_ce(logits, target, torch.tensor([0.7, 0.3])))  # (0.7 + 0.3) * ln 2
    0.6931...
    """
    if logits.shape[1] != target_weights.numel():
        raise ConfigError(f"target_weighted_ce: {target_weights.numel()} target weights for a network with "
                          f"{logits.shape[1]} outputs (background + {logits.shape[1] - 1} structures)")
    log_p = F.log_softmax(logits.float(), dim=1)
    index = to_index(target)  # (B, *spatial)
    log_true = torch.gather(log_p, 1, index.unsqueeze(1)).squeeze(1)
    classes = log_p.shape[1]
    counts = torch.bincount(index.flatten(), minlength=classes).to(log_p.dtype)  # N_c
    present = counts > 0
    weights = target_weights.to(device=log_p.device, dtype=log_p.dtype)
    total = (weights * present).sum()
    if float(total) == 0.0:
        return log_p.sum() * 0.0
    per_voxel = torch.where(present, weights / total / counts.clamp(min=1), torch.zeros_like(weights))
    return -(per_voxel[index] * log_true).sum()


def check_target_weights(target_weights: Sequence[float] | str | None) -> tuple[float, ...]:
    """Validate ``t`` (a list of floats or a name of :data:`TARGET_WEIGHT_PRESETS`): each in [0, 1], sum 1.

    Raises
    ------
    ConfigError
        Naming the offending value, when ``t`` is missing, unknown, not numbers, out of range or does not
        sum to 1 (seed 001 lines 717-719: ``0 <= t_c <= 1`` and ``sum_c t_c = 1``).
    """
    if target_weights is None:
        raise ConfigError("target_weighted_ce needs the option target_weights: one weight per class, background "
                          f"first, e.g. [0.7, 0.1, 0.1, 0.1], or a preset {sorted(TARGET_WEIGHT_PRESETS)}")
    if isinstance(target_weights, str):
        if target_weights not in TARGET_WEIGHT_PRESETS:
            raise ConfigError(f"target_weighted_ce: unknown target_weights preset {target_weights!r}; "
                              f"known: {sorted(TARGET_WEIGHT_PRESETS)}")
        return TARGET_WEIGHT_PRESETS[target_weights]
    try:
        values = tuple(float(t) for t in target_weights)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"target_weighted_ce: target_weights must be a list of numbers, got {target_weights!r}") \
            from exc
    if len(values) < 2:
        raise ConfigError(f"target_weighted_ce: need a target weight for background and each class, got {values}")
    bad = [t for t in values if not (math.isfinite(t) and 0.0 <= t <= 1.0)]
    if bad:
        raise ConfigError(f"target_weighted_ce: target weights must be in [0, 1], got {bad} in {list(values)}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ConfigError(f"target_weighted_ce: target weights must sum to 1, {list(values)} sums to {sum(values):g}")
    return values


@register_loss("target_weighted_ce")
def make_target_weighted_ce(target_weights: Sequence[float] | str | None = None, **options: object) -> LossFn:
    """The seed 001 loss: softmax cross-entropy with batch-adaptive target weights ``t`` (background first).

    Other options (e.g. the config's default ``dice_weight``) do not apply to this loss and are ignored with a
    warning.
    """
    weights = torch.tensor(check_target_weights(target_weights))
    if options:
        log.warning("target_weighted_ce ignores the option(s) %s", ", ".join(sorted(options)))

    def loss(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        return target_weighted_ce(logits, target, weights)

    return loss
