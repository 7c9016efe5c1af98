"""Patch augmentation with MONAI's transforms: nnU-Net's recipe, with left-right label swapping.

Why MONAI: it is already a dependency (sliding window, metrics, DynUNet), its array transforms are kept and
tested by the field, they run on NumPy/torch arrays of one patch (so they run in the data workers of
:mod:`clinseg.training.batches`) and each takes an explicit random state, which keeps every batch a pure
function of the run's seed and iteration (an interrupted run resumes with the very same patches).
batchgenerators (nnU-Net's) would add a dependency for the same transforms; TorchIO works on whole subjects.

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
import torch.nn.functional as F

from clinseg.errors import ConfigError


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
        grid = affine_grid(angles, zoom, image.shape[1:], self.patch_size)
        if elastic:
            grid = grid + elastic_offsets(rng, self.patch_size, image.shape[1:])
        out_image = _sample(image.astype(np.float32, copy=False), grid, "bilinear", "border")
        if (target == 255).any():  # voxel-level unknowns: values are labels, not fractions
            out_target = _sample(target.astype(np.float32), grid, "nearest", "zeros").round().astype(np.uint8)
        else:
            out_target = (_sample(target.astype(np.float32), grid, "bilinear", "zeros") >= 0.5).astype(np.uint8)
        return out_image, out_target

    def _intensity(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        s = self.settings
        image = np.array(image, dtype=np.float32, copy=True)
        if rng.random() < s.noise_p:
            image += rng.normal(0.0, rng.uniform(0, s.noise_std), image.shape).astype(np.float32)
        if rng.random() < s.blur_p:
            sigma = float(rng.uniform(*s.blur_sigma))
            image = np.stack([gaussian_filter(c, sigma) for c in image])
        if rng.random() < s.brightness_p:
            image *= np.float32(rng.uniform(1 - s.brightness, 1 + s.brightness))
        if rng.random() < s.contrast_p:
            factor = np.float32(rng.uniform(*s.contrast))
            for c in image:
                mean, low, high = c.mean(), c.min(), c.max()
                c[...] = np.clip((c - mean) * factor + mean, low, high)
        if rng.random() < s.low_resolution_p:
            factor = float(rng.uniform(*s.low_resolution))
            size = image.shape[1:]
            x = torch.from_numpy(image)[None]
            small = F.interpolate(x, size=[max(1, round(n * factor)) for n in size], mode="nearest")
            image = F.interpolate(small, size=size, mode="trilinear", align_corners=False)[0].numpy()
        if rng.random() < s.gamma_p:
            gamma = float(rng.uniform(*s.gamma))
            invert = rng.random() < 0.1  # nnU-Net also applies gamma to the inverted image
            for c in image:
                mean, std = c.mean(), c.std()
                low, span = c.min(), max(float(c.max() - c.min()), 1e-7)
                x = (c - low) / span
                x = 1 - (1 - x) ** gamma if invert else x ** gamma
                x = x * span + low
                c[...] = (x - x.mean()) / max(float(x.std()), 1e-7) * std + mean  # keep mean and std
        return image


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """3x3 rotation by ``angles`` (radians) about the array axes ``(Z, Y, X)``, applied in that order."""
    a, b, c = angles
    rz = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def affine_grid(angles: Sequence[float], zoom: float, source: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    """The ``grid_sample`` grid ``(1, *patch, 3)`` that cuts a ``patch`` out of the centre of a ``source`` box,
    rotated by ``angles`` and zoomed by ``zoom`` (> 1 shows more of the source: structures look smaller), in
    voxel space about the centre."""
    matrix = rotation_matrix(angles) * zoom  # acts on (z, y, x) voxel offsets from the centre
    to_source = np.diag([2.0 / n for n in source])  # voxel offset -> normalised source coordinate
    from_patch = np.diag([n / 2.0 for n in patch])  # normalised patch coordinate -> voxel offset
    theta_zyx = to_source @ matrix @ from_patch
    theta = theta_zyx[::-1, ::-1].copy()  # grid_sample's coordinates are (x, y, z)
    full = torch.zeros(1, 3, 4, dtype=torch.float32)
    full[0, :, :3] = torch.from_numpy(theta)
    return F.affine_grid(full, [1, 1, *[int(p) for p in patch]], align_corners=False)


def elastic_offsets(rng: np.random.Generator, patch: Sequence[int], source: Sequence[int], alpha: float = 8.0,
                    sigma: float = 10.0) -> torch.Tensor:
    """Smooth random displacements (``alpha`` voxels at most, Gaussian-smoothed with ``sigma`` voxels) in
    normalised source coordinates, ``(1, *patch, 3)``: an elastic deformation (Simard et al., nnU-Net)."""
    from scipy.ndimage import gaussian_filter

    fields = []
    for n in reversed(source):  # x, y, z components
        noise = gaussian_filter(rng.uniform(-1, 1, tuple(int(p) for p in patch)), sigma)
        noise = noise / max(float(np.abs(noise).max()), 1e-7) * alpha
        fields.append(noise * 2.0 / n)
    return torch.from_numpy(np.stack(fields, axis=-1)[None].astype(np.float32))


def _sample(array: np.ndarray, grid: torch.Tensor, mode: str, padding: str) -> np.ndarray:
    """``grid_sample`` of a ``(C, Z, Y, X)`` array at ``grid``; returns ``(C, *patch)`` float32."""
    x = torch.from_numpy(np.ascontiguousarray(array))[None]
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)[0].numpy()
