"""MR acquisition effects shared by MRI phantoms: bias field, global scaling, Rician noise.

Pure functions on ``(Z, Y, X)`` float arrays; randomness comes from the generator passed in.
"""

from __future__ import annotations

import numpy as np


def bias_field(shape_zyx: tuple[int, int, int], rng: np.random.Generator, strength: float = 0.12) -> np.ndarray:
    """Smooth multiplicative bias ``exp(P(x, y, z))``, ``P`` a random quadratic on ``[-1, 1]^3``.

    Parameters
    ----------
    shape_zyx : grid shape ``(Z, Y, X)``.
    rng : random stream.
    strength : standard deviation of each of the 9 polynomial coefficients (≈ ±20-30 % at 0.12).

    Returns
    -------
    ``(Z, Y, X)`` float32 field, 1 on average.
    """
    nz, ny, nx = shape_zyx
    z = np.linspace(-1, 1, nz, dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, nx, dtype=np.float32)[None, None, :]
    c = np.clip(rng.normal(0.0, strength, 9), -2.5 * strength, 2.5 * strength).astype(np.float32)
    poly = c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * x * z
    poly = poly + c[6] * (x * x - 1 / 3) + c[7] * (y * y - 1 / 3) + c[8] * (z * z - 1 / 3)
    return np.exp(poly).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma`` per channel."""
    real = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.hypot(real, imag)


def acquire(
    image: np.ndarray,
    rng: np.random.Generator,
    reference: float,
    noise: tuple[float, float] = (0.015, 0.04),
    scale: tuple[float, float] = (0.7, 1.35),
    bias_strength: float = 0.12,
) -> np.ndarray:
    """Scanner effects on a noise-free ``(Z, Y, X)`` signal; returns int16 like a scanner export.

    Parameters
    ----------
    image : noise-free signal (not modified).
    rng : random stream.
    reference : the signal the noise level is relative to (white matter).
    noise : range of the noise standard deviation as a fraction of ``reference``.
    scale : range of the global intensity scaling (receiver gain).
    bias_strength : see :func:`bias_field`.
    """
    gain = float(rng.uniform(*scale))
    sigma = float(rng.uniform(*noise)) * reference
    biased = image * bias_field(image.shape, rng, bias_strength)
    out = rician(biased, sigma, rng) * gain
    return np.clip(np.round(out), 0, np.iinfo(np.int16).max).astype(np.int16)
