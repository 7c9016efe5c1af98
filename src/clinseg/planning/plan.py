"""The plan: how a dataset is preprocessed, sampled and learned, as one readable JSON record (``plan.json``).

``clinseg plan DATASET`` writes it and ``clinseg train`` stores it in every run folder (``RUN/plan.json``);
``clinseg predict`` reads it back to preprocess new images exactly as the training cases were. It is made
from the dataset fingerprint by :func:`clinseg.planning.rules.make_plan`; any value can be overridden in the
training configuration (its ``plan:`` section, or the flat ``patch_size``/``batch_size``/``model`` options).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinseg.data.intensity import ChannelNorm
from clinseg.data.preprocess import Preprocessing
from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text

PLAN_VERSION = 1


@dataclass
class Plan:
    """A dataset's plan.

    Attributes
    ----------
    spacing : target voxel size in mm ``(x, y, z)`` every case is resampled to; empty = each image's grid.
    crop_to_body : crop each case to its body (non-air) box before training and inference.
    normalization : per channel, how intensities are normalised (:class:`~clinseg.data.intensity.ChannelNorm`).
    patch_size : training patch ``(Z, Y, X)`` voxels on the target grid (also the sliding window).
    batch_size : patches per optimiser step.
    model, model_kwargs : the network and its options (widths, strides and kernels per level).
    foreground_fraction : share of patches centred on a delineated structure (class-balanced).
    mirror_axes : array axes (0=Z, 1=Y, 2=X) that augmentation may mirror.
    lr_axis : the array axis running along the patient's left-right direction (``None``: unknown).
    lateral_pairs : ``(left, right)`` structure pairs whose labels swap when ``lr_axis`` is mirrored.
    largest_component : structures delineated as one connected object in (almost) every training case: their
        predictions keep only the largest component, which removes distant false positives.
    spacing_range : ``[[min x, y, z], [max x, y, z]]`` spacings of the training cases; a prediction input far
        outside warns.
    median_shape : median ``(Z, Y, X)`` of the training cases' body boxes on the target grid.
    files_sha256 : the dataset's file hash the plan was made from.
    """

    spacing: list[float] = field(default_factory=list)
    crop_to_body: bool = True
    normalization: list[ChannelNorm] = field(default_factory=list)
    patch_size: list[int] = field(default_factory=list)
    batch_size: int = 2
    model: str = "dynunet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    foreground_fraction: float = 0.5
    mirror_axes: list[int] = field(default_factory=list)
    lr_axis: int | None = None
    lateral_pairs: list[list[str]] = field(default_factory=list)
    largest_component: list[str] = field(default_factory=list)
    spacing_range: list[list[float]] = field(default_factory=list)
    median_shape: list[int] = field(default_factory=list)
    files_sha256: str = ""
    version: int = PLAN_VERSION

    def to_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["normalization"] = [n.to_json() for n in self.normalization]
        return values

    @classmethod
    def from_json(cls, raw: dict[str, Any], source: str = "plan") -> Plan:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown plan field(s) {unknown}; known: {', '.join(sorted(known))}")
        values = dict(raw)
        try:
            values["normalization"] = [ChannelNorm.from_json(n) for n in raw.get("normalization", [])]
            return cls(**values)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{source}: invalid plan ({exc})") from exc

    def preprocessing(self) -> Preprocessing:
        """How images are prepared under this plan (:mod:`clinseg.data.preprocess`)."""
        spacing = tuple(float(v) for v in self.spacing) if self.spacing else None
        return Preprocessing(spacing, self.crop_to_body, tuple(self.normalization))  # type: ignore[arg-type]

    def with_overrides(self, overrides: dict[str, Any], source: str = "config plan section") -> Plan:
        """A copy with ``overrides`` (plan field -> value; ``None`` values are ignored) applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        merged = {**self.to_json(), **given}
        return Plan.from_json(merged, source)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write ``plan`` as JSON atomically."""
    write_text(path, json.dumps(plan.to_json(), indent=1))


def load_plan(path: str | Path) -> Plan:
    """Read a plan written by :func:`save_plan` (:class:`ConfigError` naming the file on any problem)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: plan not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid plan JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a plan is a JSON object")
    return Plan.from_json(raw, str(path))


@dataclass
class PlanSettings:
    """The ``plan:`` section of a training configuration: planning on or off, and overrides of planned values
    (empty/``None`` = as planned). The network, patch and batch size are overridden by the flat ``model``,
    ``model_kwargs``, ``patch_size`` and ``batch_size`` options.

    Attributes
    ----------
    enabled : plan from the data (``false``: each image's own grid, no crop, ``normalization`` per case).
    spacing : target spacing ``(x, y, z)`` mm.
    crop_to_body : crop cases to their body box.
    normalization : one scheme per channel (``ct``, ``mr``, ``zscore``, ``percentile``, ``median``, ``none``);
        ``ct`` takes its clip and statistics from the dataset fingerprint.
    mirror_axes : array axes augmentation may mirror.
    largest_component : structures whose prediction keeps only its largest component.
    """

    enabled: bool = True
    spacing: list[float] = field(default_factory=list)
    crop_to_body: bool | None = None
    normalization: list[str] = field(default_factory=list)
    mirror_axes: list[int] | None = None
    largest_component: list[str] | None = None

    def validate(self, source: str = "plan") -> None:
        if self.spacing and (len(self.spacing) != 3 or any(s <= 0 for s in self.spacing)):
            raise ConfigError(f"{source}: spacing must be three sizes > 0 in mm (x, y, z), got {self.spacing}")
        if self.mirror_axes is not None and not set(self.mirror_axes) <= {0, 1, 2}:
            raise ConfigError(f"{source}: mirror_axes are array axes 0 (Z), 1 (Y), 2 (X), got {self.mirror_axes}")
