"""Patches from organ crops: the training data of seed 003's organ segmentation network.

The seed trains the organ network on "the region of the image including the organ with 15 voxels padding on
each side", zero-padding images so the margin exists at the borders. :class:`OrganCropSampler` draws, for
each patch, an organ, a case that delineates it and a margin (fixed, or drawn per side from a range: the
seed's discussion suggests varying the context for robustness), crops that padded box and cuts a patch from
it. Everything outside the crop is zero, as it is at inference, where the network sees only the crop.

:func:`organ_crops` turns whole cases into one crop per (case, organ) with a fixed margin: the validation
data (ground-truth-localised Dice, the organ network's own score).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinseg.data.crop import Box, bounding_box, box_size, crop, pad_box, random_margin
from clinseg.data.loading import CaseData
from clinseg.data.samplers import PatchBatch

#: Seed 003's context around an organ, voxels per side.
DEFAULT_MARGIN = 15


def _margin_range(margin: int, jitter: Sequence[int] | None) -> tuple[int, int]:
    if jitter is None:
        return margin, margin
    low, high = (int(v) for v in jitter)
    if not 0 <= low <= high:
        raise ValueError(f"margin jitter must be [low, high] with 0 <= low <= high, got {list(jitter)}")
    return low, high


class OrganCropSampler:
    """Draw patches from padded organ crops.

    Parameters
    ----------
    cases : training cases (full volumes, ``image (C, Z, Y, X)``, ``target (N, Z, Y, X)``).
    patch_size : ``(Z, Y, X)`` patch; crops smaller than it are zero-padded around, larger ones are sampled.
    foreground_fraction : share of patches centred on a voxel of the chosen organ (others: uniform in crop).
    rng : the generator (its state is checkpointed, so resumed training draws the same patches).
    margin : fixed context in voxels per side (seed 003: 15).
    jitter : ``[low, high]``: draw each side's margin uniformly in this range instead of ``margin``.
    """

    def __init__(self, cases: Sequence[CaseData], patch_size: Sequence[int], foreground_fraction: float,
                 rng: np.random.Generator, *, margin: int = DEFAULT_MARGIN, jitter: Sequence[int] | None = None) -> None:
        if not cases:
            raise ValueError("no training cases")
        self.cases = list(cases)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.foreground_fraction = float(foreground_fraction)
        self.rng = rng
        self.margin_range = _margin_range(int(margin), jitter)
        # boxes[n] = [(case index, organ box)] for every case delineating a non-empty organ n; voxels[(i, n)]
        # = the organ's voxel coordinates (all inside its box, hence inside every padded crop of it)
        self.boxes: list[list[tuple[int, Box]]] = [[] for _ in range(cases[0].target.shape[0])]
        self.voxels: dict[tuple[int, int], np.ndarray] = {}
        for i, case in enumerate(self.cases):
            for n in np.flatnonzero(case.annotated):
                box = bounding_box(case.target[n])
                if box is not None:
                    self.boxes[n].append((i, box))
                    self.voxels[(i, int(n))] = np.argwhere(case.target[n])
        self.organs = [n for n, b in enumerate(self.boxes) if b]
        if not self.organs:
            raise ValueError("no delineated organ to crop around")

    def _patch_box(self, crop_box: Box, index: int, organ: int) -> Box:
        """A patch-sized box inside ``crop_box`` (or centred on it when the crop is smaller)."""
        corner = []
        size = box_size(crop_box)
        centre = None
        if self.rng.random() < self.foreground_fraction:
            voxels = self.voxels[(index, organ)]
            centre = voxels[int(self.rng.integers(len(voxels)))] - np.array([lo for lo, _ in crop_box])
        for axis, ((lo, _hi), s, p) in enumerate(zip(crop_box, size, self.patch_size)):
            if s <= p:
                start = lo - (p - s) // 2
            elif centre is not None:
                start = lo + int(np.clip(centre[axis] - p // 2, 0, s - p))
            else:
                start = lo + int(self.rng.integers(0, s - p + 1))
            corner.append(start)
        return tuple((c, c + p) for c, p in zip(corner, self.patch_size))  # type: ignore[return-value]

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One patch: image ``(C, *P)``, target ``(N, *P)``, annotated ``(N,)``."""
        organ = self.organs[int(self.rng.integers(len(self.organs)))]
        index, box = self.boxes[organ][int(self.rng.integers(len(self.boxes[organ])))]
        case = self.cases[index]
        low, high = self.margin_range
        crop_box = pad_box(box, random_margin(self.rng, low, high))
        patch_box = self._patch_box(crop_box, index, organ)
        image, target = crop(case.image, patch_box), crop(case.target, patch_box)
        # zero what lies outside the crop (the network never sees it at inference)
        inside = np.zeros(self.patch_size, dtype=bool)
        inside[tuple(slice(max(c0 - p0, 0), max(c1 - p0, 0)) for (c0, c1), (p0, _) in zip(crop_box, patch_box))] = True
        image *= inside
        target *= inside
        return image, target, case.annotated

    def batch(self, batch_size: int) -> PatchBatch:
        """Stack ``batch_size`` patches."""
        items = [self.sample() for _ in range(batch_size)]
        return PatchBatch(image=np.stack([i[0] for i in items]).astype(np.float32, copy=False),
                          target=np.stack([i[1] for i in items]), annotated=np.stack([i[2] for i in items]))


def organ_crops(cases: Sequence[CaseData], margin: int = DEFAULT_MARGIN) -> list[CaseData]:
    """One crop per (case, delineated organ) with ``margin`` voxels of context; each crop is annotated for
    its own organ only (other organs may be cut by the crop border). Geometry keeps the crop's shape."""
    out = []
    for case in cases:
        for n in np.flatnonzero(case.annotated):
            box = bounding_box(case.target[n])
            if box is None:
                continue
            padded = pad_box(box, margin)
            annotated = np.zeros_like(case.annotated)
            annotated[n] = True
            out.append(CaseData(f"{case.case_id}/{n}", crop(case.image, padded), crop(case.target, padded),
                                annotated, case.geometry.with_shape(box_size(padded))))
    return out
