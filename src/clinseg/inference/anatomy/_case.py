"""The working state of one case while the anatomy rules run (a private copy; inputs are never touched).

Masks are keyed by organ until the ``sides`` step replaces every bilateral organ by its left and right
structures; :meth:`AnatomyCase.sided` and :meth:`AnatomyCase.store_sided` hide which of the two states a
rule sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clinseg.inference.anatomy.roles import AnatomyRoles
from clinseg.inference.anatomy.settings import AnatomySettings
from clinseg.inference.anatomy.sides import midline_x, split_at_midline
from clinseg.io.image import Geometry


@dataclass
class AnatomyCase:
    """Masks (bool ``(Z, Y, X)``, owned copies), the image and the settings one pipeline run works on."""

    masks: dict[str, np.ndarray]
    image: np.ndarray | None
    geometry: Geometry
    shape: tuple[int, int, int]
    roles: AnatomyRoles = field(default_factory=AnatomyRoles)
    settings: AnatomySettings = field(default_factory=AnatomySettings)

    def is_split(self, organ: str) -> bool:
        """True when a bilateral organ is held as its left and right structures."""
        return self.roles.is_bilateral(organ) and all(n in self.masks for n in self.roles.sides_of(organ))

    def has(self, organ: str) -> bool:
        """True when the organ is present, as one mask or as its two sides."""
        return organ in self.masks or self.is_split(organ)

    def organ(self, organ: str) -> np.ndarray:
        """The whole organ (both sides together when it is split)."""
        if self.is_split(organ):
            left, right = self.roles.sides_of(organ)
            return self.masks[left] | self.masks[right]
        return self.masks[organ]

    def sided(self, organ: str) -> tuple[np.ndarray, np.ndarray]:
        """``(left, right)`` masks of an organ: its structures once split, else a voxel-wise split at the midline."""
        if self.is_split(organ):
            left, right = self.roles.sides_of(organ)
            return self.masks[left], self.masks[right]
        return split_at_midline(self.masks[organ], self.geometry, self.midline_x())

    def store_sided(self, organ: str, left: np.ndarray, right: np.ndarray) -> None:
        """Write back the two sides of an organ (merged again when the organ is not split)."""
        if self.is_split(organ):
            left_name, right_name = self.roles.sides_of(organ)
            self.masks[left_name], self.masks[right_name] = left, right
        else:
            self.masks[organ] = left | right

    def midline_x(self) -> float:
        """World x (mm) of the mid-plane of the brain's bounding box (fallbacks in :func:`~.sides.midline_x`)."""
        brain = self.organ(self.roles.brain) if self.has(self.roles.brain) else None
        return midline_x(brain, self.image, self.geometry, self.shape)
