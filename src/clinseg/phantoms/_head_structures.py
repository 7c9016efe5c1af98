"""Structure sets of the head-OAR phantom: which organs a dataset has, how they were delineated, their relations.

Two sets, by the seed study they imitate:

``seed000`` (default; seed 000, section 2)
    11 OARs: Brainstem, Pituitary, OpticChiasm, OpticNrv_L/R, Eye_L/R, Cochlea_L/R, Lens_L/R; a training
    case has the OARs near its tumour (:class:`~clinseg.phantoms._delineation.DelineationRule`).
``seed001`` (seed 001, chapter 4: 8 OAR classes on contrast-enhanced T1 MRI)
    12 structures: Brain, Brainstem, Hippocampus_L/R, Eye_L/R, Lens_L/R, OpticNrv_L/R, OpticChiasm,
    Pituitary; each organ (both sides of a pair together) is delineated independently with the frequency
    of seed 001 Table 4.1 (44 MRIs, :data:`SEED001_RATES`).

What seed001 adds to the head (drawn from its own random stream, so the seed000 image is unchanged):

* **Hippocampi**: curved tubes (~40 mm, ~3 ml each) in the medial temporal lobes either side of the
  brainstem, head antero-inferior, tail postero-superior curving medially, painted with grey-matter signal
  under a thin CSF temporal horn.
* **Brain**: cerebrum + cerebellum + brainstem (seed 001 §4.2.2.1) as painted, with the ventricles, sulci,
  the interhemispheric fissure and any tumour or oedema inside them (a clinician's brain contour is a
  hole-free outline, which the seed's "triplanar hole filling" assumes), without the basal (suprasellar)
  cistern, which opens to the outside of the brain, and without the eyes, lenses, optic nerves, chiasm and
  pituitary, which are separate OARs. Brainstem and hippocampi lie inside it by construction.
* **Optic nerves** end at the back of the globe (as clinicians contour them), so they never overlap the eyes.

Relations (``dataset.json`` ``relations``, :mod:`clinseg.data.relations`) are declared per set and hold on
every clean mask (checked on generated cases by the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from clinseg.data.relations import Relations
from clinseg.phantoms._head_anatomy import (
    PAIRS,
    STRUCTURES,
    HeadModel,
    Layer,
    _n,
    structure_anchor,
)
from clinseg.phantoms._shapes import PoseGrid, Tube, Union

Masks = dict[str, np.ndarray]


@dataclass(frozen=True)
class StructureSet:
    """The organs of a head-OAR dataset and how a clinician delineated them.

    Attributes
    ----------
    name : ``"seed000"`` or ``"seed001"``.
    structures : TG-263 names in label order.
    bilateral : pair name -> ``(left, right)`` structure names.
    inside : ``(inner, outer)`` pairs, true on every clean mask.
    outside : ``(a, b)`` pairs that never overlap on a clean mask.
    rates : organ (structure or pair name) -> probability that a training case has it delineated; empty:
        the tumour-distance rule of seed 000.
    description, reference : ``dataset.json`` texts.
    coronal : structures whose centre the preview's coronal slice passes through.
    extend : ``(model, rng) -> model``: adds the set's own organs (shapes and image layers) to a drawn head.
    finish : ``(model, grid, masks) -> masks``: the set's clean ``(Z, Y, X)`` masks, in label order, from
        the rendered masks of ``model.structures``.
    """

    name: str
    structures: tuple[str, ...]
    bilateral: Mapping[str, tuple[str, str]]
    inside: tuple[tuple[str, str], ...]
    outside: tuple[tuple[str, str], ...]
    rates: Mapping[str, float]
    description: str
    reference: str
    coronal: tuple[str, ...]
    extend: Callable[[HeadModel, np.random.Generator], HeadModel] = field(compare=False)
    finish: Callable[[HeadModel, PoseGrid, Masks], Masks] = field(compare=False)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The ``(left, right)`` pairs, in the order of :attr:`bilateral`."""
        return tuple(self.bilateral.values())

    def relations(self) -> Relations:
        """The declared relations as a :class:`~clinseg.data.relations.Relations`."""
        return Relations(self.inside, self.outside, dict(self.bilateral))


# --- seed 000 -----------------------------------------------------------------------------------------

def _unchanged(model: HeadModel, rng: np.random.Generator) -> HeadModel:
    """seed000 adds nothing to the head (and draws nothing)."""
    return model


def _seed000_masks(model: HeadModel, grid: PoseGrid, masks: Masks) -> Masks:
    """The 11 rendered OAR masks, in label order."""
    return {name: masks[name] for name in STRUCTURES}


SEED000 = StructureSet(
    name="seed000",
    structures=STRUCTURES,
    bilateral={"OpticNrv": PAIRS[0], "Eye": PAIRS[1], "Cochlea": PAIRS[2], "Lens": PAIRS[3]},
    inside=(("Lens_L", "Eye_L"), ("Lens_R", "Eye_R")),
    # Neighbours that never touch (checked on clean masks at 2 and 4 mm); the optic nerve enters the
    # globe in this set, so nerve and eye do overlap and are not declared.
    outside=(("Pituitary", "OpticChiasm"), ("Brainstem", "Pituitary"), ("Brainstem", "OpticChiasm"),
             ("Cochlea_L", "Brainstem"), ("Cochlea_R", "Brainstem"), ("Eye_L", "Eye_R")),
    rates={},
    description=(
        "Procedural T1-weighted head MRI (clinseg head-oar phantom) with 11 organs at risk for brain "
        "radiotherapy. Training delineations are partial (only OARs near the tumour) and carry CT->MR "
        "propagation errors; the test set is clean and complete."
    ),
    reference="imitates seed 000, section 2 (52 RT patients, 9.4 of 11 OARs delineated on average)",
    coronal=("Pituitary",),
    extend=_unchanged,
    finish=_seed000_masks,
)


# --- seed 001 -----------------------------------------------------------------------------------------

#: Seed 001 Table 4.1: ground-truth delineations per class among 44 MRIs.
SEED001_RATES: dict[str, float] = {
    "Brain": 37 / 44,
    "Brainstem": 39 / 44,
    "Hippocampus": 39 / 44,
    "Eye": 41 / 44,
    "Lens": 34 / 44,
    "OpticNrv": 40 / 44,
    "OpticChiasm": 41 / 44,
    "Pituitary": 29 / 44,
}

#: Left hippocampus centre line (canonical mm, before head scaling): head, body, body, tail; and radii.
_HIPPO_PATH = ((25.0, 11.0, -15.0), (29.0, 20.0, -10.0), (28.5, 29.0, -4.5), (22.5, 36.5, 1.0))
_HIPPO_RADII = (6.0, 5.2, 4.2, 3.0)


def _hippocampus(scale: tuple[float, float, float], offset: np.ndarray, size: float, length: float
                 ) -> tuple[Tube, Tube]:
    """Left hippocampus and its temporal horn (canonical mm).

    ``scale`` is the head's ``(x, y, z)`` size factor, ``offset`` a shift (mm), ``size`` scales the radii and
    ``length`` the centre line about the head of the hippocampus. The temporal horn is a thin CSF tube
    lateral and superior to it (seed 001 figures: the hippocampus floors the temporal horn).
    """
    start = np.multiply(_HIPPO_PATH[0], scale) + offset
    path = [start + length * (np.multiply(q, scale) + offset - start) for q in _HIPPO_PATH]
    hippocampus = Tube(tuple(tuple(float(v) for v in q) for q in path),  # type: ignore[arg-type]
                       tuple(r * size for r in _HIPPO_RADII))
    horn_path = [q + np.array([1.8, 0.0, r * size + 0.6]) for q, r in zip(path[:3], _HIPPO_RADII)]
    horn = Tube(tuple(tuple(float(v) for v in q) for q in horn_path), (1.6, 1.5, 1.2))  # type: ignore[arg-type]
    return hippocampus, horn


def _add_hippocampi(model: HeadModel, rng: np.random.Generator) -> HeadModel:
    """Add both hippocampi (structures, anchors) and paint them before the tumour layers.

    Right = mirror of left plus a small asymmetry (~0.25 mm, ~1 %), like the other pairs.
    """
    offset, asym = _n(rng, 1.2, 3), _n(rng, 0.25, 3)
    size, length = 1.0 + float(_n(rng, 0.05)), 1.0 + float(_n(rng, 0.04))
    left, left_horn = _hippocampus(model.head_scale, offset, size, length)
    right, right_horn = (s.mirrored() for s in _hippocampus(model.head_scale, offset + asym,
                                                           size * (1.0 + float(_n(rng, 0.01))), length))
    at = next(i for i, layer in enumerate(model.layers) if layer.tissue == "oedema")
    layers = (*model.layers[:at], Layer("csf", Union((left_horn, right_horn))), Layer("gm", Union((left, right))),
              *model.layers[at:])
    shapes = {"Hippocampus_L": left, "Hippocampus_R": right}
    return replace(model, layers=layers, structures={**model.structures, **shapes},
                   anchors={**model.anchors, **{k: structure_anchor(s) for k, s in shapes.items()}})


SEED001_STRUCTURES: tuple[str, ...] = (
    "Brain", "Brainstem", "Hippocampus_L", "Hippocampus_R", "Eye_L", "Eye_R", "Lens_L", "Lens_R",
    "OpticNrv_L", "OpticNrv_R", "OpticChiasm", "Pituitary",
)
_SEED001_OUTSIDE = (
    *((name, "Brain") for name in ("Eye_L", "Eye_R", "Lens_L", "Lens_R", "OpticNrv_L", "OpticNrv_R",
                                   "OpticChiasm", "Pituitary")),
    ("OpticNrv_L", "Eye_L"), ("OpticNrv_L", "Eye_R"), ("OpticNrv_R", "Eye_L"), ("OpticNrv_R", "Eye_R"),
    ("Hippocampus_L", "Brainstem"), ("Hippocampus_R", "Brainstem"), ("Hippocampus_L", "Hippocampus_R"),
    ("Pituitary", "OpticChiasm"), ("Brainstem", "Pituitary"), ("Brainstem", "OpticChiasm"), ("Eye_L", "Eye_R"),
)
_SEED001_INSIDE = (("Brainstem", "Brain"), ("Hippocampus_L", "Brain"), ("Hippocampus_R", "Brain"),
                   ("Lens_L", "Eye_L"), ("Lens_R", "Eye_R"))


def _seed001_masks(model: HeadModel, grid: PoseGrid, masks: Masks) -> Masks:
    """The 12 seed001 masks: Brain built here, optic nerves cut at the globes (see the module docstring)."""
    out = dict(masks)
    globes = masks["Eye_L"] | masks["Eye_R"]
    for name in ("OpticNrv_L", "OpticNrv_R"):
        out[name] = masks[name] & ~globes
    regions = model.regions
    brain = grid.mask(Union((regions["cerebrum"], regions["cerebellum"]))) & ~grid.mask(regions["cistern"])
    for name, outer in _SEED001_OUTSIDE:  # the separate OARs are not brain ...
        if outer == "Brain":
            brain &= ~out[name]
    for name, outer in _SEED001_INSIDE:  # ... brainstem and hippocampi are
        if outer == "Brain":
            brain |= out[name]
    out["Brain"] = brain
    return {name: out[name] for name in SEED001_STRUCTURES}


SEED001 = StructureSet(
    name="seed001",
    structures=SEED001_STRUCTURES,
    bilateral={"Eye": ("Eye_L", "Eye_R"), "Lens": ("Lens_L", "Lens_R"), "OpticNrv": ("OpticNrv_L", "OpticNrv_R"),
               "Hippocampus": ("Hippocampus_L", "Hippocampus_R")},
    inside=_SEED001_INSIDE,
    outside=_SEED001_OUTSIDE,
    rates=SEED001_RATES,
    description=(
        "Procedural T1-weighted head MRI (clinseg head-oar phantom) with the 8 organ-at-risk classes of "
        "brain radiotherapy planning of seed 001 (brain, brainstem, hippocampus, eye, lens, optic nerve, "
        "optic chiasm, pituitary; 12 structures with left/right). Each organ is delineated in a training "
        "case with its frequency in the seed's 44 MRIs, with CT->MR propagation errors; the test set is "
        "clean and complete."
    ),
    reference="imitates seed 001, chapter 4 (44 annotated MRIs, Table 4.1 delineation counts)",
    coronal=("Hippocampus_L", "Hippocampus_R"),
    extend=_add_hippocampi,
    finish=_seed001_masks,
)

#: The structure sets by name (``generate_head_oar(structures=...)``, CLI ``--structures``).
STRUCTURE_SETS: dict[str, StructureSet] = {s.name: s for s in (SEED000, SEED001)}
