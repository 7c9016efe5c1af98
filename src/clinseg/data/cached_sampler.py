"""Class-aware patches read from the preprocessed-case cache, one patch at a time.

The policy follows seed 000's (:mod:`clinseg.data.samplers`): a share ``foreground_fraction`` of patches is
centred on a delineated structure, then on one of the cases delineating it, then on one of its stored voxels
(:attr:`CachedCase.locations`); the other patches are centred anywhere in a case.

One change for partially delineated data: the structure is drawn with a weight inversely proportional to the
number of training cases that delineate it (``balance="delineations"``), not uniformly. A structure that
few cases delineate (OpenKBP: the oesophagus in 44 of 155 training cases, the brainstem in 144) is also
rarely seen in the patches centred on other structures, since those come from cases that mostly lack it;
drawn uniformly, its output stayed at the initial prior for a whole 8-minute CPU run while every other organ
was learned. ``balance="uniform"`` is seed 000's rule (kept by the in-memory sampler of the seed studies).

What differs too is where the voxels come from: each patch (with the context the augmentation needs) is read
from the memory-mapped cache and the case is unmapped again, so memory does not grow with the number of
cases, and the augmentation of :mod:`clinseg.data.augmentation` is applied to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinseg.data.augmentation import Augmenter, centre_crop
from clinseg.data.cache import CachedCase
from clinseg.data.samplers import PatchBatch


class CachedPatchSampler:
    """Draw augmented patches from cached cases.

    Parameters
    ----------
    cases : the training cases in the cache.
    patch_size : ``(Z, Y, X)`` patch size in voxels.
    foreground_fraction : probability that a patch is centred on a delineated structure.
    rng : the generator (its state is what checkpoints save; the batch loader reseeds it per iteration).
    augmenter : applied to every patch (``None``: patches as read).
    keep : per case, the structures whose delineation is used (``None``: all it has); the others become not
        delineated (a study's subsets, seed 000).
    absent_as_background : treat every structure a case does not delineate as delineated and empty (the
        naive use of partial labels that nnU-Net and MONAI make; only for comparisons).
    channels : the image channels to read, in order (``None``: all).
    balance : how the structure of a foreground patch is drawn: ``delineations`` (weight 1 / number of cases
        delineating it) or ``uniform`` (seed 000).
    """

    def __init__(self, cases: Sequence[CachedCase], patch_size: Sequence[int], foreground_fraction: float,
                 rng: np.random.Generator, augmenter: Augmenter | None = None,
                 keep: Sequence[np.ndarray] | None = None, absent_as_background: bool = False,
                 channels: Sequence[int] | None = None, balance: str = "delineations") -> None:
        if not cases:
            raise ValueError("no training cases")
        self.cases = list(cases)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.foreground_fraction = float(foreground_fraction)
        self.rng = rng
        self.augmenter = augmenter
        self.annotated = [c.annotated & (k if keep is not None else True) for c, k in
                          zip(self.cases, keep if keep is not None else [None] * len(self.cases))]
        self.absent_as_background = absent_as_background
        self.channels = list(channels) if channels is not None else None
        n = self.cases[0].num_structures
        # candidates[s] = (case index, voxel indices (K, 3)) of the cases delineating structure s
        self.candidates: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
        for i, case in enumerate(self.cases):
            for s, coords in enumerate(case.locations()):
                if self.annotated[i][s] and len(coords):
                    self.candidates[s].append((i, coords))
        self.sampleable = [s for s, c in enumerate(self.candidates) if c]
        self.structure_weights = structure_weights([len(self.candidates[s]) for s in self.sampleable], balance)

    @property
    def read_size(self) -> tuple[int, ...]:
        """The box read around each centre: the patch, or the augmentation's context."""
        return self.augmenter.context if self.augmenter is not None else self.patch_size

    def sample_centre(self) -> tuple[int, np.ndarray]:
        """Draw ``(case index, centre voxel (Z, Y, X))``."""
        if self.sampleable and self.rng.random() < self.foreground_fraction:
            s = self.sampleable[int(self.rng.choice(len(self.sampleable), p=self.structure_weights))]
            case, coords = self.candidates[s][int(self.rng.integers(len(self.candidates[s])))]
            return case, coords[int(self.rng.integers(len(coords)))]
        case = int(self.rng.integers(len(self.cases)))
        shape = self.cases[case].shape
        # centres that keep the patch inside the volume where it fits (as the whole-volume sampler's corners)
        low = [min(p // 2, s // 2) for p, s in zip(self.patch_size, shape)]
        high = [max(s - (p - p // 2), l) for p, s, l in zip(self.patch_size, shape, low)]
        return case, np.array([int(self.rng.integers(lo, hi + 1)) for lo, hi in zip(low, high)])

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One patch: image ``(C, *P)`` float32, target ``(N, *P)`` uint8, annotated ``(N,)`` bool."""
        index, centre = self.sample_centre()
        case = self.cases[index]
        size = self.read_size
        corner = [int(c) - s // 2 for c, s in zip(centre, size)]
        image, target = case.read_patch(corner, size)
        if self.channels is not None:
            image = image[self.channels]
        annotated = self.annotated[index]
        if not annotated.all() and not self.absent_as_background:
            target = target * annotated[:, None, None, None].astype(np.uint8)
        if self.augmenter is not None:
            image, target, annotated = self.augmenter(image, target, annotated, self.rng)
        else:
            image, target = centre_crop(image, self.patch_size), centre_crop(target, self.patch_size)
        if self.absent_as_background:
            annotated = np.ones_like(annotated)
        return image, target, annotated

    def batch(self, batch_size: int) -> PatchBatch:
        """Stack ``batch_size`` patches."""
        items = [self.sample() for _ in range(batch_size)]
        return PatchBatch(image=np.stack([i[0] for i in items]).astype(np.float32, copy=False),
                          target=np.stack([i[1] for i in items]), annotated=np.stack([i[2] for i in items]))


def structure_weights(delineating_cases: Sequence[int], balance: str = "delineations") -> np.ndarray:
    """Probabilities of drawing each structure for a foreground patch, from the number of cases delineating
    each: ``1 / n`` normalised (``delineations``) or equal (``uniform``)."""
    counts = np.asarray(delineating_cases, dtype=float)
    if balance == "uniform" or counts.size == 0:
        return np.full(counts.size, 1.0 / max(counts.size, 1))
    if balance != "delineations":
        raise ValueError(f"balance must be 'delineations' or 'uniform', got {balance!r}")
    weights = 1.0 / np.maximum(counts, 1.0)
    return weights / weights.sum()
