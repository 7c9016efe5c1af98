"""Per-channel intensity normalisation planned from the dataset (nnU-Net's CT and MR schemes).

A :class:`ChannelNorm` says how one channel is normalised; the planner (:mod:`clinseg.planning`) fills it
from the dataset fingerprint and it is stored in ``RUN/plan.json``, so prediction normalises exactly as
training did.

* ``ct``: clip to the 0.5th-99.5th percentiles of the *foreground* (voxels inside delineated structures,
  pooled over the training cases), then z-score with the foreground mean and standard deviation. HU are
  comparable between scans, so one dataset-wide transform keeps that meaning (nnU-Net's CTNormalization).
* ``mr``: z-score each case with the mean and standard deviation of its own body voxels (MR intensities
  have no absolute scale; the air around the head would dominate a whole-volume z-score).
* ``zscore``, ``percentile``, ``median``, ``none``: the per-case schemes of
  :func:`clinseg.data.loading.normalize_intensity` (whole volume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clinseg.data.body import body_mask
from clinseg.data.loading import normalize_intensity
from clinseg.errors import ConfigError

SCHEMES = ("ct", "mr", "zscore", "percentile", "median", "none")


@dataclass(frozen=True)
class ChannelNorm:
    """How one channel is normalised.

    Attributes
    ----------
    scheme : one of :data:`SCHEMES`.
    clip : ``(low, high)`` intensity clip for ``ct`` (the foreground percentiles), else ``None``.
    mean, std : the foreground mean and standard deviation of ``ct`` (after clipping).
    """

    scheme: str = "zscore"
    clip: tuple[float, float] | None = None
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(f"unknown normalisation scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if self.scheme == "ct" and self.clip is None:
            raise ConfigError("the ct normalisation needs clip: [low, high] (foreground percentiles)")

    def to_json(self) -> dict:
        return {"scheme": self.scheme, "clip": None if self.clip is None else list(self.clip),
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, raw: dict) -> ChannelNorm:
        clip = raw.get("clip")
        return cls(str(raw.get("scheme", "zscore")), None if clip is None else (float(clip[0]), float(clip[1])),
                   float(raw.get("mean", 0.0)), float(raw.get("std", 1.0)))


def normalise_channel(x: np.ndarray, norm: ChannelNorm) -> np.ndarray:
    """Normalise one ``(Z, Y, X)`` channel as ``norm`` says; returns a new float32 array."""
    x = np.asarray(x, dtype=np.float32)
    if norm.scheme == "ct":
        low, high = norm.clip  # type: ignore[misc]
        return ((np.clip(x, low, high) - np.float32(norm.mean)) / np.float32(max(norm.std, 1e-6))).astype(np.float32)
    if norm.scheme == "mr":
        inside = x[body_mask(x)]
        if inside.size < 2:
            inside = x.ravel()
        return ((x - np.float32(inside.mean())) / np.float32(max(float(inside.std()), 1e-6))).astype(np.float32)
    return normalize_intensity(x[None], norm.scheme)[0]  # type: ignore[arg-type]


def normalise_image(image: np.ndarray, norms: tuple[ChannelNorm, ...] | list[ChannelNorm]) -> np.ndarray:
    """Normalise each channel of a ``(C, Z, Y, X)`` image with its :class:`ChannelNorm`; float32 copy."""
    if len(norms) != image.shape[0]:
        raise ConfigError(f"the plan normalises {len(norms)} channel(s); the image has {image.shape[0]}")
    return np.stack([normalise_channel(image[c], n) for c, n in enumerate(norms)]).astype(np.float32, copy=False)


def foreground_statistics(samples: np.ndarray) -> ChannelNorm:
    """The ``ct`` normalisation of pooled foreground intensity ``samples`` (nnU-Net: clip to the 0.5-99.5
    percentiles, then z-score with the clipped foreground's mean and standard deviation)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    if samples.size == 0:
        raise ConfigError("no foreground voxels to plan the CT normalisation from (no delineated structure?)")
    low, high = np.percentile(samples, [0.5, 99.5])
    clipped = np.clip(samples, low, high)
    return ChannelNorm("ct", (float(low), float(high)), float(clipped.mean()), float(max(clipped.std(), 1e-6)))
