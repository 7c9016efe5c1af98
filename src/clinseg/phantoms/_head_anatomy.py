"""Procedural anatomy of a head for T1-weighted MRI: tissues, the 11 OARs of seed 000 and a tumour.

Everything is defined in a *head frame* in millimetres — x towards the patient's left, y posterior,
z superior (LPS, as ITK) — with the origin near the centre of the head. Left and right organs are defined
as mirror images in that frame (x -> -x), so their masks mirror each other about the mid-sagittal plane
and the two eyes look alike locally: only their position tells them apart (seed 000, Sec. 4, discusses
exactly this ambiguity). Per-patient variation is drawn from a ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

STRUCTURES: tuple[str, ...] = (
    "Brainstem", "Pituitary", "OpticChiasm", "OpticNrv_L", "OpticNrv_R",
    "Eye_L", "Eye_R", "Cochlea_L", "Cochlea_R", "Lens_L", "Lens_R",
)
#: Nominal T1 intensities (arbitrary units, white matter ~0.7, fat ~0.95, bone and air dark).
T1 = {
    "soft": 0.40, "fat": 0.92, "bone": 0.08, "csf": 0.14, "gm": 0.46, "wm": 0.72, "orbital_fat": 0.95,
    "vitreous": 0.12, "sclera": 0.45, "lens": 0.58, "nerve": 0.62, "chiasm": 0.62, "pituitary": 0.56,
    "brainstem": 0.60, "cochlea": 0.32, "tumour": 0.28, "tumour_rim": 0.55,
}


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid in the head frame: centre and semi-axes (x, y, z) in mm."""

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]

    def mirrored(self) -> Ellipsoid:
        return Ellipsoid((-self.centre[0], self.centre[1], self.centre[2]), self.semi)

    def grown(self, mm: float) -> Ellipsoid:
        return Ellipsoid(self.centre, tuple(s + mm for s in self.semi))  # type: ignore[arg-type]

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (a, b, c) = self.centre, self.semi
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0


@dataclass(frozen=True)
class Tube:
    """A segment from ``start`` to ``end`` (mm) with ``radius``: an optic nerve."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    radius: float

    def mirrored(self) -> Tube:
        s, e = self.start, self.end
        return Tube((-s[0], s[1], s[2]), (-e[0], e[1], e[2]), self.radius)

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a, b = np.asarray(self.start, np.float32), np.asarray(self.end, np.float32)
        d = b - a
        t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d)
        t = np.clip(t, 0.0, 1.0)
        return (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2 <= self.radius**2


@dataclass(frozen=True)
class HeadAnatomy:
    """One patient's anatomy in the head frame (left organs; right ones are their mirror images)."""

    head: Ellipsoid
    brain: Ellipsoid
    ventricle_l: Ellipsoid
    skull_base: Ellipsoid
    orbit_fat_l: Ellipsoid
    eye_l: Ellipsoid
    lens_l: Ellipsoid
    nerve_l: Tube
    chiasm: Ellipsoid
    pituitary: Ellipsoid
    brainstem: Ellipsoid
    cochlea_l: Ellipsoid
    tumour: Ellipsoid

    def structures(self) -> dict[str, Ellipsoid | Tube]:
        """The 11 OARs by TG-263 name."""
        return {
            "Brainstem": self.brainstem, "Pituitary": self.pituitary, "OpticChiasm": self.chiasm,
            "OpticNrv_L": self.nerve_l, "OpticNrv_R": self.nerve_l.mirrored(),
            "Eye_L": self.eye_l, "Eye_R": self.eye_l.mirrored(),
            "Cochlea_L": self.cochlea_l, "Cochlea_R": self.cochlea_l.mirrored(),
            "Lens_L": self.lens_l, "Lens_R": self.lens_l.mirrored(),
        }


def _jitter(e: Ellipsoid, rng: np.random.Generator, size: float = 0.1, shift: float = 1.5) -> Ellipsoid:
    semi = tuple(float(s * rng.uniform(1 - size, 1 + size)) for s in e.semi)
    centre = tuple(float(c + rng.normal(0, shift)) for c in e.centre)
    return Ellipsoid(centre, semi)  # type: ignore[arg-type]


def sample_anatomy(rng: np.random.Generator) -> HeadAnatomy:
    """Draw one patient: nominal adult anatomy with per-organ size and position variation (mm)."""
    brain = _jitter(Ellipsoid((0, 8, 35), (62, 80, 55)), rng, 0.05, 2.0)
    eye = _jitter(Ellipsoid((32, -60, -12), (12, 12, 11.5)), rng, 0.06, 1.0)
    ex, ey, ez = eye.centre
    lens = Ellipsoid((ex, ey - eye.semi[1] * 0.7, ez), tuple(float(v * rng.uniform(0.9, 1.1)) for v in (4.5, 2.0, 4.5)))
    chiasm = _jitter(Ellipsoid((0, -20, -19), (7, 4, 2.2)), rng, 0.1, 1.0)
    chiasm = Ellipsoid((0.0, chiasm.centre[1], chiasm.centre[2]), chiasm.semi)  # on the midline
    nerve = Tube((ex - 1.0, ey + eye.semi[1] - 0.5, ez),
                 (chiasm.semi[0] - 1.0, chiasm.centre[1], chiasm.centre[2]), float(rng.uniform(2.0, 2.4)))
    pituitary = _jitter(Ellipsoid((0, -10, -31), (5, 6, 3.5)), rng, 0.1, 1.0)
    pituitary = Ellipsoid((0.0, pituitary.centre[1], pituitary.centre[2]), pituitary.semi)
    brainstem = _jitter(Ellipsoid((0, 12, -38), (13, 13, 28)), rng, 0.08, 1.5)
    brainstem = Ellipsoid((0.0, brainstem.centre[1], brainstem.centre[2]), brainstem.semi)
    cochlea = _jitter(Ellipsoid((30, 12, -28), (3.5, 3.5, 3.0)), rng, 0.1, 1.0)
    # tumour: somewhere in the brain (or just below it), 8-22 mm radius
    while True:
        c = np.array(brain.centre) + rng.uniform(-1, 1, 3) * np.array(brain.semi) * np.array([0.75, 0.8, 0.9])
        c[2] -= 15
        if Ellipsoid(brain.centre, tuple(s * 0.95 for s in brain.semi)).inside(*c):  # type: ignore[arg-type]
            break
    r = float(rng.uniform(8, 22))
    tumour = Ellipsoid(tuple(float(v) for v in c), (r, r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2)))  # type: ignore[arg-type]
    return HeadAnatomy(
        head=_jitter(Ellipsoid((0, -4, -2), (74, 98, 86)), rng, 0.04, 1.0),
        brain=brain,
        ventricle_l=_jitter(Ellipsoid((9, 10, 40), (5, 22, 10)), rng, 0.15, 1.0),
        skull_base=Ellipsoid((0, 8, -28), (46, 26, 10)),
        orbit_fat_l=Ellipsoid((ex - 1, ey + 9, ez - 1), (16, 21, 14)),
        eye_l=eye, lens_l=lens, nerve_l=nerve, chiasm=chiasm, pituitary=pituitary,
        brainstem=brainstem, cochlea_l=cochlea, tumour=tumour,
    )


def smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """A smooth random field of ``shape`` (about unit variance), from a coarse grid upsampled cubically."""
    coarse = rng.normal(size=(cells,) * len(shape)).astype(np.float32)
    return ndimage.zoom(coarse, [s / cells for s in shape], order=3, mode="nearest")[tuple(slice(0, s) for s in shape)]


def render(
    anatomy: HeadAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paint the T1 image and the 11 OAR masks on head-frame coordinate grids ``x, y, z`` ``(Z, Y, X)``.

    Returns the noise-free image (nominal intensities with tissue texture) and the clean masks.
    """
    shape = x.shape
    a = anatomy
    img = np.zeros(shape, np.float32)
    texture = smooth_noise(shape, rng, 8)

    def paint(mask: np.ndarray, value: float) -> None:
        img[mask] = value

    head = a.head.inside(x, y, z)
    paint(head, T1["fat"])
    paint(a.head.grown(-5).inside(x, y, z), T1["soft"])
    paint(a.brain.grown(8).inside(x, y, z) & head, T1["bone"])
    paint(a.brain.grown(2).inside(x, y, z), T1["csf"])
    brain = a.brain.inside(x, y, z)
    wm = Ellipsoid(a.brain.centre, tuple(s * 0.8 for s in a.brain.semi)).inside(x, y, z)  # type: ignore[arg-type]
    wm &= texture < 1.0  # irregular grey/white boundary
    paint(brain, T1["gm"])
    paint(brain & wm, T1["wm"])
    paint(a.ventricle_l.inside(x, y, z) | a.ventricle_l.mirrored().inside(x, y, z), T1["csf"])
    tumour = a.tumour.inside(x, y, z) & brain
    paint(tumour, T1["tumour_rim"])
    paint(a.tumour.grown(-2.5).inside(x, y, z) & brain, T1["tumour"])
    paint(a.skull_base.inside(x, y, z), T1["bone"])
    for side in (a.orbit_fat_l, a.orbit_fat_l.mirrored()):
        paint(side.inside(x, y, z), T1["orbital_fat"])

    structures = a.structures()
    masks = {name: shape_.inside(x, y, z) for name, shape_ in structures.items()}
    paint(masks["Brainstem"], T1["brainstem"])
    paint(masks["Pituitary"], T1["pituitary"])
    paint(masks["OpticNrv_L"] | masks["OpticNrv_R"], T1["nerve"])
    paint(masks["OpticChiasm"], T1["chiasm"])
    for side in ("L", "R"):
        eye = structures[f"Eye_{side}"]
        paint(masks[f"Eye_{side}"], T1["sclera"])
        paint(eye.grown(-1.5).inside(x, y, z), T1["vitreous"])  # type: ignore[union-attr]
        paint(masks[f"Lens_{side}"], T1["lens"])
        paint(masks[f"Cochlea_{side}"], T1["cochlea"])
    img *= 1.0 + 0.06 * smooth_noise(shape, rng, 10)  # tissue heterogeneity
    return img, masks
