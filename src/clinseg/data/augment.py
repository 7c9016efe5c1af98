"""Optional patch augmentation (off by default, as in seed 000): random flips and intensity jitter.

Pure numpy, driven by the sampler's generator so that resumed runs see the same augmented patches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_flip(
    image: np.ndarray, target: np.ndarray, axes: Sequence[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flip a batch ``(B, C, Z, Y, X)`` / ``(B, N, Z, Y, X)`` along each of ``axes`` (0=Z, 1=Y, 2=X) with p=0.5.

    One decision per sample and axis. Flipping the left-right axis mirrors lateralised structures, so it
    is only correct for datasets without left/right classes.
    """
    image, target = image.copy(), target.copy()
    for b in range(image.shape[0]):
        for axis in axes:
            if rng.random() < 0.5:
                image[b] = np.flip(image[b], axis=1 + axis)
                target[b] = np.flip(target[b], axis=1 + axis)
    return image, target


def random_intensity(
    image: np.ndarray, rng: np.random.Generator, scale: float = 0.1, shift: float = 0.1
) -> np.ndarray:
    """Multiply each sample/channel by ``U(1-scale, 1+scale)`` and add ``U(-shift, shift)`` (normalised units)."""
    b, c = image.shape[:2]
    factors = rng.uniform(1 - scale, 1 + scale, size=(b, c, 1, 1, 1)).astype(np.float32)
    offsets = rng.uniform(-shift, shift, size=(b, c, 1, 1, 1)).astype(np.float32)
    return image * factors + offsets
