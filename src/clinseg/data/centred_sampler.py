"""Class-centred batches over bit-packed voxel-level labels (seed 001 §4.2.1.2).

Per case and class a bounding box of the class's positive voxels is computed once (two boxes, one per
connected component, for a bilateral organ seen as one class, e.g. both eyes). Each batch starts with one
patch centred on each class — a random case that has it, a random point of one of its boxes — so every
class has positive and negative voxels in every batch; the remaining patches are centred on the largest
class (the seed: the brain) or drawn at random.

Labels are the uint8 targets of :mod:`clinseg.data.voxel_labels` (1, 0, ``UNKNOWN``); they are kept in
memory bit-packed (:mod:`clinseg.data.bitpack`): one integer volume of positive bits and one of known bits
per case, instead of one byte per class and voxel.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import cc3d
import numpy as np

from clinseg.data.bitpack import pack_masks, unpack_masks
from clinseg.data.loading import CaseData
from clinseg.data.samplers import PatchBatch, corner_around, pad_to
from clinseg.data.voxel_labels import UNKNOWN

__all__ = ["Box", "ClassCentredSampler", "class_boxes"]


@dataclass(frozen=True)
class Box:
    """Voxel bounding box ``[lo, hi]`` (both inclusive), ``(Z, Y, X)`` indices."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    @property
    def volume(self) -> int:
        return int(np.prod([h - lo + 1 for lo, h in zip(self.lo, self.hi)]))


def _box_of(mask: np.ndarray) -> Box:
    coords = np.argwhere(mask)
    return Box(tuple(int(v) for v in coords.min(axis=0)), tuple(int(v) for v in coords.max(axis=0)))  # type: ignore[arg-type]


def class_boxes(labels: np.ndarray, two_sided: Collection[int] = ()) -> list[list[Box]]:
    """Bounding boxes of each class's positive voxels in one case: ``labels (K, Z, Y, X)`` uint8.

    A class in ``two_sided`` gets the boxes of its two largest connected components (one if it has one
    component); the others one box. A class without positive voxels gets none.
    """
    boxes: list[list[Box]] = []
    for k in range(labels.shape[0]):
        positive = labels[k] == 1
        if not positive.any():
            boxes.append([])
        elif k in two_sided:
            components = cc3d.connected_components(positive.view(np.uint8), connectivity=26)
            sizes = np.bincount(components.ravel())[1:]
            largest = np.argsort(sizes)[::-1][:2] + 1
            boxes.append([_box_of(components == i) for i in largest])
        else:
            boxes.append([_box_of(positive)])
    return boxes


class ClassCentredSampler:
    """Patches of ``patch_size`` (e.g. ``(1, 96, 96)`` for axial slices), the first of each batch centred on
    each class in turn.

    Parameters
    ----------
    cases : training cases whose ``target`` holds voxel-level labels (1, 0, ``UNKNOWN``), ``(K, Z, Y, X)``.
    patch_size : ``(Z, Y, X)`` in voxels.
    rng : the generator; its state is what checkpoints save.
    two_sided : classes that are bilateral organs (two boxes per case).
    rest : what the patches after the first ``K`` are centred on: ``largest`` (the class with the largest
        boxes, seed 001) or ``random`` (uniform over the volume).
    """

    def __init__(self, cases: Sequence[CaseData], patch_size: Sequence[int], rng: np.random.Generator, *,
                 two_sided: Collection[int] = (), rest: Literal["largest", "random"] = "largest") -> None:
        if not cases:
            raise ValueError("no training cases")
        if rest not in ("largest", "random"):
            raise ValueError(f"rest must be 'largest' or 'random', got {rest!r}")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rng = rng
        self.rest = rest
        self.num_classes = int(cases[0].target.shape[0])
        self.images = [pad_to(c.image, self.patch_size, float(c.image.min())) for c in cases]
        labels = [pad_to(c.target, self.patch_size, UNKNOWN) for c in cases]
        self.positive = [pack_masks(t == 1) for t in labels]
        self.known = [pack_masks(t != UNKNOWN) for t in labels]
        per_case = [class_boxes(t, two_sided) for t in labels]
        #: boxes[k] = [(case index, boxes of class k in that case)] over the cases that have class k
        self.boxes = [[(i, b[k]) for i, b in enumerate(per_case) if b[k]] for k in range(self.num_classes)]
        self.classes = [k for k in range(self.num_classes) if self.boxes[k]]
        if not self.classes:
            raise ValueError("no training case has a positive voxel of any class")
        mean_volume = [np.mean([sum(b.volume for b in bs) for _, bs in self.boxes[k]]) for k in self.classes]
        self.largest = self.classes[int(np.argmax(mean_volume))]

    @property
    def label_bytes(self) -> int:
        """Memory held by the packed labels (both bit volumes of every case)."""
        return int(sum(p.nbytes + k.nbytes for p, k in zip(self.positive, self.known)))

    def centred_on(self, k: int) -> tuple[int, tuple[int, ...]]:
        """``(case, corner)`` of a patch centred on class ``k``: a random case that has it, one of its boxes,
        a uniform point in that box."""
        case, boxes = self.boxes[k][int(self.rng.integers(len(self.boxes[k])))]
        box = boxes[int(self.rng.integers(len(boxes)))]
        center = [int(self.rng.integers(lo, hi + 1)) for lo, hi in zip(box.lo, box.hi)]
        return case, corner_around(center, self.patch_size, self.images[case].shape[1:])

    def anywhere(self) -> tuple[int, tuple[int, ...]]:
        """``(case, corner)`` drawn uniformly."""
        case = int(self.rng.integers(len(self.images)))
        shape = self.images[case].shape[1:]
        return case, tuple(int(self.rng.integers(0, s - p + 1)) for s, p in zip(shape, self.patch_size))

    def locations(self, batch_size: int) -> list[tuple[int, tuple[int, ...]]]:
        """The batch's ``(case, corner)`` list: one per class first, then the rest."""
        first = list(self.classes)
        if batch_size < len(first):  # the seed assumes batches larger than the number of classes
            first = [first[i] for i in sorted(self.rng.choice(len(first), batch_size, replace=False))]
        out = [self.centred_on(k) for k in first]
        for _ in range(batch_size - len(out)):
            out.append(self.centred_on(self.largest) if self.rest == "largest" else self.anywhere())
        return out

    def patch(self, case: int, corner: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(C, *P)`` and decoded labels ``(K, *P)`` (1, 0, ``UNKNOWN``) of one patch."""
        sl = tuple(slice(c, c + p) for c, p in zip(corner, self.patch_size))
        positive = unpack_masks(self.positive[case][sl], self.num_classes)
        known = unpack_masks(self.known[case][sl], self.num_classes)
        return self.images[case][(slice(None),) + sl], np.where(known == 1, positive, np.uint8(UNKNOWN))

    def batch(self, batch_size: int) -> PatchBatch:
        """A batch whose ``annotated (B, K)`` says which classes have a known voxel in each patch."""
        items = [self.patch(case, corner) for case, corner in self.locations(batch_size)]
        target = np.stack([t for _, t in items])
        return PatchBatch(image=np.stack([i for i, _ in items]).astype(np.float32, copy=False), target=target,
                          annotated=(target != UNKNOWN).reshape(target.shape[:2] + (-1,)).any(axis=2))
