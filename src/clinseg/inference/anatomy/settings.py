"""Parameters of the anatomy rules, with the values of seed 001 §4.2.2 as defaults.

Lengths are in mm. The seed gives the optic-nerve radii in voxels of its 0.7 mm in-plane grid (``R`` from 7
voxels at the eye to 3 at the chiasm, ``R1 = 2.5``); they are stored here in mm (4.9, 2.1, 1.75) and converted
with the spacing of each image (at least one voxel).

Example
-------
>>> settings = AnatomySettings(disabled=("optic_nerves",))
>>> settings.is_enabled("eyes"), settings.is_enabled("optic_nerves")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PRESETS", "AnatomySettings"]


@dataclass(frozen=True)
class AnatomySettings:
    """Which rules run and with which parameters.

    Parameters
    ----------
    disabled : names of registered rules to skip (see :func:`clinseg.inference.anatomy.list_rules`); all run
        by default. A disabled ``"sides"`` still splits bilateral organs, voxel-wise at the brain's mid-plane.
    min_eye_volume_ml : eye components smaller than this are removed (seed: 4 cm³).
    landmark_points : ``P``, number of voxels averaged into each optic-nerve landmark (seed: 30).
    label_penalty : ``C_l``, cost of a centreline voxel predicted negative (seed: 100).
    target_cost : ``C_t``, cost per voxel of distance to the chiasm landmark (seed: 0.001).
    fat_refinement : remove nerve voxels as bright as orbital fat before tracing the centreline.
    fat_quantile : percentile of the image in the box around the eye-nerve landmark taken as fat (seed: 98).
    fat_fraction : nerve voxels brighter than ``fat_fraction`` x that percentile are removed (seed: 0.8).
    fat_box_half_size_mm : half edge of the box around the eye-nerve landmark ("a small volume" in the seed).
    nerve_radius_eye_mm, nerve_radius_chiasm_mm : ``R`` at the eye and at the chiasm end, interpolated along the
        antero-posterior axis in between (seed: 7 and 3 voxels of 0.7 mm).
    nerve_core_radius_mm : ``R1``, every voxel this close to the centreline is nerve (seed: 2.5 voxels of 0.7 mm).
    roi_margin_mm : margin of the centreline search cuboid around the two landmarks, across the AP axis.
    min_chiasm_landmark_distance_mm : when the left and right chiasm landmarks are closer than this, only one
        nerve is rebuilt (the seed's "abnormally close", not quantified there; the two nerves join the chiasm
        about 10-15 mm apart, so 5 mm means they were found at the same place).
    nerve_opening : apply the final opening with 1D structuring elements before keeping the largest component.
    connectivity : voxel connectivity of every connected-component step (6, 18 or 26).
    """

    disabled: tuple[str, ...] = ()
    min_eye_volume_ml: float = 4.0
    landmark_points: int = 30
    label_penalty: float = 100.0
    target_cost: float = 0.001
    fat_refinement: bool = True
    fat_quantile: float = 98.0
    fat_fraction: float = 0.8
    fat_box_half_size_mm: float = 10.0
    nerve_radius_eye_mm: float = 4.9
    nerve_radius_chiasm_mm: float = 2.1
    nerve_core_radius_mm: float = 1.75
    roi_margin_mm: float = 5.0
    min_chiasm_landmark_distance_mm: float = 5.0
    nerve_opening: bool = True
    connectivity: Literal[6, 18, 26] = 26

    def __post_init__(self) -> None:
        object.__setattr__(self, "disabled", tuple(self.disabled))
        if self.landmark_points < 1:
            raise ValueError(f"landmark_points must be >= 1, got {self.landmark_points}")
        if not 0.0 <= self.fat_quantile <= 100.0:
            raise ValueError(f"fat_quantile is a percentile in [0, 100], got {self.fat_quantile}")
        if self.connectivity not in (6, 18, 26):
            raise ValueError(f"connectivity must be 6, 18 or 26, got {self.connectivity}")
        for name in ("min_eye_volume_ml", "label_penalty", "target_cost", "fat_box_half_size_mm", "roi_margin_mm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("nerve_radius_eye_mm", "nerve_radius_chiasm_mm", "nerve_core_radius_mm"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def is_enabled(self, rule: str) -> bool:
        """True unless ``rule`` is listed in :attr:`disabled`."""
        return rule not in self.disabled


#: Named settings; ``"seed001"`` is the seed study's choice (§4.2.2), also the default.
PRESETS: dict[str, AnatomySettings] = {"seed001": AnatomySettings()}
