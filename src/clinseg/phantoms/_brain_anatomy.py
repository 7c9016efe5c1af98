"""Procedural skull-stripped brain with a glioma-like lesion, and its four MR contrasts (no image I/O).

The brain lives in a canonical frame in mm, ``(x, y, z)`` = (patient left, posterior, superior), origin
near the centre of the cerebrum, mid-sagittal plane at ``x = 0``: an ellipsoidal cerebrum (~130 x 160 x
115 mm) whose outer 3-9 mm are a folded grey-matter cortex with CSF-filled sulci, white matter inside,
deep grey nuclei, lateral and third ventricles, a cerebellum and the top of the brainstem.

The lesion imitates the BRATS annotation (seed 001, sections 2.3.1 and 3.4.1): a tumour core whose outer
shell is a contrast-enhancing rim (label 3) around a necrotic centre (label 1), surrounded by an irregular,
white-matter-bound oedema (label 2). High-grade lesions may lack necrosis (solid enhancing core); low-grade
ones do not enhance, their core is non-enhancing tumour (label 1). The compartments are nested by
construction: necrosis lies inside the core inset by the thinnest rim, the oedema contains the core grown
by a few mm.

Signals are relative to white matter (= 1) per sequence (:data:`CONTRAST`) and roughly follow clinical
MRI: T1 grey < white, CSF and necrosis dark; T1c as T1 but the rim bright; T2 CSF, necrosis and oedema
bright; FLAIR as T2 but free water (CSF) dark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from clinseg.phantoms._head_anatomy import Layer, _n
from clinseg.phantoms._paint import layer_coverage
from clinseg.phantoms._shapes import (
    Blob,
    Ellipsoid,
    Folded,
    Intersection,
    PoseGrid,
    Sulci,
    Tube,
    Union,
    frame_along,
)

#: The four co-registered sequences, in channel order (``_0000`` … ``_0003``), as BRATS.
SEQUENCES: tuple[str, ...] = ("T1", "T1c", "T2", "FLAIR")
#: Label values of the BRATS annotation (seed 001: class 1 necrotic and non-enhancing core, 2 oedema,
#: 3 contrast-enhancing tumour).
LABELS: dict[str, int] = {"necrosis": 1, "oedema": 2, "enhancing": 3}

Grade = Literal["high", "low"]

#: Mean signal per sequence and tissue, relative to white matter. ``non_enhancing`` is the solid core of
#: a low-grade lesion (label 1 like necrosis, but not fluid-like).
CONTRAST: dict[str, dict[str, float]] = {
    "T1": {"wm": 1.0, "gm": 0.72, "deep_gm": 0.82, "csf": 0.28, "oedema": 0.68,
           "enhancing": 0.70, "necrosis": 0.36, "non_enhancing": 0.60},
    "T1c": {"wm": 1.0, "gm": 0.75, "deep_gm": 0.85, "csf": 0.30, "oedema": 0.70,
            "enhancing": 1.75, "necrosis": 0.38, "non_enhancing": 0.62},
    "T2": {"wm": 1.0, "gm": 1.40, "deep_gm": 1.25, "csf": 3.20, "oedema": 2.20,
           "enhancing": 1.70, "necrosis": 2.80, "non_enhancing": 2.30},
    "FLAIR": {"wm": 1.0, "gm": 1.25, "deep_gm": 1.15, "csf": 0.30, "oedema": 2.00,
              "enhancing": 1.60, "necrosis": 1.00, "non_enhancing": 1.80},
}
#: Relative amplitude of the smooth texture per tissue (tumour compartments are heterogeneous).
HETEROGENEITY: dict[str, float] = {"wm": 0.03, "gm": 0.04, "deep_gm": 0.03, "csf": 0.02, "oedema": 0.10,
                                   "enhancing": 0.18, "necrosis": 0.12, "non_enhancing": 0.12}
_TUMOUR_TISSUES = ("oedema", "enhancing", "necrosis", "non_enhancing")


@dataclass(frozen=True)
class Lesion:
    """A glioma-like lesion (canonical mm).

    Attributes
    ----------
    grade : ``"high"`` (enhancing rim, usually necrosis) or ``"low"`` (non-enhancing core, no rim).
    core : the tumour core (enhancing rim + necrosis, or non-enhancing tumour), cut to the cerebrum.
    necrosis : the necrotic centre inside the rim, or None (solid lesion).
    oedema : the whole abnormal region; contains ``core`` grown by 3 mm.
    center, radius : the core's nominal centre and radius (mm).
    rim_mm : mean thickness of the enhancing rim (0 for low grade).
    """

    grade: Grade
    core: object
    necrosis: object | None
    oedema: object
    center: tuple[float, float, float]
    radius: float
    rim_mm: float


@dataclass(frozen=True)
class BrainModel:
    """One patient's brain in the canonical frame.

    Attributes
    ----------
    layers : tissues in painting order (later on top).
    brain : the skull-stripping mask's shape (everything outside is zero, as in BRATS).
    ventricles : the lateral and third ventricles (for checks).
    white_matter : the white-matter shape of the cerebrum (for checks).
    lesion : the tumour, or None for a tumour-free case.
    signal : per sequence, the signal of each tissue relative to white matter for this patient.
    """

    layers: tuple[Layer, ...]
    brain: object
    ventricles: object
    white_matter: object
    lesion: Lesion | None
    signal: dict[str, dict[str, float]]


def sample_brain(rng: np.random.Generator, tumour_rng: np.random.Generator, tumour: bool = True) -> BrainModel:
    """Draw one patient's brain: size and shape, ventricles, tissue signals and (optionally) a lesion.

    Parameters
    ----------
    rng : stream for the anatomy and tissue signals.
    tumour_rng : stream for the lesion (grade, position, size, shape, signals).
    tumour : draw a lesion (False: a tumour-free brain, all labels zero).
    """
    h = 1.0 + _n(rng, 0.04, 3)  # brain width, length, height factors

    def p(x: float, y: float, z: float) -> tuple[float, float, float]:
        return (x * h[0], y * h[1], z * h[2])

    cerebrum = Ellipsoid(p(0, 0, 8), tuple(np.multiply((64.0, 80.0, 56.0), h)))  # type: ignore[arg-type]
    cerebellum = Ellipsoid(p(0, 46, -40), tuple(np.multiply((46.0, 25.0, 20.0), h)))  # type: ignore[arg-type]
    brainstem = Tube((p(0, 8, -18), p(0, 16, -40), p(0, 22, -75)), (11.0, 10.0, 9.0))
    brain = Union((cerebrum, cerebellum, brainstem))
    phase = tuple(float(v) for v in rng.uniform(0, 2 * np.pi, 3))
    wavelength = float(rng.uniform(14.0, 18.0))
    cortex = float(rng.uniform(5.0, 7.0))
    white = Folded(cerebrum, depth=cortex, amp=2.5, wavelength=wavelength, phase=phase)  # type: ignore[arg-type]
    # The same folding 2 mm further out: the white matter plus a margin, where oedema may spread.
    white_grown = Folded(cerebrum, depth=cortex - 2.0, amp=2.5, wavelength=wavelength, phase=phase)  # type: ignore[arg-type]

    v = 1.0 + float(_n(rng, 0.2))  # ventricle size (grows with age)
    body = Ellipsoid(p(10, -4, 14), (22.0 * v**0.5, 6.0 * v, 8.0 * v), frame_along((0.1, 1.0, -0.1)))
    horn = Tube((p(11, 8, 16), p(16, 24, 10), p(20, 36, -2)), (4.0 * v, 3.5 * v, 2.0))
    left = Union((body, horn))
    third = Ellipsoid(p(0, 4, 2), (1.6, 10.0 * v**0.5, 7.0))
    ventricles = Union((left, left.mirrored(), third))
    deep = Union((Ellipsoid(p(10, 8, 2), (8, 12, 7)), Ellipsoid(p(-10, 8, 2), (8, 12, 7)),
                  Ellipsoid(p(22, -8, 4), (5, 12, 9)), Ellipsoid(p(-22, -8, 4), (5, 12, 9))))

    layers = [
        Layer("gm", brain),
        Layer("csf", Sulci(white, depth=cortex, level=0.45)),
        Layer("wm", white),
        Layer("csf", Ellipsoid(p(0, 0, 50), (1.0, 78.0, 28.0))),  # interhemispheric fissure
        Layer("wm", Ellipsoid(p(0, 0, 24), (10.0, 34.0, 4.0))),  # corpus callosum
        Layer("deep_gm", deep),
        Layer("wm", Ellipsoid(p(0, 42, -38), (28.0, 13.0, 10.0))),  # cerebellar white matter
        Layer("wm", brainstem, -1.0),
        Layer("csf", ventricles),
    ]
    signal = {seq: {t: c * float(1.0 + _n(rng, 0.04)) for t, c in values.items()} for seq, values in CONTRAST.items()}
    for seq in SEQUENCES:
        signal[seq]["wm"] = 1.0  # the reference
    lesion = _sample_lesion(tumour_rng, cerebrum, white_grown) if tumour else None
    if lesion is not None:
        layers.append(Layer("oedema", lesion.oedema))
        if lesion.grade == "high":
            layers.append(Layer("enhancing", lesion.core))
            if lesion.necrosis is not None:
                layers.append(Layer("necrosis", lesion.necrosis))
        else:
            layers.append(Layer("non_enhancing", lesion.core))
        for seq in SEQUENCES:  # the lesion's own signals vary more between patients
            for tissue in _TUMOUR_TISSUES:
                signal[seq][tissue] = CONTRAST[seq][tissue] * float(1.0 + _n(tumour_rng, 0.08))
        signal["T1c"]["enhancing"] = float(tumour_rng.uniform(1.45, 2.1))  # gadolinium uptake
    return BrainModel(tuple(layers), brain, ventricles, white, lesion, signal)


def _sample_lesion(rng: np.random.Generator, cerebrum: Ellipsoid, white_grown: Folded) -> Lesion:
    """A BRATS-like lesion in a cerebral hemisphere.

    High grade (70 %): core radius 8-24 mm, enhancing rim 3-7 mm thick (never under 2 mm), necrosis in
    80 % of them, oedema reaching 5-22 mm beyond the core. Low grade: core 8-22 mm, no enhancement, oedema
    2-10 mm beyond. The oedema follows the white matter (plus 2 mm) and has 1-4 extra lobes.
    """
    grade: Grade = "high" if rng.random() < 0.7 else "low"
    radius = float(rng.uniform(8.0, 24.0) if grade == "high" else rng.uniform(8.0, 22.0))
    centre = np.array([22.0, 0.0, 15.0])
    for _ in range(200):
        c = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(10.0, 45.0), rng.uniform(-60.0, 55.0),
                      rng.uniform(-25.0, 50.0)])
        if float(cerebrum.sd(*(np.array([v]) for v in c))[0]) < -(radius + 6.0):
            centre = c
            break
    ctr = tuple(float(v) for v in centre)
    core_blob = Blob(ctr, radius, tuple(float(v) for v in rng.uniform(-0.12, 0.12, 9)))  # type: ignore[arg-type]
    core = Intersection(core_blob, cerebrum)

    necrosis, rim = None, 0.0
    if grade == "high":
        rim = float(rng.uniform(3.0, 7.0))
        if rng.random() < 0.8 and radius - rim > 3.0:
            # Its own irregular shape, offset a little: the rim is thicker on one side, as often seen.
            offset = rng.normal(0.0, 0.15 * rim, 3)
            nec_blob = Blob(tuple(float(v) for v in centre + offset), radius - rim,  # type: ignore[arg-type]
                            tuple(float(v) for v in rng.uniform(-0.15, 0.15, 9)))
            necrosis = Intersection(nec_blob, Intersection(core_blob, cerebrum, grow=-2.0))

    reach = float(rng.uniform(5.0, 22.0) if grade == "high" else rng.uniform(2.0, 10.0))
    lobes: list[object] = [Blob(ctr, radius + reach, tuple(float(v) for v in rng.uniform(-0.22, 0.22, 9)))]  # type: ignore[arg-type]
    for _ in range(int(rng.integers(1, 5))):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        lobes.append(Blob(tuple(float(v) for v in centre + u * (radius + 0.5 * reach)),  # type: ignore[arg-type]
                          float(rng.uniform(0.35, 0.65) * (radius + reach))))
    oedema = Union((Intersection(Union(tuple(lobes)), Intersection(white_grown, cerebrum)),
                    Intersection(core_blob, cerebrum, grow=3.0)))
    return Lesion(grade, core, necrosis, oedema, ctr, radius, rim)  # type: ignore[arg-type]


def render_brain(
    model: BrainModel, grid: PoseGrid, texture: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Paint the four noise-free sequences, the brain mask and the label map on ``grid``.

    Each layer blends its tissue in with a one-voxel partial-volume ramp; the layer's coverage is
    computed once and composited per sequence with that sequence's signals, modulated by ``texture``.

    Parameters
    ----------
    model : the brain.
    grid : the posed output grid.
    texture : ``(Z, Y, X)`` smooth random field, zero mean, unit variance (tissue heterogeneity).

    Returns
    -------
    images : sequence name -> ``(Z, Y, X)`` float32 signal, white matter ~1, 0 outside the brain.
    brain : ``(Z, Y, X)`` bool skull-stripping mask (voxel centres inside the brain).
    labels : ``(Z, Y, X)`` uint8 label map (:data:`LABELS`; 0 background and healthy tissue).
    """
    coverage = []
    for layer in model.layers:
        hit = layer_coverage(grid, layer.shape, layer.grow)
        if hit is None:
            continue
        block, alpha = hit
        if alpha.any():
            coverage.append((layer.tissue, block, alpha))
    images = {}
    for seq in SEQUENCES:
        image = np.zeros(grid.shape, dtype=np.float32)
        for tissue, block, alpha in coverage:
            value = np.float32(model.signal[seq][tissue]) * (1.0 + np.float32(HETEROGENEITY[tissue]) * texture[block])
            region = image[block]
            region += alpha * (value - region)
        images[seq] = image
    brain = region_mask(grid, model.brain)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    lesion = model.lesion
    if lesion is not None:
        core_label = LABELS["enhancing"] if lesion.grade == "high" else LABELS["necrosis"]
        parts = [(lesion.oedema, LABELS["oedema"]), (lesion.core, core_label)]
        if lesion.necrosis is not None:
            parts.append((lesion.necrosis, LABELS["necrosis"]))
        for shape, value in parts:
            labels[region_mask(grid, shape)] = value
        labels[~brain] = 0
    return images, brain, labels


def region_mask(grid: PoseGrid, shape: object) -> np.ndarray:
    """Full-grid bool mask of the voxel centres inside ``shape`` (may be empty, unlike ``grid.mask``)."""
    out = np.zeros(grid.shape, dtype=bool)
    hit = grid.evaluate(shape)
    if hit is not None:
        block, sd = hit
        out[block] = sd < 0.0
    return out
