"""Validation during training: whole-volume sliding-window prediction of held-out cases, Dice per structure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from clinseg.data.loading import UNKNOWN, CaseData
from clinseg.inference.predictor import probabilities_to_masks
from clinseg.inference.sliding_window import predict_probabilities


def dice(pred: np.ndarray, ref: np.ndarray, known: np.ndarray | None = None) -> float:
    """Dice of two boolean arrays (1.0 when both are empty), over the ``known`` voxels only when given."""
    if known is not None:
        pred, ref = pred & known, ref & known
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, ref).sum()) / total


def validation_scores(
    model: torch.nn.Module,
    cases: Sequence[CaseData],
    structures: Sequence[str],
    *,
    patch_size: Sequence[int],
    activation: str,
    overlap: float,
    threshold: float,
    device: torch.device,
) -> dict[str, float]:
    """Mean Dice over (case, delineated structure) pairs, and per structure (``dice/<name>``).

    Structures a validation case does not delineate are skipped, never scored.
    """
    per_structure: dict[str, list[float]] = {s: [] for s in structures}
    was_training = model.training
    for case in cases:
        probs = predict_probabilities(
            model, case.image, tuple(patch_size), overlap=overlap, activation=activation, device=device
        )
        masks = probabilities_to_masks(probs, activation, threshold)
        for n, name in enumerate(structures):
            if case.annotated[n]:
                target = case.target[n]
                known = target != UNKNOWN
                per_structure[name].append(dice(masks[n] > 0, target == 1, None if known.all() else known))
    model.train(was_training)
    scores = {f"dice/{s}": float(np.mean(v)) for s, v in per_structure.items() if v}
    scores["dice"] = float(np.mean(list(scores.values()))) if scores else float("nan")
    return scores
