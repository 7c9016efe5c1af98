"""The planning rules: from a dataset fingerprint and a device to a :class:`~clinseg.planning.plan.Plan`.

They follow nnU-Net's experiment planner where it applies:

* **target spacing**: the median spacing of the training cases; for strongly anisotropic data (the coarse
  axis more than 3x the others and fewer than a third of their voxels) the coarse axis takes the 10th
  percentile of its spacings instead, so thin-slice scans are not over-sampled into many fake slices;
* **network topology**: per level, axes whose spacing is within 2x of the finest are downsampled by 2 while
  they keep at least 4 voxels; 3-voxel kernels on those axes, 1 on axes still too coarse (nnU-Net's
  ``get_pool_and_conv_props``), widths doubling from the base width up to a cap;
* **patch size**: start from the median body box on the target grid and shrink the axis that is largest
  relative to it until the patch fits the device's voxel budget; sizes are multiples of the network's
  divisor;
* **normalisation**: ``ct`` for channels named CT (foreground percentiles, then z-score), ``mr`` otherwise.

The device decides the budget: on a CPU the patch must be small enough that the network takes many steps
per minute (:data:`CPU_VOXELS`), on a GPU large enough to fill its memory (:func:`gpu_voxel_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clinseg.data.dataset import DatasetSpec
from clinseg.data.intensity import ChannelNorm
from clinseg.data.laterality import lateral_pairs
from clinseg.planning.fingerprint import DatasetFingerprint
from clinseg.planning.plan import Plan

#: Voxels per training patch on a CPU: 56³ (OpenKBP: 72 x 48 x 48 at 3.9 x 3.9 x 2.5 mm, 0.6 s per step on
#: 2 cores). Measured on OpenKBP with 8-minute budgets (docs/benchmarks.md): 80³ (96 x 56 x 80, 1.9 s per
#: step) reached validation Dice 0.47, 56³ 0.60 and 48³ (64 x 40 x 40) 0.61: on a CPU more steps beat more
#: context per step.
CPU_VOXELS = 56**3
#: Widths of the first level and the cap, on the CPU and on a GPU (nnU-Net: 32 and 320).
CPU_WIDTHS = (16, 256)
GPU_WIDTHS = (32, 320)
#: The smallest feature map nnU-Net downsamples to along an axis.
MIN_FEATURE_MAP = 4
#: Most resolution levels (nnU-Net caps 3D networks at 6 stages).
MAX_LEVELS = 6
#: A structure whose references are one connected object in at least this share of cases is
#: post-processed by keeping its largest predicted component.
SINGLE_COMPONENT_SHARE = 0.9


@dataclass(frozen=True)
class DeviceBudget:
    """What the planner fits to: voxels per patch, patches per batch, base and maximum widths."""

    voxels: int
    batch_size: int
    base_width: int
    max_width: int

    @classmethod
    def for_device(cls, device_type: str, gpu_memory_gb: float | None = None) -> DeviceBudget:
        """The budget of a ``cpu`` or ``cuda`` device (``gpu_memory_gb``: the card's memory)."""
        if device_type == "cuda":
            return cls(gpu_voxel_budget(gpu_memory_gb or 8.0), 2, *GPU_WIDTHS)
        return cls(CPU_VOXELS, 2, *CPU_WIDTHS)


def gpu_voxel_budget(memory_gb: float) -> int:
    """Patch voxels for a GPU with ``memory_gb``: nnU-Net's 3D default (about 128³ at batch 2 with widths from
    32) needs ~8 GB; larger cards take proportionally larger patches, up to 192³."""
    return int(min(192**3, 128**3 * max(memory_gb, 4.0) / 8.0))


def target_spacing(spacings: np.ndarray, body_shapes: np.ndarray) -> tuple[float, float, float]:
    """nnU-Net's full-resolution target spacing ``(x, y, z)`` from per-case spacings ``(K, 3)`` (x, y, z) and
    body shapes ``(K, 3)`` (Z, Y, X)."""
    spacing = np.median(spacings, axis=0)
    sizes = np.median(body_shapes[:, ::-1], axis=0)  # (x, y, z) voxels
    worst = int(np.argmax(spacing))
    others = [a for a in range(3) if a != worst]
    anisotropic_spacing = spacing[worst] > 3 * max(spacing[others])
    anisotropic_voxels = sizes[worst] * 3 < min(sizes[others])
    if anisotropic_spacing and anisotropic_voxels:
        coarse = float(np.percentile(spacings[:, worst], 10))
        if coarse < max(spacing[others]):
            coarse = float(max(spacing[others])) + 1e-5
        spacing[worst] = coarse
    return tuple(float(s) for s in spacing)  # type: ignore[return-value]


def topology(patch: Sequence[int], spacing_zyx: Sequence[float]) -> tuple[list[list[int]], list[list[int]]]:
    """``(kernels, strides)`` per level, ``(Z, Y, X)`` each, for a patch on a grid of ``spacing_zyx`` mm.

    The first level has stride 1; every further level halves the axes that are within 2x of the finest
    spacing and still at least ``2 * MIN_FEATURE_MAP`` voxels; the last level is the bottleneck.
    """
    size = [float(p) for p in patch]
    spacing = [float(s) for s in spacing_zyx]
    kernel = [1, 1, 1]
    kernels: list[list[int]] = []
    strides: list[list[int]] = [[1, 1, 1]]
    while len(strides) < MAX_LEVELS:
        valid = [a for a in range(3) if size[a] >= 2 * MIN_FEATURE_MAP]
        if not valid:
            break
        finest = min(spacing[a] for a in valid)
        valid = [a for a in valid if spacing[a] / finest < 2]
        if len(valid) == 1 and size[valid[0]] < 3 * MIN_FEATURE_MAP:
            break
        finest_all = min(spacing)
        kernel = [3 if kernel[a] == 3 or spacing[a] / finest_all < 2 else 1 for a in range(3)]
        kernels.append(list(kernel))
        stride = [2 if a in valid else 1 for a in range(3)]
        for a in valid:
            spacing[a] *= 2
            size[a] = math.ceil(size[a] / 2)
        strides.append(stride)
    kernels.append([3, 3, 3])
    return kernels, strides


def divisors(strides: Sequence[Sequence[int]]) -> list[int]:
    """The product of the strides per axis: patch sizes must be multiples of it."""
    return [int(np.prod([s[a] for s in strides])) for a in range(3)]


def fit_patch(median_shape: Sequence[int], spacing_zyx: Sequence[float], voxels: int) -> list[int]:
    """A patch ``(Z, Y, X)`` covering at most the median body box (rounded up to the network's divisors) with
    at most ``voxels`` voxels: the axis longest in mm is shrunk first, so a small patch is about as long in
    mm along every axis (nnU-Net shrinks towards the same shape)."""
    patch = [max(int(s), 2 * MIN_FEATURE_MAP) for s in median_shape]

    def rounded(p: list[int]) -> list[int]:
        d = divisors(topology(p, spacing_zyx)[1])
        return [max(dd, int(math.ceil(x / dd)) * dd) for x, dd in zip(p, d)]

    current = rounded(patch)
    while int(np.prod(current)) > voxels and any(p > 2 * MIN_FEATURE_MAP for p in patch):
        mm = [p * s if p > 2 * MIN_FEATURE_MAP else -1.0 for p, s in zip(patch, spacing_zyx)]
        axis = int(np.argmax(mm))
        step = divisors(topology(current, spacing_zyx)[1])[axis]
        patch[axis] = max(2 * MIN_FEATURE_MAP, min(patch[axis], current[axis]) - max(step, 1))
        current = rounded(patch)
    return current


def widths(levels: int, base: int, cap: int) -> list[int]:
    """``base * 2**level`` capped at ``cap`` for each level."""
    return [min(base * 2**level, cap) for level in range(levels)]


def make_plan(fingerprint: DatasetFingerprint, spec: DatasetSpec, budget: DeviceBudget) -> Plan:
    """The plan of a fingerprinted dataset for a device budget (see the module docstring for the rules)."""
    spacings = np.asarray(fingerprint.spacings, dtype=float)
    body = np.asarray(fingerprint.body_shapes, dtype=float)
    spacing = target_spacing(spacings, body)
    scale = spacings[:, ::-1] / np.asarray(spacing)[::-1]  # (Z, Y, X) per case: old / new voxel size
    median_shape = [int(round(v)) for v in np.median(body * scale, axis=0)]
    spacing_zyx = spacing[::-1]
    patch = fit_patch(median_shape, spacing_zyx, budget.voxels)
    kernels, strides = topology(patch, spacing_zyx)
    norms = [ChannelNorm("ct", (c.percentile_00_5, c.percentile_99_5), c.clipped_mean, c.clipped_std)
             if c.modality == "CT" else ChannelNorm("mr") for c in fingerprint.channels]
    pairs, unpaired = lateral_pairs(spec.structures, spec.relations)
    mirror = [fingerprint.lr_axis] if not unpaired else []
    single = [name for name, s in fingerprint.structures.items() if s.single_component_share >= SINGLE_COMPONENT_SHARE]
    return Plan(
        spacing=list(spacing),
        crop_to_body=True,
        normalization=norms,
        patch_size=patch,
        batch_size=budget.batch_size,
        model="dynunet",
        model_kwargs={"features": widths(len(strides), budget.base_width, budget.max_width), "kernels": kernels,
                      "strides": strides, "deep_supervision": min(2, len(strides) - 2)},
        foreground_fraction=0.5,
        mirror_axes=mirror,
        lr_axis=fingerprint.lr_axis,
        lateral_pairs=[list(p) for p in pairs],
        largest_component=[s for s in spec.structures if s in single],
        spacing_range=[spacings.min(axis=0).tolist(), spacings.max(axis=0).tolist()],
        median_shape=median_shape,
        files_sha256=fingerprint.files_sha256,
    )
