"""Guidance for an interactive network: its settings, click lists and their maps, and simulated click rounds.

An interactive network (``clinseg train --method interactive``) reads the image plus two click maps
(:func:`clinseg.interactive.clicks.click_maps`). A *slice-wise* network (``unet2d``, patches one voxel thick
along ``slice_axis``) sees one slice at a time, so its clicks live on slices: each slice gets its own 2-D
maps, and the seed's evaluation gives "one click in each axial slice" (seed 002 §1, §3.3). A 3-D network
gets 3-D maps and clicks per volume.

:func:`first_round` and :func:`next_round` simulate what a person does: the innermost point of the object
first, then a click on the largest error of the current result (per slice, or per volume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clinseg.configfile import build_dataclass
from clinseg.errors import ConfigError
from clinseg.interactive.clicks import (
    DEFAULT_BACKGROUND_RATE,
    MAX_INTERACTIONS,
    Point,
    click_maps,
    initial_click,
    next_click,
)


@dataclass(frozen=True)
class ClickSettings:
    """How an interactive run is trained and evaluated (``TrainConfig.interactive``).

    Attributes
    ----------
    sigma : Gaussian standard deviation of a click in voxels (in-plane for slice-wise networks).
    max_interactions : training draws 1..this many interactions per sample (seed 002: 5).
    background_rate : probability that a training sample's target becomes all-background, guided by
        background clicks only (seed 002 gives no value; 0.2).
    min_size : error regions smaller than this many voxels get no corrective click (1 = the seed; larger
        values avoid the "clicks on a few pixels" late in training that seed 002 §3.3 describes).
    eval_clicks : clicks per slice (slice-wise) or per volume (3-D) for validation (seed 002: 1).
    """

    sigma: float = 3.0
    max_interactions: int = MAX_INTERACTIONS
    background_rate: float = DEFAULT_BACKGROUND_RATE
    min_size: int = 1
    eval_clicks: int = 1

    def __post_init__(self) -> None:
        if self.sigma <= 0:
            raise ConfigError(f"interactive.sigma must be > 0, got {self.sigma}")
        if self.max_interactions < 1 or self.eval_clicks < 1 or self.min_size < 1:
            raise ConfigError("interactive.max_interactions, eval_clicks and min_size must be >= 1")
        if not 0 <= self.background_rate <= 1:
            raise ConfigError(f"interactive.background_rate must be in [0, 1], got {self.background_rate}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClickSettings:
        """Settings from ``TrainConfig.interactive``; unknown keys are a :class:`ConfigError`."""
        return build_dataclass(cls, dict(values), "interactive")


def slice_axis_of(patch_size: Sequence[int]) -> int | None:
    """The slicing axis of a run whose patches are one voxel thick along it (a slice-wise network), else None."""
    thin = [axis for axis, size in enumerate(patch_size) if int(size) == 1]
    return thin[0] if len(thin) == 1 else None


@dataclass
class Guidance:
    """Foreground and background clicks on one volume or patch, as ``(z, y, x)`` points."""

    fg: list[Point] = field(default_factory=list)
    bg: list[Point] = field(default_factory=list)

    def add(self, point: Point, foreground: bool) -> None:
        (self.fg if foreground else self.bg).append(tuple(int(p) for p in point))

    def count(self) -> int:
        return len(self.fg) + len(self.bg)

    def maps(self, shape: Sequence[int], sigma: float, slice_axis: int | None) -> np.ndarray:
        """``(2, Z, Y, X)`` click maps: 3-D maps, or independent 2-D maps per slice along ``slice_axis``."""
        shape = tuple(int(s) for s in shape)
        if slice_axis is None:
            return click_maps(shape, self.fg, self.bg, sigma)
        maps = np.zeros((2, *shape), np.float32)
        plane = tuple(s for a, s in enumerate(shape) if a != slice_axis)
        for index in sorted({p[slice_axis] for p in self.fg + self.bg}):
            fg = [_drop(p, slice_axis) for p in self.fg if p[slice_axis] == index]
            bg = [_drop(p, slice_axis) for p in self.bg if p[slice_axis] == index]
            maps[(slice(None),) + _at(slice_axis, index)] = click_maps(plane, fg, bg, sigma)
        return maps

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {"foreground": [list(p) for p in self.fg], "background": [list(p) for p in self.bg]}


def _drop(point: Sequence[int], axis: int) -> Point:
    return tuple(int(p) for a, p in enumerate(point) if a != axis)


def _insert(point: Sequence[int], axis: int, index: int) -> Point:
    values = [int(p) for p in point]
    values.insert(axis, int(index))
    return tuple(values)


def _at(axis: int, index: int) -> tuple[slice | int, ...]:
    return tuple(index if a == axis else slice(None) for a in range(3))


def _slices_with(mask: np.ndarray, axis: int) -> np.ndarray:
    return np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))


def first_round(target: np.ndarray, slice_axis: int | None, spacing: Sequence[float] | None = None) -> Guidance:
    """The first click: the innermost point of ``target`` in each slice holding it, or in the volume."""
    guidance = Guidance()
    mask = np.asarray(target) != 0
    if slice_axis is None:
        point = initial_click(mask, spacing=spacing)
        if point is not None:
            guidance.add(point, True)
        return guidance
    plane_spacing = None if spacing is None else _drop(spacing, slice_axis)  # type: ignore[arg-type]
    for index in _slices_with(mask, slice_axis):
        point = initial_click(mask[_at(slice_axis, index)], spacing=plane_spacing)
        guidance.add(_insert(point, slice_axis, index), True)  # type: ignore[arg-type]
    return guidance


def next_round(guidance: Guidance, target: np.ndarray, prediction: np.ndarray, slice_axis: int | None, *,
               spacing: Sequence[float] | None = None, min_size: int = 1) -> int:
    """Add one corrective click on the largest error region of ``prediction``: in every slice with an error
    (slice-wise), or in the volume. Returns the number of clicks added (0 once nothing is wrong)."""
    mask, pred = np.asarray(target) != 0, np.asarray(prediction) != 0
    if slice_axis is None:
        click = next_click(mask, pred, spacing=spacing, min_size=min_size)
        if click is None:
            return 0
        guidance.add(click.point, click.foreground)
        return 1
    plane_spacing = None if spacing is None else _drop(spacing, slice_axis)  # type: ignore[arg-type]
    added = 0
    for index in _slices_with(mask ^ pred, slice_axis):
        where = _at(slice_axis, index)
        click = next_click(mask[where], pred[where], spacing=plane_spacing, min_size=min_size)
        if click is not None:
            guidance.add(_insert(click.point, slice_axis, index), click.foreground)
            added += 1
    return added
