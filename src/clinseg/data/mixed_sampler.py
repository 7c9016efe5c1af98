"""Axial-slice batches for mixed supervision: annotated, tumour-free and weakly annotated images (seed 001 §3.3).

The thesis trains on 2D axial slices with slice-level labels (lines 1404-1408) and forms every batch of
"k positive cases (containing a tumor) with provided segmentation, m negative cases and n positive cases
without provided segmentation" (lines 1620-1623); in the multiclass case "each tumor subclass has to be
present at least once in each training batch", which it ensures by keeping "lists of paths of images
containing tumor subclasses" to sample from (lines 1697-1714). Its batches hold k = 4, m = 2, n = 4
(lines 1839-1845).

Our volumes are 3D, so an image is one axial slice: a patch ``[1, H, W]`` covering the whole slice (padded),
because a slice-level label says nothing about *where* in the slice the tumour is; a crop could cut it out.

Slice-level labels, ``(Z, N)`` float32 per case (1 = class present in the slice, 0 = absent, NaN = unknown):

* fully annotated cases: from their label maps (:func:`slice_labels_from_target`);
* weakly annotated cases: from ``dataset.json`` (:func:`slice_labels_from_weak`): ``weak_slices`` lists, per
  class or for "tumour" (any class), the slices that contain it; the case-level ``weak_labels`` can only say
  "absent from every slice". A case-level "tumour: true" without ``weak_slices`` tells no slice anything.

The three kinds of images:

* annotated positive: a slice of a fully annotated case containing an annotated class; its segmentation.
* negative: a slice known to contain no class (every label 0), from either kind of case: its segmentation is
  all zero, with ``annotated`` all True ("the ground truth segmentation is simply the zero matrix", line 1617).
* weak positive: a slice of a weakly annotated case known to contain some class: target zero and ``annotated``
  all False, so the segmentation loss never sees it (see :mod:`clinseg.losses.mixed`).

Batches are ordered ``[k annotated positives | m negatives | n weak positives]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from clinseg.data.dataset import ANY_STRUCTURE
from clinseg.data.loading import CaseData
from clinseg.data.samplers import PatchBatch, pad_to

Slice = tuple[int, int]
"""``(source index, z)``: one axial slice of one case."""


@dataclass
class WeakCase:
    """A weakly annotated case: its image ``(C, Z, Y, X)`` float32 and slice labels ``(Z, N)`` float32."""

    case_id: str
    image: np.ndarray
    slice_labels: np.ndarray


def slice_labels_from_target(target: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """Slice-level labels ``(Z, N)`` of a delineated case.

    Parameters
    ----------
    target : ``(N, Z, Y, X)`` binary masks, one per structure.
    annotated : ``(N,)`` bool, the structures the case delineates.

    Returns
    -------
    np.ndarray
        float32, 1 where the structure has a voxel in the axial slice, 0 where it is delineated and has none,
        NaN where it is not delineated.

    Examples
    --------
    >>> t = np.zeros((2, 3, 2, 2), np.uint8); t[0, 1] = 1
    >>> slice_labels_from_target(t, np.array([True, False]))
    array([[ 0., nan],
           [ 1., nan],
           [ 0., nan]], dtype=float32)
    """
    present = target.reshape(target.shape[0], target.shape[1], -1).any(axis=2).T.astype(np.float32)
    present[:, ~np.asarray(annotated, dtype=bool)] = np.nan
    return present


def slice_labels_from_weak(structures: Sequence[str], depth: int, weak_slices: Mapping[str, Sequence[int]],
                           weak_labels: Mapping[str, bool] | None = None) -> np.ndarray:
    """Slice-level labels ``(depth, N)`` of a weakly annotated case from what ``dataset.json`` states.

    Parameters
    ----------
    structures : the dataset's structure names (columns).
    depth : number of axial slices ``Z``.
    weak_slices : structure name or ``"tumour"`` (any structure) -> the slices that contain it; the other
        slices do not.
    weak_labels : case-level labels; ``False`` for a structure (or ``"tumour"``) means absent from every slice.

    Returns
    -------
    np.ndarray
        float32 with 1 / 0 / NaN (unknown). A "tumour" slice in which every structure but one is known absent
        has that one present.

    Raises
    ------
    ValueError
        For a slice index outside ``[0, depth)``.

    Examples
    --------
    >>> slice_labels_from_weak(["a", "b"], 3, {"tumour": [1], "a": [1]})
    array([[ 0.,  0.],
           [ 1., nan],
           [ 0.,  0.]], dtype=float32)
    """
    weak_labels = weak_labels or {}
    for name, indices in weak_slices.items():
        bad = [int(i) for i in indices if not 0 <= int(i) < depth]
        if bad:
            raise ValueError(f"weak_slices[{name!r}] names slice(s) {bad} outside 0..{depth - 1}")
    labels = np.full((depth, len(structures)), np.nan, dtype=np.float32)
    if weak_labels.get(ANY_STRUCTURE) is False:
        labels[:] = 0.0
    if ANY_STRUCTURE in weak_slices:
        outside = np.ones(depth, dtype=bool)
        outside[list(weak_slices[ANY_STRUCTURE])] = False
        labels[outside] = 0.0
    for j, name in enumerate(structures):
        if weak_labels.get(name) is False:
            labels[:, j] = 0.0
        if name in weak_slices:
            labels[:, j] = 0.0
            labels[list(weak_slices[name]), j] = 1.0
    for z in weak_slices.get(ANY_STRUCTURE, ()):
        unknown = np.isnan(labels[z])
        if unknown.sum() == 1 and not (labels[z] == 1).any():
            labels[z, unknown] = 1.0
    return labels


class MixedSliceSampler:
    """Batches of ``k`` annotated positive, ``m`` negative and ``n`` weakly annotated positive axial slices.

    Parameters
    ----------
    full : delineated cases (``image (C, Z, Y, X)``, ``target (N, Z, Y, X)``, ``annotated (N,)``).
    weak : weakly annotated cases with their slice labels.
    patch_size : ``(1, H, W)``; ``H, W`` at least the in-plane size of every case (slices are padded).
    k, m, n : images of each kind per batch (the thesis: 4, 2, 4).
    rng : the generator; checkpoints save its state.

    Every class appears (label 1) in at least one image of every batch: annotated slots first draw from the
    per-class lists of annotated slices (classes that only annotated slices contain first), the weak slots
    then cover the classes still missing.

    Raises
    ------
    ValueError
        When the patch is not one slice covering whole slices, a requested kind has no slice, or the classes
        cannot all be present in a batch of this composition.

    Examples
    --------
    >>> sampler = MixedSliceSampler(full, weak, (1, 96, 96), 4, 2, 4, np.random.default_rng(0))  # doctest: +SKIP
    >>> sampler.batch(10).image_labels.shape                                                     # doctest: +SKIP
    (10, 3)
    """

    def __init__(self, full: Sequence[CaseData], weak: Sequence[WeakCase], patch_size: Sequence[int],
                 k: int, m: int, n: int, rng: np.random.Generator) -> None:
        self.patch_size = tuple(int(p) for p in patch_size)
        if len(self.patch_size) != 3 or self.patch_size[0] != 1:
            raise ValueError(f"mixed supervision trains on axial slices: patch_size must be [1, H, W], "
                             f"got {list(patch_size)}")
        if min(k, m, n) < 0 or k + m + n < 1:
            raise ValueError(f"k, m, n must be >= 0 with a positive sum, got {k}, {m}, {n}")
        self.k, self.m, self.n = int(k), int(m), int(n)
        self.rng = rng
        plane = self.patch_size[1:]
        for case_id, shape in [(c.case_id, c.image.shape) for c in full] + [(w.case_id, w.image.shape) for w in weak]:
            if shape[2] > plane[0] or shape[3] > plane[1]:
                raise ValueError(f"{case_id}: axial slices of {shape[2]} x {shape[3]} voxels do not fit the patch "
                                 f"{plane[0]} x {plane[1]}; slice-level labels need whole slices")
        if not full and not weak:
            raise ValueError("no training cases")
        self.num_classes = int(full[0].target.shape[0] if full else weak[0].slice_labels.shape[1])
        self.images = [pad_to(c.image, self.patch_size, float(c.image.min())) for c in full]
        self.images += [pad_to(w.image, self.patch_size, float(w.image.min())) for w in weak]
        self.targets = [pad_to(c.target, self.patch_size) for c in full]
        self.annotated = [np.asarray(c.annotated, dtype=bool) for c in full]
        self.labels = [slice_labels_from_target(c.target, c.annotated) for c in full]
        self.labels += [np.asarray(w.slice_labels, dtype=np.float32) for w in weak]
        self.num_full = len(full)
        self._index_slices()
        self._check_feasible()

    def _index_slices(self) -> None:
        """Pools of slices: annotated/weak positives (all and per class) and negatives."""
        self.full_pos: list[Slice] = []
        self.weak_pos: list[Slice] = []
        self.negatives: list[Slice] = []
        self.full_by_class: list[list[Slice]] = [[] for _ in range(self.num_classes)]
        self.weak_by_class: list[list[Slice]] = [[] for _ in range(self.num_classes)]
        for source, labels in enumerate(self.labels):
            full = source < self.num_full
            for z, row in enumerate(labels):
                if (row == 0).all():
                    self.negatives.append((source, z))
                elif (row == 1).any():
                    (self.full_pos if full else self.weak_pos).append((source, z))
                    for c in np.flatnonzero(row == 1):
                        (self.full_by_class if full else self.weak_by_class)[c].append((source, z))

    def _check_feasible(self) -> None:
        for name, count, pool in (("k (annotated positive)", self.k, self.full_pos),
                                  ("m (negative)", self.m, self.negatives),
                                  ("n (weakly annotated positive)", self.n, self.weak_pos)):
            if count and not pool:
                raise ValueError(f"{name} = {count} but there is no such slice")
        missing = [c for c in range(self.num_classes) if not self.full_by_class[c] and not self.weak_by_class[c]]
        full_only = sum(1 for c in range(self.num_classes) if self.full_by_class[c] and not self.weak_by_class[c])
        weak_only = sum(1 for c in range(self.num_classes) if self.weak_by_class[c] and not self.full_by_class[c])
        if (missing or self.num_classes > self.k + self.n or full_only > self.k or weak_only > self.n):
            raise ValueError(f"every class must be present in each batch: {self.num_classes} classes, k = {self.k}, "
                             f"n = {self.n}; classes without any positive slice: {missing}, only in annotated "
                             f"slices: {full_only}, only in weak slices: {weak_only}")

    def _draw(self, pool: list[Slice]) -> Slice:
        return pool[int(self.rng.integers(len(pool)))]

    def _positives(self, count: int, pool: list[Slice], by_class: list[list[Slice]], other: list[list[Slice]],
                   uncovered: list[int]) -> list[Slice]:
        """``count`` slices from ``pool``, each aimed at an uncovered class (classes absent from ``other``'s
        lists first), then at random; ``uncovered`` is updated in place."""
        chosen = []
        for _ in range(count):
            targets = [c for c in uncovered if by_class[c]]
            targets.sort(key=lambda c: bool(other[c]))  # stable: keeps the random order within each group
            item = self._draw(by_class[targets[0]] if targets else pool)
            row = self.labels[item[0]][item[1]]
            uncovered[:] = [c for c in uncovered if row[c] != 1]
            chosen.append(item)
        return chosen

    def _item(self, item: Slice, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        source, z = item
        image = self.images[source][:, z:z + 1]
        shape = (self.num_classes, 1, *image.shape[2:])
        labels = self.labels[source][z].copy()
        if kind == "weak":
            return image, np.zeros(shape, np.uint8), np.zeros(self.num_classes, bool), labels
        if source >= self.num_full:  # a tumour-free slice of a weakly annotated case: segmentation all zero
            return image, np.zeros(shape, np.uint8), np.ones(self.num_classes, bool), labels
        return image, self.targets[source][:, z:z + 1], self.annotated[source].copy(), labels

    def batch(self, batch_size: int) -> PatchBatch:
        """``k + m + n`` slices as ``(B, C, 1, H, W)`` images with targets, ``annotated`` and ``image_labels``."""
        if batch_size != self.k + self.m + self.n:
            raise ValueError(f"the mixed sampler makes batches of k + m + n = {self.k + self.m + self.n} "
                             f"images, asked for {batch_size}")
        uncovered = [int(c) for c in self.rng.permutation(self.num_classes)]
        full = self._positives(self.k, self.full_pos, self.full_by_class, self.weak_by_class, uncovered)
        negatives = [self._draw(self.negatives) for _ in range(self.m)]
        weak = self._positives(self.n, self.weak_pos, self.weak_by_class, self.full_by_class, uncovered)
        items = ([self._item(i, "full") for i in full] + [self._item(i, "negative") for i in negatives]
                 + [self._item(i, "weak") for i in weak])
        return PatchBatch(
            image=np.stack([i[0] for i in items]).astype(np.float32, copy=False),
            target=np.stack([i[1] for i in items]),
            annotated=np.stack([i[2] for i in items]),
            image_labels=np.stack([i[3] for i in items]).astype(np.float32),
        )
