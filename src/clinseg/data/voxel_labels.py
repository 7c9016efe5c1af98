"""Voxel-level labels 1 / 0 / unknown per class, derived from partial delineations and relations.

Seed 001 §4.2.1.2: in a training image each voxel has, for each class, the label positive, negative or
unknown. A class the case does not delineate is unknown everywhere — except where the case's other
delineations imply it: outside a delineated eye the lens is negative; inside a delineated brain the eye is
negative; inside a delineated lens the eye is positive. Seed 000's per-class masking (``c_n = 0``) is the
special case that ignores the relations.

The network of seed 001 sees the two sides of a bilateral organ (left and right eye) as one class; merging
keeps a voxel positive when either side is, negative when both sides are known negative, unknown otherwise.

Labels are stored in the ``uint8`` target itself, :data:`UNKNOWN` marking unknown voxels (nnU-Net's
"ignore label" idea), so flips and crops carry them along with the image.

Example
-------
>>> import numpy as np
>>> eye = np.zeros((1, 1, 6), bool); eye[..., 1:4] = True
>>> lens = np.zeros_like(eye); lens[..., 2] = True
>>> rel = Relations(inside=(("Lens", "Eye"),))
>>> labels, names = voxel_labels(np.stack([eye, lens]), np.array([True, False]), ("Eye", "Lens"), rel)
>>> labels[1, 0, 0].tolist()          # lens: negative outside the eye, unknown inside it
[0, 255, 255, 255, 0, 0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np

from clinseg.data.loading import UNKNOWN, CaseData
from clinseg.data.relations import Relations

__all__ = ["UNKNOWN", "Unknowns", "known_fraction", "organ_case", "voxel_labels"]


#: ``voxel``: unknowns reduced by the relations (seed 001); ``class``: a class is known everywhere or
#: nowhere in a case (seed 000's ``c_n``).
Unknowns = Literal["voxel", "class"]


def _member_labels(target: np.ndarray, annotated: np.ndarray, structures: Sequence[str], relations: Relations,
                   unknowns: Unknowns) -> tuple[np.ndarray, np.ndarray]:
    """Per structure, ``(positive, negative)`` bool arrays ``(N, Z, Y, X)`` of what is known."""
    index = {name: n for n, name in enumerate(structures)}
    mask = target.astype(bool)
    positive = mask & annotated[:, None, None, None]
    negative = ~mask & annotated[:, None, None, None]
    if unknowns == "class":
        return positive, negative
    for n, name in enumerate(structures):
        if annotated[n]:
            continue
        for outer in relations.containers(name):  # outside a delineated container: negative
            if annotated[index[outer]]:
                negative[n] |= ~mask[index[outer]]
        for other in relations.exclusions(name):  # inside a delineated exclusive structure: negative
            if annotated[index[other]]:
                negative[n] |= mask[index[other]]
        for inner in relations.contents(name):  # inside a delineated content: positive
            if annotated[index[inner]]:
                positive[n] |= mask[index[inner]]
        negative[n] &= ~positive[n]
    return positive, negative


def voxel_labels(target: np.ndarray, annotated: np.ndarray, structures: Sequence[str], relations: Relations,
                 *, unknowns: Unknowns = "voxel", merge_bilateral: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels ``(K, Z, Y, X)`` uint8 (1 positive, 0 negative, :data:`UNKNOWN`) and their class names.

    Parameters
    ----------
    target : ``(N, Z, Y, X)`` binary masks in ``structures`` order (zero where not delineated).
    annotated : ``(N,)`` bool, which structures the case delineates.
    structures : the dataset's structure names.
    relations : the dataset's relations (:mod:`clinseg.data.relations`).
    unknowns : ``voxel`` (relations reduce the unknowns) or ``class`` (per-class masking only).
    merge_bilateral : one class per bilateral organ (``K`` = number of organs) instead of one per side.
    """
    annotated = np.asarray(annotated, dtype=bool)
    positive, negative = _member_labels(target, annotated, structures, relations, unknowns)
    names = relations.entities(structures) if merge_bilateral else tuple(structures)
    index = {name: n for n, name in enumerate(structures)}
    labels = np.full((len(names),) + target.shape[1:], UNKNOWN, dtype=np.uint8)
    for k, name in enumerate(names):
        members = [index[m] for m in relations.members(name)] if merge_bilateral else [index[name]]
        pos = np.any(positive[members], axis=0)
        neg = np.all(negative[members], axis=0)
        labels[k][neg] = 0
        labels[k][pos] = 1
    return labels, names


def organ_case(case: CaseData, structures: Sequence[str], relations: Relations, *, unknowns: Unknowns = "voxel",
               merge_bilateral: bool = False) -> CaseData:
    """``case`` with :func:`voxel_labels` as its target; ``annotated`` = the class has a known voxel."""
    labels, _ = voxel_labels(case.target, case.annotated, structures, relations, unknowns=unknowns,
                             merge_bilateral=merge_bilateral)
    annotated = (labels != UNKNOWN).reshape(labels.shape[0], -1).any(axis=1)
    return dataclasses.replace(case, target=labels, annotated=annotated)


def known_fraction(labels: np.ndarray) -> np.ndarray:
    """Share of known voxels per class of a ``(K, Z, Y, X)`` label array (for logs and reports)."""
    return (labels != UNKNOWN).reshape(labels.shape[0], -1).mean(axis=1)
