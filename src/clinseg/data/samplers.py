"""Random cubic patches with class-aware foreground oversampling (seed 000 training setting).

A share ``foreground_fraction`` of patches is centred on a delineated structure: the structure is drawn
uniformly over the structures (not over voxels), so a lens of a few voxels is seen as often as the
brainstem; then a case that delineates it, then one of its voxels. The other patches are drawn uniformly
over the volume. Everything is driven by one ``numpy.random.Generator`` whose state is saved with the
checkpoints, so an interrupted training resumes with the very same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clinseg.data.loading import CaseData

#: Foreground voxel coordinates kept per case and structure (a random subset, enough to centre patches).
MAX_CANDIDATES = 2000


@dataclass
class PatchBatch:
    """A batch: ``image (B, C, *P)`` float32, ``target (B, N, *P)`` uint8, ``annotated (B, N)`` bool.

    ``image_labels`` (optional, ``(B, N)`` float32): image-level labels for mixed supervision, 1 = the class
    is present in the image, 0 = absent, NaN = unknown.
    """

    image: np.ndarray
    target: np.ndarray
    annotated: np.ndarray
    image_labels: np.ndarray | None = None


def pad_to(array: np.ndarray, shape: Sequence[int], value: float = 0.0) -> np.ndarray:
    """Pad the trailing spatial axes of ``array`` (``(C, Z, Y, X)``) symmetrically up to ``shape``."""
    spatial = array.shape[-3:]
    if all(s >= p for s, p in zip(spatial, shape)):
        return array
    pads = [(0, 0)] * (array.ndim - 3)
    for s, p in zip(spatial, shape):
        extra = max(p - s, 0)
        pads.append((extra // 2, extra - extra // 2))
    return np.pad(array, pads, mode="constant", constant_values=value)


def corner_around(center: Sequence[int], patch_size: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """The corner of a ``patch_size`` patch centred on ``center`` (voxel index), shifted to lie inside a
    volume of ``shape`` (``(Z, Y, X)``; the volume is at least as large as the patch)."""
    return tuple(int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(center, patch_size, shape))


class ClassAwarePatchSampler:
    """Draw patches from in-memory cases.

    Parameters
    ----------
    cases : the training cases (images normalised, targets and annotation masks loaded).
    patch_size : ``(Z, Y, X)`` patch size in voxels.
    foreground_fraction : probability that a patch is centred on a delineated structure.
    rng : the generator; its ``bit_generator.state`` is what checkpoints save.

    Examples
    --------
    >>> sampler = ClassAwarePatchSampler(cases, (48, 48, 48), 0.5, np.random.default_rng(0))  # doctest: +SKIP
    >>> batch = sampler.batch(4)                                                                # doctest: +SKIP
    """

    def __init__(
        self,
        cases: Sequence[CaseData],
        patch_size: Sequence[int],
        foreground_fraction: float,
        rng: np.random.Generator,
    ) -> None:
        if not cases:
            raise ValueError("no training cases")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.foreground_fraction = float(foreground_fraction)
        self.rng = rng
        self.images = [pad_to(c.image, self.patch_size, float(c.image.min())) for c in cases]
        self.targets = [pad_to(c.target, self.patch_size) for c in cases]
        self.annotated = [c.annotated.copy() for c in cases]
        # candidates[n] = list of (case index, coordinates (K, 3)) for cases that delineate structure n
        n_structures = cases[0].target.shape[0]
        pick = np.random.default_rng(12345)  # fixed: candidate subsets must not consume the training rng
        self.candidates: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n_structures)]
        for i, target in enumerate(self.targets):
            for n in range(n_structures):
                if not self.annotated[i][n]:
                    continue
                coords = np.argwhere(target[n] == 1)
                if len(coords) == 0:
                    continue
                if len(coords) > MAX_CANDIDATES:
                    coords = coords[pick.choice(len(coords), MAX_CANDIDATES, replace=False)]
                self.candidates[n].append((i, coords))
        self.sampleable = [n for n, c in enumerate(self.candidates) if c]

    def sample_location(self) -> tuple[int, tuple[int, ...]]:
        """Draw ``(case index, patch corner)``."""
        if self.sampleable and self.rng.random() < self.foreground_fraction:
            n = self.sampleable[int(self.rng.integers(len(self.sampleable)))]
            case, coords = self.candidates[n][int(self.rng.integers(len(self.candidates[n])))]
            center = coords[int(self.rng.integers(len(coords)))]
            return case, corner_around(center, self.patch_size, self.images[case].shape[1:])
        case = int(self.rng.integers(len(self.images)))
        shape = self.images[case].shape[1:]
        corner = tuple(int(self.rng.integers(0, s - p + 1)) for s, p in zip(shape, self.patch_size))
        return case, corner

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One patch: image ``(C, *P)``, target ``(N, *P)``, annotated ``(N,)``."""
        case, corner = self.sample_location()
        sl = (slice(None),) + tuple(slice(c, c + p) for c, p in zip(corner, self.patch_size))
        return self.images[case][sl], self.targets[case][sl], self.annotated[case]

    def batch(self, batch_size: int) -> PatchBatch:
        """Stack ``batch_size`` patches."""
        items = [self.sample() for _ in range(batch_size)]
        return PatchBatch(
            image=np.stack([i[0] for i in items]).astype(np.float32, copy=False),
            target=np.stack([i[1] for i in items]),
            annotated=np.stack([i[2] for i in items]),
        )
