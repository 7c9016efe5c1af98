"""Patches for restoration pretraining: random crops of unlabeled images, distorted, with the crop as target.

Seed 002 §2.2: "The input of the model is a distorted patch and original patch is used as a label", so no
annotation is read. :class:`RestorationSource` is a training-loop sampler (``.rng`` and ``.batch``, see
:class:`clinseg.training.sampling.PatchSource`); its batches are
``PatchBatch(image=distorted, target=original, annotated=ones)``.

Arrays: an image is ``(C, Z, Y, X)`` float with intensities in [0, 1] (the distortions assume that range);
a batch is ``(B, C, *patch_size)`` float32. A patch one voxel thick along one axis (``[1, 64, 64]``) is a
2-D slice: that axis is squeezed before the distortions, so their boxes and windows are 2-D.

Example
-------
>>> images = [np.random.default_rng(0).random((1, 8, 32, 32), dtype=np.float32)]
>>> source = RestorationSource(images, (1, 16, 16), np.random.default_rng(0))
>>> batch = source.batch(4)
>>> batch.image.shape, batch.target.shape, batch.annotated.shape
((4, 1, 1, 16, 16), (4, 1, 1, 16, 16), (4, 1))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinseg.data.samplers import PatchBatch, pad_to
from clinseg.pretraining.distortions import DistortionConfig, distort_batch

__all__ = ["RestorationSource", "distort_patches", "validation_pairs"]


def distort_patches(
    patches: np.ndarray, rng: np.random.Generator, config: DistortionConfig | None = None
) -> np.ndarray:
    """Distort a ``(B, C, Z, Y, X)`` batch; a spatial axis of size 1 is squeezed so the distortions are 2-D.

    Models Genesis draws its box sizes and shuffling windows as fractions of each patch edge, so a slice
    distorted as a ``(1, H, W)`` volume would get boxes of edge 0-1 along the thin axis; squeezing it gives
    the 2-D distortions of seed 002's 2-D network. Returns a new array of the same shape and dtype.
    """
    if patches.ndim != 5:
        raise ValueError(f"patches must be (B, C, Z, Y, X), got shape {patches.shape}")
    thin = [axis for axis in (2, 3, 4) if patches.shape[axis] == 1]
    if len(thin) > 1:
        raise ValueError(f"patches {patches.shape[2:]} are thin along {len(thin)} axes; at most one may be 1")
    if not thin:
        return distort_batch(patches, rng, config)
    return np.expand_dims(distort_batch(np.squeeze(patches, axis=thin[0]), rng, config), thin[0])


class RestorationSource:
    """Random patches of in-memory images, distorted on the fly or taken from a precomputed pool.

    Parameters
    ----------
    images : ``(C, Z, Y, X)`` arrays, same ``C``, intensities in [0, 1]; an image smaller than the patch
        is zero-padded (symmetrically) up to it.
    patch_size : ``(Z, Y, X)`` patch in voxels; one axis may be 1 (2-D slices).
    rng : the generator of every draw (image, position, distortion); checkpoints save its state, so an
        interrupted run resumes with the same patches.
    distortions : probabilities and sizes (default: Models Genesis).
    precompute : 0 = a new distorted patch each time; N > 0 = draw N pairs once, here, and cycle through
        them in order (seed 002 "pregenerated" its distorted data). :attr:`position` is the index of the
        next pair; a resumed run sets it to ``iteration * batch_size % N``.

    Each patch picks an image uniformly, then a corner uniformly among those that keep it inside the image.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        patch_size: Sequence[int],
        rng: np.random.Generator,
        distortions: DistortionConfig | None = None,
        *,
        precompute: int = 0,
    ) -> None:
        if not images:
            raise ValueError("no images to draw restoration patches from")
        self.patch_size = tuple(int(p) for p in patch_size)
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size must be three positive sizes (Z, Y, X), got {patch_size}")
        channels = {np.shape(im)[0] for im in images}
        if len(channels) != 1 or any(np.ndim(im) != 4 for im in images):
            raise ValueError(f"images must be (C, Z, Y, X) with one channel count, got "
                             f"{sorted({np.shape(im) for im in images})}")
        lo, hi = min(float(np.min(im)) for im in images), max(float(np.max(im)) for im in images)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"image intensities must lie in [0, 1] for the distortions, got [{lo:g}, {hi:g}]")
        self.images = [pad_to(np.asarray(im, dtype=np.float32), self.patch_size, 0.0) for im in images]
        self.rng = rng
        self.distortions = distortions or DistortionConfig()
        self.position = 0
        self.pool: tuple[np.ndarray, np.ndarray] | None = None
        if precompute < 0:
            raise ValueError(f"precompute must be >= 0, got {precompute}")
        if precompute:
            self.pool = self._fresh(precompute)

    @property
    def channels(self) -> int:
        """Image channels ``C`` (the network's input and output channels)."""
        return int(self.images[0].shape[0])

    def crops(self, count: int) -> np.ndarray:
        """``count`` undistorted patches ``(count, C, *patch_size)`` float32 at random positions."""
        out = np.empty((count, self.channels, *self.patch_size), dtype=np.float32)
        for i in range(count):
            image = self.images[int(self.rng.integers(len(self.images)))]
            corner = [int(self.rng.integers(0, s - p + 1)) for s, p in zip(image.shape[1:], self.patch_size)]
            out[i] = image[(slice(None), *(slice(c, c + p) for c, p in zip(corner, self.patch_size)))]
        return out

    def _fresh(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        original = self.crops(count)
        return distort_patches(original, self.rng, self.distortions), original

    def _from_pool(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.pool is not None
        size = len(self.pool[0])
        index = (self.position + np.arange(count)) % size
        self.position = int((self.position + count) % size)
        return self.pool[0][index], self.pool[1][index]

    def batch(self, batch_size: int) -> PatchBatch:
        """``PatchBatch(image=distorted, target=original, annotated=ones (B, C) bool)``, float32 patches."""
        distorted, original = self._from_pool(batch_size) if self.pool is not None else self._fresh(batch_size)
        return PatchBatch(image=distorted, target=original,
                          annotated=np.ones((batch_size, self.channels), dtype=bool))


def validation_pairs(
    images: Sequence[np.ndarray],
    patch_size: Sequence[int],
    count: int,
    seed: int,
    distortions: DistortionConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of ``count`` (distorted, original) patches ``(count, C, *patch_size)``, seeded.

    Drawn once from the held-out images so that every validation scores the same patches and the
    restoration losses of a run are comparable (``best.pt`` = the lowest one).
    """
    source = RestorationSource(images, patch_size, np.random.default_rng(seed), distortions)
    batch = source.batch(count)
    return batch.image, batch.target
