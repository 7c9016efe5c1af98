"""Patch augmentation with MONAI's transforms: nnU-Net's recipe, with left-right label swapping.

Why MONAI: it is already a dependency (sliding window, metrics, DynUNet), its array transforms are kept and
tested by the field, they run on NumPy/torch arrays of one patch (so they run in the data workers of
:mod:`clinseg.training.batches`) and each takes an explicit random state, which keeps every batch a pure
function of the run's seed and iteration (an interrupted run resumes with the very same patches).
batchgenerators (nnU-Net's) would add a dependency for the same transforms; TorchIO works on whole subjects.

The transforms are MONAI's: ``Affine`` (rotation and scaling, cutting the patch from the centre of the
context it was read with; bilinear for images and binary targets, nearest for voxel-level unknowns),
``Rand3DElastic``, ``RandGaussianNoise``, ``GaussianSmooth``, ``ScaleIntensity`` (brightness),
``ScaleIntensityFixedMean`` (contrast, range kept), ``RandSimulateLowResolution`` and ``AdjustContrast``
(gamma, statistics kept, optionally on the inverted image). Which transforms apply, and their parameters, are
drawn here from the batch's generator (nnU-Net's probabilities); MONAI's own random transforms are seeded
from it. Mirroring is a NumPy flip (with the label swap MONAI does not know about).

The recipe follows nnU-Net's default (probabilities per patch): rotation and scaling (0.2 each), optional
elastic deformation, Gaussian noise (0.1), Gaussian blur (0.2), brightness (0.15), contrast (0.15),
low-resolution simulation (0.25), gamma (0.3), then mirroring of the plan's axes (0.5 each). Mirroring the
patient's left-right axis swaps the labels of each left/right pair (:mod:`clinseg.data.laterality`), so
lateralised organs stay correctly named; the plan allows that axis only when every lateralised structure has
a partner. Spatial transforms need context: the sampler reads a larger box (:func:`context_size`) around the
patch centre and the affine transform cuts the patch from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.transforms import (
    AdjustContrast,
    Affine,
    GaussianSmooth,
    Rand3DElastic,
    RandGaussianNoise,
    RandSimulateLowResolution,
    ScaleIntensity,
    ScaleIntensityFixedMean,
)

from clinseg.errors import ConfigError

#: Elastic deformation (when ``elastic_p`` > 0): Gaussian smoothing of the displacement field and its
#: magnitude, in voxels (nnU-Net's order of magnitude at these patch sizes).
ELASTIC_SIGMA = 10.0
ELASTIC_MAGNITUDE = 8.0


@dataclass
class AugmentationSettings:
    """The ``augmentation:`` section of a training configuration (probabilities are per patch).

    Attributes
    ----------
    enabled : augment at all (``false`` for the seed settings that had none).
    rotation : maximum rotation about each axis, degrees; rotation_p : its probability.
    scale : ``[low, high]`` zoom factors; scale_p : its probability.
    elastic_p : probability of an elastic deformation (slow on a CPU; 0 = off).
    noise_std, noise_p : Gaussian noise (standard deviation in normalised units).
    blur_sigma, blur_p : Gaussian blur ``[low, high]`` sigma in voxels.
    brightness, brightness_p : multiplicative brightness change up to +-``brightness``.
    contrast, contrast_p : contrast factor range around the mean.
    low_resolution, low_resolution_p : zoom range of the low-resolution simulation.
    gamma, gamma_p : gamma range (on intensities rescaled to [0, 1]).
    mirror : mirror the plan's axes (each with probability 0.5).
    """

    enabled: bool = True
    rotation: float = 15.0
    rotation_p: float = 0.2
    scale: list[float] = field(default_factory=lambda: [0.85, 1.25])
    scale_p: float = 0.2
    elastic_p: float = 0.0
    noise_std: float = 0.1
    noise_p: float = 0.1
    blur_sigma: list[float] = field(default_factory=lambda: [0.5, 1.0])
    blur_p: float = 0.2
    brightness: float = 0.25
    brightness_p: float = 0.15
    contrast: list[float] = field(default_factory=lambda: [0.75, 1.25])
    contrast_p: float = 0.15
    low_resolution: list[float] = field(default_factory=lambda: [0.5, 1.0])
    low_resolution_p: float = 0.25
    gamma: list[float] = field(default_factory=lambda: [0.7, 1.5])
    gamma_p: float = 0.3
    mirror: bool = True

    def validate(self, source: str = "augmentation") -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        for name in ("rotation_p", "scale_p", "elastic_p", "noise_p", "blur_p", "brightness_p", "contrast_p",
                     "low_resolution_p", "gamma_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{source}: {name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("scale", "blur_sigma", "contrast", "low_resolution", "gamma"):
            pair = getattr(self, name)
            if len(pair) != 2 or not 0 < pair[0] <= pair[1]:
                raise ConfigError(f"{source}: {name} must be [low, high] with 0 < low <= high, got {pair}")
        if self.rotation < 0 or self.noise_std < 0 or not 0 <= self.brightness < 1:
            raise ConfigError(f"{source}: rotation and noise_std must be >= 0 and brightness in [0, 1)")

    @property
    def spatial(self) -> bool:
        """Whether patches may be rotated, scaled or deformed (the sampler then reads more context)."""
        return self.enabled and (self.rotation_p > 0 or self.scale_p > 0 or self.elastic_p > 0)


def context_size(patch: Sequence[int], settings: AugmentationSettings) -> tuple[int, ...]:
    """The box read around a patch centre so that a rotated/scaled patch has image everywhere: the patch's
    diagonal-safe size for the largest rotation and zoom-out, rounded up to even sizes."""
    if not settings.spatial:
        return tuple(int(p) for p in patch)
    angle = math.radians(min(settings.rotation, 45.0))
    grow = (math.cos(angle) + math.sin(angle)) * max(settings.scale[1], 1.0)
    return tuple(int(math.ceil(p * grow / 2) * 2) for p in patch)


def centre_crop(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The central ``size`` box of the trailing three axes of ``array``."""
    start = [(a - s) // 2 for a, s in zip(array.shape[-3:], size)]
    return array[(..., *(slice(b, b + s) for b, s in zip(start, size)))]


class Augmenter:
    """Apply the configured augmentation to one patch.

    Parameters
    ----------
    settings : the augmentation section.
    patch_size : the patch ``(Z, Y, X)`` returned.
    mirror_axes : array axes that may be mirrored (the plan's).
    lr_axis : the left-right array axis; mirroring it permutes the target's structure axis by ``swap``.
    swap : structure permutation of a left-right mirror (:func:`clinseg.data.laterality.swap_permutation`).
    """

    def __init__(self, settings: AugmentationSettings, patch_size: Sequence[int], mirror_axes: Sequence[int] = (),
                 lr_axis: int | None = None, swap: Sequence[int] | None = None) -> None:
        self.settings = settings
        self.patch_size = tuple(int(p) for p in patch_size)
        self.mirror_axes = tuple(mirror_axes) if settings.mirror else ()
        self.lr_axis = lr_axis
        self.swap = list(swap) if swap is not None else None

    @property
    def context(self) -> tuple[int, ...]:
        """Size of the box the sampler must read around each patch centre."""
        return context_size(self.patch_size, self.settings)

    def __call__(self, image: np.ndarray, target: np.ndarray, annotated: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augment ``image (C, *context)`` float32 and ``target (N, *context)`` uint8; returns patch-sized arrays
        and ``annotated (N,)``, which a left-right mirror permutes with the target's structures (a case that
        delineates only its right parotid delineates, mirrored, only a left one).

        Voxel-level unknowns (targets of 255) are kept as such by the spatial transforms (nearest-neighbour
        for those targets); binary targets are resampled linearly and thresholded at 0.5.
        """
        s = self.settings
        if not s.enabled:
            return centre_crop(image, self.patch_size), centre_crop(target, self.patch_size), annotated
        image, target = self._spatial(image, target, rng)
        image = self._intensity(image, rng)
        for axis in self.mirror_axes:
            if rng.random() < 0.5:
                image = np.flip(image, axis + 1)
                target = np.flip(target, axis + 1)
                if axis == self.lr_axis and self.swap is not None:
                    target, annotated = target[self.swap], annotated[self.swap]
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(target), annotated

    def _spatial(self, image: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        rotate = rng.random() < s.rotation_p
        scale = rng.random() < s.scale_p
        elastic = rng.random() < s.elastic_p
        if not (rotate or scale or elastic):
            return centre_crop(image, self.patch_size), centre_crop(target, self.patch_size)
        angles = rng.uniform(-1, 1, 3) * math.radians(s.rotation) if rotate else np.zeros(3)
        zoom = float(rng.uniform(*s.scale)) if scale else 1.0
        image = image.astype(np.float32, copy=False)
        unknowns = bool((target == 255).any())  # voxel-level unknowns: values are labels, not fractions
        labels = target.astype(np.float32)
        if elastic:  # on the whole context, so that the patch cut from it has image everywhere
            deform = Rand3DElastic(sigma_range=(ELASTIC_SIGMA, ELASTIC_SIGMA),
                                   magnitude_range=(ELASTIC_MAGNITUDE, ELASTIC_MAGNITUDE), prob=1.0)
            deform.set_random_state(seed=int(rng.integers(2**31)))
            deform.randomize(grid_size=image.shape[1:])
            image = _numpy(deform(image, randomize=False, mode="bilinear", padding_mode="border"))
            labels = _numpy(deform(labels, randomize=False, mode="nearest" if unknowns else "bilinear",
                                   padding_mode="zeros"))
        # MONAI's scale_params scale the sampling grid: a zoom > 1 shows more of the context (organs look smaller)
        affine = Affine(rotate_params=[float(a) for a in angles], scale_params=[zoom] * 3,
                        spatial_size=self.patch_size, image_only=True)
        out_image = _numpy(affine(image, mode="bilinear", padding_mode="border"))
        if unknowns:
            out_target = _numpy(affine(labels, mode="nearest", padding_mode="zeros")).round().astype(np.uint8)
        else:
            out_target = (_numpy(affine(labels, mode="bilinear", padding_mode="zeros")) >= 0.5).astype(np.uint8)
        return out_image, out_target

    def _intensity(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.settings
        image = np.asarray(image, dtype=np.float32)  # MONAI's transforms return new arrays: no copy needed
        if rng.random() < s.noise_p:
            noise = RandGaussianNoise(prob=1.0, mean=0.0, std=s.noise_std, sample_std=True)
            noise.set_random_state(seed=int(rng.integers(2**31)))
            image = _numpy(noise(image))
        if rng.random() < s.blur_p:
            image = _numpy(GaussianSmooth(sigma=float(rng.uniform(*s.blur_sigma)))(image))
        if rng.random() < s.brightness_p:
            factor = float(rng.uniform(-s.brightness, s.brightness))
            image = _numpy(ScaleIntensity(minv=None, maxv=None, factor=factor, channel_wise=True)(image))
        if rng.random() < s.contrast_p:
            factor = float(rng.uniform(*s.contrast)) - 1.0
            image = _numpy(ScaleIntensityFixedMean(factor=factor, preserve_range=True, fixed_mean=True,
                                                   channel_wise=True)(image))
        if rng.random() < s.low_resolution_p:
            factor = float(rng.uniform(*s.low_resolution))
            image = _numpy(RandSimulateLowResolution(prob=1.0, zoom_range=(factor, factor))(image))
        if rng.random() < s.gamma_p:
            gamma = float(rng.uniform(*s.gamma))
            invert = bool(rng.random() < 0.1)  # nnU-Net also applies gamma to the inverted image
            adjust = AdjustContrast(gamma, invert_image=invert, retain_stats=True)
            image = np.stack([_numpy(adjust(c[None]))[0] for c in image])
        return image.astype(np.float32, copy=False)


def _numpy(array: object) -> np.ndarray:
    """A MONAI transform's output (NumPy array, tensor or MetaTensor) as a float32 NumPy array."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float32)
