"""Anatomically consistent post-processing of head organ-at-risk masks (seed 001 §4.2.2).

Majority vote of the axial, coronal and sagittal models, then rules registered by name and run in order:
triplanar hole filling of the brain, left/right split of bilateral organs, minimum eye volume, lenses inside
the eyes, largest component of the chiasm, and optic nerves rebuilt along a shortest path from eye to chiasm.

>>> from clinseg.inference.anatomy import AnatomySettings, postprocess_case
>>> structures = postprocess_case([axial, coronal, sagittal], t1, geometry)          # doctest: +SKIP
>>> structures = postprocess_case([axial], t1, geometry,
...                               settings=AnatomySettings(disabled=("optic_nerves",)))  # doctest: +SKIP
"""

from clinseg.inference.anatomy.brain import fill_holes_triplanar
from clinseg.inference.anatomy.eyes import remove_small_components
from clinseg.inference.anatomy.optic import (
    closest_barycentre,
    open_1d,
    rebuild_nerve,
    remove_fat,
)
from clinseg.inference.anatomy.pipeline import apply_anatomy, postprocess_case
from clinseg.inference.anatomy.registry import (
    RuleSpec,
    get_rule,
    list_rules,
    register_rule,
)
from clinseg.inference.anatomy.roles import DEFAULT_BILATERAL, AnatomyRoles
from clinseg.inference.anatomy.settings import PRESETS, AnatomySettings
from clinseg.inference.anatomy.sides import (
    midline_x,
    split_at_midline,
    split_components,
)
from clinseg.inference.anatomy.vote import majority_vote

__all__ = [
    "DEFAULT_BILATERAL",
    "PRESETS",
    "AnatomyRoles",
    "AnatomySettings",
    "RuleSpec",
    "apply_anatomy",
    "closest_barycentre",
    "fill_holes_triplanar",
    "get_rule",
    "list_rules",
    "majority_vote",
    "midline_x",
    "open_1d",
    "postprocess_case",
    "rebuild_nerve",
    "register_rule",
    "remove_fat",
    "remove_small_components",
    "split_at_midline",
    "split_components",
]
