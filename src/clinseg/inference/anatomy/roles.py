"""Which organ mask plays which anatomical role, and how bilateral organs are named per side.

Names default to TG-263 (the names the ``head-oar`` phantom and most clinical datasets use). Input masks are
per *organ* (``"Eye"`` holds both eyes); the output is per *structure* (``"Eye_L"``, ``"Eye_R"``).

Example
-------
>>> roles = AnatomyRoles(brain="Brain_Whole")
>>> roles.sides_of("Eye")
('Eye_L', 'Eye_R')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_BILATERAL", "AnatomyRoles"]

#: Organ -> (left structure, right structure): the bilateral organs of seed 001 §4.2.2.1.
DEFAULT_BILATERAL: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "Eye": ("Eye_L", "Eye_R"),
        "Lens": ("Lens_L", "Lens_R"),
        "OpticNrv": ("OpticNrv_L", "OpticNrv_R"),
        "Hippocampus": ("Hippocampus_L", "Hippocampus_R"),
    }
)


@dataclass(frozen=True)
class AnatomyRoles:
    """Organ names of the masks the anatomy rules act on.

    Parameters
    ----------
    brain : the whole brain (cerebrum, cerebellum, brainstem); its bounding box defines the midline.
    eye, lens, optic_nerve : bilateral organs of the visual system (both sides in one input mask).
    chiasm : the optic chiasm (one structure, crossing the midline).
    bilateral : organ -> ``(left name, right name)`` of the output structures; organs not listed are passed
        through under their own name.
    """

    brain: str = "Brain"
    eye: str = "Eye"
    lens: str = "Lens"
    optic_nerve: str = "OpticNrv"
    chiasm: str = "OpticChiasm"
    bilateral: Mapping[str, tuple[str, str]] = field(default_factory=lambda: DEFAULT_BILATERAL)

    def __post_init__(self) -> None:
        for organ, names in self.bilateral.items():
            if len(names) != 2 or names[0] == names[1]:
                raise ValueError(f"bilateral organ {organ!r} needs two distinct names (left, right), got {names!r}")

    def is_bilateral(self, organ: str) -> bool:
        """True when ``organ`` is split into a left and a right structure."""
        return organ in self.bilateral

    def sides_of(self, organ: str) -> tuple[str, str]:
        """``(left name, right name)`` of a bilateral organ."""
        left, right = self.bilateral[organ]
        return left, right
