"""Procedural adult head anatomy for the head-and-neck OAR phantom (shapes only, no image I/O).

The head is described in a canonical frame in mm, ``(x, y, z)`` = (patient left, posterior, superior),
with the origin near the anterior commissure and the mid-sagittal plane at ``x = 0``. Positions follow
adult averages (MNI-like, converted to LPS); sizes follow the brief: head ~150 x 190 x 200 mm, eye
~24 mm, lens ~9 x 4 mm, chiasm ~13 x 8 x 4 mm, pituitary ~12 x 10 x 7 mm, optic nerve ~4 mm wide,
cochlea ~8 x 6 x 5 mm, brainstem ~25 ml.

Every left-sided organ is built once and its right twin is its mirror image (plus a tiny asymmetry), so a
left and a right eye look the same locally and only their position in the head tells them apart — the
ambiguity the seed study reports for contralateral OARs (seed section 4/5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from clinseg.phantoms._paint import layer_coverage
from clinseg.phantoms._shapes import (
    Blob,
    Ellipsoid,
    Floored,
    Folded,
    Intersection,
    PoseGrid,
    Sulci,
    Tube,
    Union,
    frame_along,
    rotation_matrix,
)

#: The 11 OARs of the seed data set (section 2), TG-263 names, in label order.
STRUCTURES: tuple[str, ...] = (
    "Brainstem",
    "Pituitary",
    "OpticChiasm",
    "OpticNrv_L",
    "OpticNrv_R",
    "Eye_L",
    "Eye_R",
    "Cochlea_L",
    "Cochlea_R",
    "Lens_L",
    "Lens_R",
)

#: Left/right pairs (left name, right name).
PAIRS: tuple[tuple[str, str], ...] = (
    ("OpticNrv_L", "OpticNrv_R"),
    ("Eye_L", "Eye_R"),
    ("Cochlea_L", "Cochlea_R"),
    ("Lens_L", "Lens_R"),
)

#: Mean T1-weighted signal per tissue (arbitrary units; seed section 2: 1.5 T T1 gradient echo).
#: Fat bright, white > grey matter > CSF, cortical bone and air dark, vitreous dark, lens medium.
T1_INTENSITY: dict[str, float] = {
    "air": 8.0,
    "skin": 420.0,
    "fat": 880.0,
    "muscle": 330.0,
    "bone": 55.0,
    "marrow": 420.0,
    "csf": 130.0,
    "gm": 430.0,
    "deep_gm": 520.0,
    "wm": 640.0,
    "brainstem": 590.0,
    "oedema": 340.0,
    "tumour": 500.0,
    "necrosis": 160.0,
    "nerve": 560.0,
    "pituitary": 540.0,
    "neurohypophysis": 820.0,
    "cochlea": 190.0,
    "sclera": 300.0,
    "vitreous": 105.0,
    "lens": 470.0,
}


@dataclass(frozen=True)
class Layer:
    """Paint ``tissue`` where ``shape``'s signed distance is below ``grow`` mm (later layers on top)."""

    tissue: str
    shape: object
    grow: float = 0.0


@dataclass(frozen=True)
class Tumour:
    """The simulated tumour: its shape (canonical mm), T1 signal and a bounding sphere for the rule."""

    shape: Blob
    intensity: float
    center: tuple[float, float, float]
    radius: float


@dataclass(frozen=True)
class HeadModel:
    """One patient's anatomy in the canonical frame.

    Attributes
    ----------
    layers : tissues in painting order (later on top).
    structures : the OAR shapes by TG-263 name (the 11 of seed 000; a structure set may add more).
    anchors : per OAR, ``(points (k, 3) mm, radius mm)`` summarising where it is (delineation rule).
    tumour : the simulated tumour.
    intensity : T1 signal per tissue for this patient (tumour included).
    regions : other named shapes a structure set builds on (``cerebrum``, ``cerebellum``, ``cistern``).
    head_scale : head width, length and height factors ``(x, y, z)`` of this patient (~1 ± 0.025).
    """

    layers: tuple[Layer, ...]
    structures: dict[str, object]
    anchors: dict[str, tuple[np.ndarray, float]]
    tumour: Tumour
    intensity: dict[str, float]
    regions: Mapping[str, object] = field(default_factory=dict)
    head_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _n(rng: np.random.Generator, sd: float, size: int | None = None) -> np.ndarray | float:
    """Gaussian jitter clipped to 2.5 sd (no absurd outliers)."""
    return np.clip(rng.normal(0.0, sd, size), -2.5 * sd, 2.5 * sd)


def _brain_floor(h: np.ndarray):
    """Floor of the cerebrum ``z(x, y)``: anterior fossa over the orbits, deep middle fossa laterally."""

    def floor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        middle = 1 / (1 + np.exp(-(y + 18 * h[1]) / 3)) / (1 + np.exp(-(24 * h[1] - y) / 3))
        lateral = 1 / (1 + np.exp(-(np.abs(x) - 22 * h[0]) / 3))
        return (-14.0 - 30.0 * middle * lateral) * h[2]

    return floor


def sample_head(rng: np.random.Generator, tumour_rng: np.random.Generator) -> HeadModel:
    """Draw one patient's head: per-organ size/position perturbations, ventricles, tumour, signals.

    Parameters
    ----------
    rng : stream for the anatomy and tissue signals.
    tumour_rng : stream for the tumour (location, size, shape, signal).

    Returns
    -------
    HeadModel
        Shapes in the canonical frame (mm). Pairs are mirror images up to ~0.3 mm / ~1 %.
    """
    h = 1.0 + _n(rng, 0.025, 3)  # head width, length, height factors

    def p(x: float, y: float, z: float) -> tuple[float, float, float]:
        return (x * h[0], y * h[1], z * h[2])

    def add(a, b) -> tuple[float, float, float]:
        return tuple(float(u + v) for u, v in zip(a, b))  # type: ignore[return-value]

    def side_jitter(sd: float) -> tuple[np.ndarray, np.ndarray]:
        """Shared offset for a pair and the small extra offset of the right side."""
        return _n(rng, sd, 3), _n(rng, 0.25, 3)

    # --- head, skull, brain -------------------------------------------------------------------------
    cranium = Ellipsoid(p(0, 15, 8), tuple(np.multiply((72, 90, 82), h)))
    occiput = Ellipsoid(p(0, 50, -40), tuple(np.multiply((60, 50, 45), h)))
    face = Ellipsoid(p(0, -20, -40), tuple(np.multiply((60, 60, 44), h)))
    nose = Tube((p(0, -69, -27), p(0, -74, -47)), (5.0, 8.0))
    neck = Ellipsoid(p(0, 20, -85), tuple(np.multiply((55, 60, 45), h)))
    head = Union((cranium, occiput, face, nose, neck))

    cerebrum = Floored(Ellipsoid(p(0, 15, 2), tuple(np.multiply((58, 76, 72), h))), _brain_floor(h))
    cerebellum = Ellipsoid(add(p(0, 60, -36), (0, *_n(rng, 1.5, 2))), tuple(np.multiply((46, 26, 21), h)))
    bs_shift = (0.0, *_n(rng, 1.5, 2))
    bs_scale = 1.0 + _n(rng, 0.06)
    brainstem = Tube(
        tuple(add(p(*q), bs_shift) for q in ((0, 19, -6), (0, 24, -15), (0, 28, -26), (0, 32, -42), (0, 35, -58))),
        tuple(r * bs_scale for r in (10.0, 12.0, 13.0, 9.5, 8.5)),
    )
    cistern = Ellipsoid(p(0, 2, -17), (15.0, 13.0, 7.0))
    envelope = Union((cerebrum, cerebellum, brainstem, cistern))
    phase = tuple(rng.uniform(0, 2 * np.pi, 3))
    folds = Folded(cerebrum, depth=5.5, amp=2.5, wavelength=float(rng.uniform(16, 20)), phase=phase)

    v = 1.0 + _n(rng, 0.2)  # ventricle size (grows with age)
    lat_vent = Ellipsoid(p(9, 6, 16), (24.0 * v**0.5, 5.5 * v, 7.0 * v), frame_along((0.12, 1.0, -0.1)))

    # --- tumour (weak label "tumour"; drives which OARs are delineated) ---------------------------
    tumour = _sample_tumour(tumour_rng, envelope, h)

    # --- sella and pituitary, chiasm -------------------------------------------------------------
    pit_c = add(p(0, 0, -26), (0, *_n(rng, 1.2, 2)))
    pit_ax = tuple(np.multiply((6.0, 5.0, 3.5), 1.0 + _n(rng, 0.08, 3)))
    pituitary = Ellipsoid(pit_c, pit_ax)
    ch_c = add(p(0, -4, -14), (0, *_n(rng, 1.2, 2)))
    ch_ax = tuple(np.multiply((6.5, 4.0, 2.0), 1.0 + _n(rng, 0.07, 3)))
    chiasm = Ellipsoid(ch_c, ch_ax, rotation_matrix(float(-0.25 + _n(rng, 0.08)), 0.0, 0.0))

    # --- left eye complex (orbit, muscles, globe, lens, optic nerve); right = mirror ------------------
    eye_off, eye_asym = side_jitter(1.2)
    r_eye = 11.7 * (1.0 + _n(rng, 0.025))
    lens_r, lens_t = 4.5 * (1.0 + _n(rng, 0.06)), 2.0 * (1.0 + _n(rng, 0.08))
    nerve_r = 2.0 * (1.0 + _n(rng, 0.06))
    orbit_scale = 1.0 + _n(rng, 0.04)
    coch_off, coch_asym = side_jitter(1.2)
    coch_scale = 1.0 + _n(rng, 0.06, 3)

    def eye_complex(off: np.ndarray, size: float) -> dict[str, object]:
        ec = add(p(32, -55, -32), off)
        axes = (r_eye * size, r_eye * 1.02 * size, r_eye * 0.98 * size)
        globe = Ellipsoid(ec, axes)
        lens = Ellipsoid(add(ec, (0, -axes[1] + 1.5 + lens_t, 0)), (lens_r * size, lens_t * size, lens_r * size))
        orbit = Ellipsoid(add(p(22, -38, -30), off), (27 * orbit_scale, 15.5 * orbit_scale, 14.5 * orbit_scale),
                          frame_along((20, -39, -6)))
        apex = add(p(12, -17, -26), off * 0.5)
        muscles = []
        for ins in ((axes[0], 0), (-axes[0], 0), (0, axes[2]), (0, -axes[2])):
            end = add(ec, (ins[0] * 0.95, -2.0, ins[1] * 0.95))
            mid = add(apex, 0.6 * (np.subtract(end, apex)))
            muscles.append(Tube((apex, mid, end), (1.2, 2.6, 1.4)))
        chiasm_corner = add(ch_c, (0.6 * ch_ax[0], -0.7 * ch_ax[1], 0.0))
        path = (add(ec, (0, axes[1] - 1.0, 0)), add(p(24, -30, -29), off * 0.6), add(p(13, -17, -25), off * 0.3),
                chiasm_corner)
        nerve = Tube(path, (nerve_r * size,) * 4)
        sheath = Tube(path[:-1], (nerve_r * size + 1.2,) * 3)
        return {"globe": globe, "vitreous": globe, "lens": lens, "orbit": orbit, "muscles": Union(tuple(muscles)),
                "nerve": nerve, "sheath": sheath}

    def ear(off: np.ndarray) -> dict[str, object]:
        cc = add(p(34, 5, -37), off)
        cochlea = Ellipsoid(cc, tuple(np.multiply((4.0, 3.0, 2.5), coch_scale)), frame_along((1.0, -1.0, 0.3)))
        petrous = Ellipsoid(add(p(28, 8, -38), off * 0.5), (28.0, 11.0, 10.0), frame_along((-1.0, -1.0, 0.15)))
        iac = Tube((p(11, 25, -36), add(cc, (-4.0, 5.0, 1.0))), (2.3, 1.8))
        return {"cochlea": cochlea, "petrous": petrous, "iac": iac}

    left_eye = eye_complex(eye_off, 1.0)
    right_eye = {k: s.mirrored() for k, s in eye_complex(eye_off + eye_asym, 1.0 + float(_n(rng, 0.008))).items()}
    left_ear = ear(coch_off)
    right_ear = {k: s.mirrored() for k, s in ear(coch_off + coch_asym).items()}
    # Each optic nerve ends on a chiasm corner; the chiasm is symmetric (x = 0, tilted about x) so the
    # mirrored right nerve ends on its other corner.

    def both(key: str, which: str = "eye") -> tuple[object, ...]:
        pair = (left_eye, right_eye) if which == "eye" else (left_ear, right_ear)
        return (pair[0][key], pair[1][key])

    tracts = Union((Tube((add(ch_c, (0.6 * ch_ax[0], 0.7 * ch_ax[1], 0)), p(14, 12, -8)), (1.8, 1.8)),
                    Tube((add(ch_c, (-0.6 * ch_ax[0], 0.7 * ch_ax[1], 0)), p(-14, 12, -8)), (1.8, 1.8))))
    deep = Union((Ellipsoid(p(10, 14, 2), (8, 12, 7)), Ellipsoid(p(-10, 14, 2), (8, 12, 7)),
                  Ellipsoid(p(22, -2, 4), (5, 12, 9)), Ellipsoid(p(-22, -2, 4), (5, 12, 9))))

    bone_base = Union((
        Ellipsoid(p(0, 12, -44), tuple(np.multiply((56, 52, 20), h))),  # skull base
        Ellipsoid(p(0, 50, -40), tuple(np.multiply((55, 45, 40), h))),  # occipital bone / posterior fossa
        Ellipsoid(p(0, -40, -54), tuple(np.multiply((42, 30, 14), h))),  # maxilla
    ))
    sinuses = Union((
        Ellipsoid(p(0, -12, -40), (13.0, 11.0, 9.0)),  # sphenoid
        Ellipsoid(p(0, -50, -50), (9.0, 20.0, 18.0)),  # nasal cavity
        Ellipsoid(p(0, -42, -30), (8.0, 14.0, 9.0)),  # ethmoid cells
        Ellipsoid(p(0, -62, -12), (10.0, 5.0, 6.0)),  # frontal sinus
        Ellipsoid(p(26, -42, -56), (13.0, 15.0, 14.0)),  # maxillary sinuses
        Ellipsoid(p(-26, -42, -56), (13.0, 15.0, 14.0)),
    ))
    t = tumour.shape
    layers = (
        Layer("skin", head),
        Layer("fat", head, -2.0),
        Layer("muscle", Union((face, neck, occiput)), -8.0),
        Layer("bone", cranium, -6.0),
        Layer("marrow", cranium, -8.5),
        Layer("bone", envelope, 4.5),  # inner table
        Layer("bone", bone_base),
        Layer("air", sinuses),
        Layer("csf", envelope, 2.5),
        Layer("gm", cerebrum),
        Layer("csf", Sulci(folds)),
        Layer("wm", folds),
        Layer("deep_gm", deep),
        Layer("csf", Ellipsoid(p(0, 16, 56), (0.4, 78.0, 26.0))),  # interhemispheric fissure
        Layer("wm", Ellipsoid(p(0, 10, 26), (9.0, 36.0, 4.0))),  # corpus callosum
        Layer("gm", cerebellum),
        Layer("wm", Ellipsoid(add(cerebellum.center, (0, -4, 2)), (28.0, 13.0, 10.0))),
        Layer("csf", Union((lat_vent, lat_vent.mirrored(), Ellipsoid(p(0, 12, -1), (1.5, 10.0 * v**0.5, 7.0))))),
        Layer("oedema", Intersection(t, cerebrum, grow=float(tumour_rng.uniform(0.0, 6.0)))),
        Layer("tumour", Intersection(t, envelope)),
        Layer("necrosis", Intersection(Blob(t.center, t.radius * float(tumour_rng.uniform(0.0, 0.55)), t.coefs),
                                       envelope)),
        Layer("csf", cistern),
        Layer("bone", Union(both("orbit")), 2.5),
        Layer("fat", Union(both("orbit"))),
        Layer("muscle", Union(both("muscles"))),
        Layer("csf", Union(both("sheath"))),
        Layer("bone", Union(both("petrous", "ear"))),
        Layer("csf", Union(both("iac", "ear"))),
        Layer("cochlea", Union(both("cochlea", "ear"))),
        Layer("bone", pituitary, 2.5),  # sella turcica
        Layer("pituitary", pituitary),
        Layer("neurohypophysis", Ellipsoid(add(pit_c, (0, 0.55 * pit_ax[1], 0.3)), (2.5, 1.5, 1.8))),
        Layer("nerve", Tube((add(pit_c, (0, 1.0, pit_ax[2] - 0.5)), p(0, 2.5, -9)), (1.3, 1.6))),  # stalk
        Layer("nerve", tracts),
        Layer("nerve", chiasm),
        Layer("nerve", Union(both("nerve"))),
        Layer("brainstem", brainstem),
        Layer("csf", Ellipsoid(p(0, 44.5, -32), (5.0, 2.5, 5.0))),  # fourth ventricle
        Layer("sclera", Union(both("globe"))),
        Layer("vitreous", Union(both("globe")), -1.2),
        Layer("lens", Union(both("lens"))),
    )
    structures: dict[str, object] = {
        "Brainstem": brainstem,
        "Pituitary": pituitary,
        "OpticChiasm": chiasm,
        "OpticNrv_L": left_eye["nerve"],
        "OpticNrv_R": right_eye["nerve"],
        "Eye_L": left_eye["globe"],
        "Eye_R": right_eye["globe"],
        "Cochlea_L": left_ear["cochlea"],
        "Cochlea_R": right_ear["cochlea"],
        "Lens_L": left_eye["lens"],
        "Lens_R": right_eye["lens"],
    }
    anchors = {name: structure_anchor(shape) for name, shape in structures.items()}
    intensity = {k: v * float(1.0 + _n(rng, 0.04)) for k, v in T1_INTENSITY.items()}
    intensity["tumour"] = tumour.intensity
    intensity["necrosis"] = T1_INTENSITY["necrosis"] * float(tumour_rng.uniform(0.8, 1.6))
    regions = {"cerebrum": cerebrum, "cerebellum": cerebellum, "cistern": cistern}
    return HeadModel(layers, structures, anchors, tumour, intensity, regions, (float(h[0]), float(h[1]), float(h[2])))


def structure_anchor(shape: object) -> tuple[np.ndarray, float]:
    """Centre-line points and a radius summarising an OAR for distance computations (mm)."""
    if isinstance(shape, Tube):
        return shape.sample(6), float(np.mean(shape.radii))
    if isinstance(shape, Ellipsoid):
        return np.asarray([shape.center], dtype=float), float(np.mean(shape.axes))
    raise TypeError(f"no anchor for {type(shape).__name__}")


def _sample_tumour(rng: np.random.Generator, envelope: object, h: np.ndarray) -> Tumour:
    """A lump anywhere in the brain (centre >= 4 mm inside), radius 7-22 mm, own T1 signal."""
    lo, hi = np.array([-52.0, -58.0, -50.0]) * h, np.array([52.0, 82.0, 66.0]) * h
    for _ in range(1000):
        c = rng.uniform(lo, hi)
        if float(envelope.sd(*(np.array([v]) for v in c))[0]) < -4.0:  # type: ignore[attr-defined]
            break
    radius = float(rng.uniform(7.0, 22.0))
    coefs = tuple(float(v) for v in rng.uniform(-0.12, 0.12, 9))
    # Hypo- to hyperintense relative to grey matter (enhancing or haemorrhagic lesions are bright on T1).
    signal = T1_INTENSITY["gm"] * float(rng.choice([rng.uniform(0.45, 0.8), rng.uniform(1.15, 1.7)]))
    centre = tuple(float(v) for v in c)
    return Tumour(Blob(centre, radius, coefs), signal, centre, radius)  # type: ignore[arg-type]


def render_head(model: HeadModel, grid: PoseGrid) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paint the tissues and cut the masks of ``model.structures`` on ``grid``.

    Each layer blends its tissue signal in with a one-voxel partial-volume ramp, so thin organs (optic
    nerve, lens) keep a visible, smooth outline at 2 mm.

    Returns
    -------
    image : ``(Z, Y, X)`` float32 noise-free T1 signal.
    masks : TG-263 name -> ``(Z, Y, X)`` bool mask (voxel centres inside the organ; never empty).
    """
    image = np.full(grid.shape, model.intensity["air"], dtype=np.float32)
    for layer in model.layers:
        hit = layer_coverage(grid, layer.shape, layer.grow)
        if hit is None:
            continue
        block, alpha = hit
        if not alpha.any():
            continue
        region = image[block]
        region += alpha * (np.float32(model.intensity[layer.tissue]) - region)
    masks = {name: grid.mask(shape) for name, shape in model.structures.items()}
    return image, masks
