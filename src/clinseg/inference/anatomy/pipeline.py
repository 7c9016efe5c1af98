"""Anatomically consistent post-processing of organ-at-risk masks (seed 001 §4.2.2).

:func:`postprocess_case` combines the masks of several models (axial, coronal, sagittal) by majority vote and
runs :func:`apply_anatomy`: the registered rules in order (``brain_holes``, ``sides``, ``eyes``, ``lenses``,
``chiasm``, ``optic_nerves``), each skipped when switched off in the settings or when its organs are missing.

Input masks are per organ (``"Eye"`` holds both eyes); the output is per structure: every bilateral organ of
``AnatomyRoles.bilateral`` present in the input is split into its left and right structure, every other organ
is passed through under its own name. Inputs are never modified.

Example
-------
>>> geo = Geometry(spacing=(1.0, 1.0, 1.0), shape=(1, 1, 4))
>>> masks = {"Brain": np.ones((1, 1, 4), bool), "Eye": np.array([[[True, False, False, True]]])}
>>> out = apply_anatomy(masks, np.ones((1, 1, 4)), geo, settings=AnatomySettings(disabled=("eyes",)))
>>> sorted(out), out["Eye_L"][0, 0].astype(int).tolist()
(['Brain', 'Eye_L', 'Eye_R'], [0, 0, 0, 1])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

# Importing the rule modules registers the built-in rules.
from clinseg.inference.anatomy import brain as _brain  # noqa: F401  (registers "brain_holes")
from clinseg.inference.anatomy import eyes as _eyes  # noqa: F401  (registers "eyes", "lenses")
from clinseg.inference.anatomy import optic as _optic  # noqa: F401  (registers "chiasm", "optic_nerves")
from clinseg.inference.anatomy import sides as _sides  # noqa: F401  (registers "sides")
from clinseg.inference.anatomy._case import AnatomyCase
from clinseg.inference.anatomy.registry import get_rule, list_rules
from clinseg.inference.anatomy.roles import AnatomyRoles
from clinseg.inference.anatomy.settings import AnatomySettings
from clinseg.inference.anatomy.vote import majority_vote
from clinseg.io.image import Geometry

__all__ = ["apply_anatomy", "postprocess_case"]

log = logging.getLogger(__name__)

_ROLES = AnatomyRoles()
_SETTINGS = AnatomySettings()


def apply_anatomy(
    masks: Mapping[str, np.ndarray],
    image: np.ndarray | None,
    geometry: Geometry,
    roles: AnatomyRoles = _ROLES,
    settings: AnatomySettings = _SETTINGS,
) -> dict[str, np.ndarray]:
    """Run the anatomy rules on one case's organ masks.

    Parameters
    ----------
    masks : ``{organ: bool (Z, Y, X)}``, bilateral organs with both sides in one mask.
    image : ``(Z, Y, X)`` T1 image on the same grid (the fat rule of the optic nerves and the fallback midline
        use it); ``None`` skips the fat rule.
    geometry : the grid's geometry (spacing ``(x, y, z)`` mm, LPS direction); its ``shape``, when set, must be
        the masks' shape.
    roles : which organ plays which role, and the left/right names of bilateral organs.
    settings : which rules run and their parameters (seed values by default).

    Returns
    -------
    dict
        ``{structure: bool (Z, Y, X)}``: bilateral organs under their left and right names, others as given.

    Raises
    ------
    ValueError
        When masks or image do not share one ``(Z, Y, X)`` shape.
    clinseg.errors.ConfigError
        When ``settings.disabled`` names an unknown rule.
    """
    shape = _check_shapes(masks, image, geometry)
    for name in settings.disabled:
        get_rule(name)  # ConfigError listing the known rules
    case = AnatomyCase(
        masks={name: np.array(m, dtype=bool) for name, m in masks.items()},  # private copies
        image=None if image is None else np.asarray(image),
        geometry=geometry,
        shape=shape,
        roles=roles,
        settings=settings,
    )
    for name in list_rules():
        spec = get_rule(name)
        step = spec.apply if settings.is_enabled(name) else spec.when_disabled
        if step is not None:
            log.debug("anatomy rule %s%s", name, "" if settings.is_enabled(name) else " (disabled)")
            step(case)
    return case.masks


def postprocess_case(
    mask_sets: Sequence[Mapping[str, np.ndarray]],
    image: np.ndarray | None,
    geometry: Geometry,
    roles: AnatomyRoles = _ROLES,
    settings: AnatomySettings = _SETTINGS,
) -> dict[str, np.ndarray]:
    """Majority vote of several models' organ masks (when more than one), then :func:`apply_anatomy`.

    Parameters
    ----------
    mask_sets : one ``{organ: (Z, Y, X) mask}`` per model (the seed: axial, coronal and sagittal networks).
    image, geometry, roles, settings : as for :func:`apply_anatomy`.
    """
    if not mask_sets:
        raise ValueError("postprocess_case needs the masks of at least one model")
    masks = majority_vote(mask_sets) if len(mask_sets) > 1 else mask_sets[0]
    return apply_anatomy(masks, image, geometry, roles, settings)


def _check_shapes(
    masks: Mapping[str, np.ndarray], image: np.ndarray | None, geometry: Geometry
) -> tuple[int, int, int]:
    shapes = {name: tuple(np.shape(m)) for name, m in masks.items()}
    if image is not None:
        shapes["image"] = tuple(np.shape(image))
    if tuple(geometry.shape) != (0, 0, 0):
        shapes["geometry"] = tuple(geometry.shape)
    distinct = set(shapes.values())
    if len(distinct) > 1:
        raise ValueError(f"masks, image and geometry must share one (Z, Y, X) shape, got {shapes}")
    if not distinct:
        raise ValueError("apply_anatomy needs at least one mask, the image or a geometry with a shape")
    shape = distinct.pop()
    if len(shape) != 3:
        raise ValueError(f"masks must be (Z, Y, X), got shape {shape}")
    return shape  # type: ignore[return-value]
