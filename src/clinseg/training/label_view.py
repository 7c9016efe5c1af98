"""The classes a run trains on and their labels: the dataset's structures, or its organs with voxel-level
unknowns (seed 001 §4.2.1.2; :attr:`TrainConfig.unknowns`, :attr:`TrainConfig.merge_bilateral`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from clinseg.data.dataset import DatasetSpec
from clinseg.data.loading import CaseData
from clinseg.data.voxel_labels import UNKNOWN, organ_case
from clinseg.training.config import TrainConfig

__all__ = ["output_structures", "training_view", "validation_view"]


def output_structures(cfg: TrainConfig, spec: DatasetSpec) -> tuple[str, ...]:
    """The network's classes in output order: the structures, or the organs when bilateral pairs merge."""
    return spec.relations.entities(spec.structures) if cfg.merge_bilateral else spec.structures


def _relabelled(cfg: TrainConfig) -> bool:
    return bool(cfg.unknowns) or cfg.merge_bilateral


def training_view(cases: Sequence[CaseData], cfg: TrainConfig, spec: DatasetSpec) -> list[CaseData]:
    """Training cases with voxel-level labels (1, 0, ``UNKNOWN``) when the config asks for them."""
    if not _relabelled(cfg):
        return list(cases)
    return [organ_case(c, spec.structures, spec.relations, unknowns=cfg.unknowns or "class",  # type: ignore[arg-type]
                       merge_bilateral=cfg.merge_bilateral) for c in cases]


def _unscored_absent(case: CaseData, spec: DatasetSpec) -> CaseData:
    absent = set(spec.case_absent.get(case.case_id, ()))
    if not absent:
        return case
    scored = np.array([a and s not in absent for a, s in zip(case.annotated, spec.structures)], dtype=bool)
    return dataclasses.replace(case, annotated=scored)


def validation_view(cases: Sequence[CaseData], cfg: TrainConfig, spec: DatasetSpec) -> list[CaseData]:
    """Validation cases in the output classes, plain binary targets; a class counts as delineated only
    where it is known everywhere (a merged organ with one side delineated is not scored).

    A structure declared absent from a case (``absent`` in dataset.json, e.g. another task's classes in a
    multi-task union) is trained as negative but not scored: its Dice is 1 for any empty prediction, so
    counting it would favour checkpoints that predict nothing (the multi-task study's first joint networks
    kept iteration 200 that way).
    """
    cases = [_unscored_absent(c, spec) for c in cases]
    if not _relabelled(cfg):
        return cases
    out = []
    for case in cases:
        labels = organ_case(case, spec.structures, spec.relations, unknowns="class",
                            merge_bilateral=cfg.merge_bilateral).target
        known = (labels != UNKNOWN).reshape(labels.shape[0], -1).all(axis=1)
        out.append(dataclasses.replace(case, target=(labels == 1).astype(np.uint8), annotated=known))
    return out
