"""Procedural adult abdominal anatomy in Hounsfield units for the abdomen-CT phantom (no image I/O).

The body is described in a canonical frame in mm, ``(x, y, z)`` = (patient left, posterior, superior) as
in LPS, with ``x = y = 0`` on the body axis and ``z = 0`` at about the L1 vertebra. Everything is placed
relative to the *cavity* (inside the abdominal wall, half-width ``cw``, half-depth ``cd``) and the spine,
so organs stay inside the body whatever the habitus. Tissues are painted in order (later on top); each
layer may say which target structure its voxels belong to, so the target masks are exactly what the
image shows (a vein painted over the pancreas is not pancreas).

Contrast is realistic and modest (seed 003's spleen, pancreas and heart): one enhancement level per case
(0 = unenhanced, 1 = portal-venous) moves every organ along its own ``native + gain * e`` line, so the
spleen is darker than the liver in some cases and brighter in others, the pancreas sits among bowel loops
and the duodenum of the same HU, and only shape, texture and position tell the organs apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from clinseg.phantoms._head_anatomy import _n
from clinseg.phantoms._paint import layer_coverage
from clinseg.phantoms._shapes import (
    Ellipsoid,
    Floored,
    Intersection,
    PoseGrid,
    Tube,
    Union,
    frame_along,
    rotation_matrix,
)

Vec = tuple[float, float, float]

#: Target structures (label order): seed 003's spleen, pancreas and heart, plus both kidneys.
STRUCTURES: tuple[str, ...] = ("Spleen", "Pancreas", "Heart", "Kidney_L", "Kidney_R")

#: Hounsfield units per tissue: ``(unenhanced, gain at full portal-venous enhancement)``.
HU: dict[str, tuple[float, float]] = {
    # air, gas and fat
    "air": (-1000.0, 0.0), "lung": (-860.0, 0.0), "gas": (-950.0, 0.0), "fat": (-100.0, 0.0),
    "sinus_fat": (-80.0, 0.0), "stool": (-30.0, 0.0),
    # water and soft tissue that does not count as a target
    "fluid": (12.0, 0.0), "csf": (12.0, 0.0), "skin": (35.0, 0.0), "muscle": (50.0, 10.0),
    "bowel": (35.0, 45.0), "gut_wall": (40.0, 50.0), "liver": (58.0, 50.0),
    # bone, vessels (arterial blood enhances most)
    "disc": (85.0, 0.0), "bone": (700.0, 0.0), "rib": (600.0, 0.0), "artery": (45.0, 200.0), "vein": (42.0, 140.0),
    # the targets
    "kidney": (32.0, 150.0), "pancreas": (44.0, 55.0), "spleen": (48.0, 70.0), "myocardium": (45.0, 70.0),
    "blood": (42.0, 170.0),
}

#: Texture patterns a layer can be restricted to (made by ``abdomen_ct.textures``).
TEXTURES: tuple[str, ...] = ("loops", "lumen", "bowel_gas", "colon_gas")
_FAR = 1.0e4


@dataclass(frozen=True)
class Layer:
    """Paint ``tissue`` where ``shape``'s signed distance is below ``grow`` mm.

    ``label`` is the target structure the painted voxels belong to (None: background); ``texture``
    restricts painting to where that pattern is on (bowel loops, gas pockets).
    """

    tissue: str
    shape: object
    grow: float = 0.0
    label: str | None = None
    texture: str | None = None


@dataclass(frozen=True)
class AbdomenModel:
    """One patient: tissue layers in painting order, HU per tissue and the enhancement level in [0, 1]."""

    layers: tuple[Layer, ...]
    hu: dict[str, float]
    enhancement: float


@dataclass(frozen=True)
class _HalfSpace:
    """Points with ``normal . (p - point) < 0`` (``normal`` of unit length)."""

    point: Vec
    normal: Vec

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        n, p = self.normal, self.point
        return n[0] * (x - p[0]) + n[1] * (y - p[1]) + n[2] * (z - p[2])

    def bound(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.point, dtype=float), _FAR


@dataclass(frozen=True)
class _Carved:
    """``shape`` with ``hole`` removed (the splenic hilum)."""

    shape: object
    hole: object

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.shape.sd(x, y, z), -self.hole.sd(x, y, z))  # type: ignore[attr-defined]

    def bound(self) -> tuple[np.ndarray, float]:
        return self.shape.bound()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Slabs:
    """Axial slabs ``2 * half`` mm thick every ``period`` mm, one centred at ``z = phase`` (discs)."""

    period: float
    phase: float
    half: float

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        m = np.mod(z - self.phase, self.period)
        return np.minimum(m, self.period - m) - self.half

    def bound(self) -> tuple[np.ndarray, float]:
        return np.zeros(3), _FAR


@dataclass(frozen=True)
class _RibCage:
    """Round bars ``depth`` mm under the surface of ``body``, every ``period`` mm, descending anteriorly.

    A rib follows ``z - slope * y = const`` (lower in front), exists above the costal margin
    ``z > margin - 0.4 y`` and not across the anterior midline (``|x| < 25`` mm in front).
    """

    body: Ellipsoid
    depth: float
    radius: float
    period: float
    phase: float
    slope: float
    margin: float

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        shell = self.body.sd(x, y, z) + self.depth
        m = np.mod(z - self.slope * y - self.phase, self.period)
        band = np.minimum(m, self.period - m) * (1.0 / np.sqrt(1.0 + self.slope**2))
        bars = np.sqrt(shell * shell + band * band) - self.radius
        below_margin = (self.margin - 0.4 * y) - z
        front = np.where(y < 0, 25.0 - np.abs(x), -_FAR)
        return np.maximum(np.maximum(bars, below_margin), front)

    def bound(self) -> tuple[np.ndarray, float]:
        return np.zeros(3), _FAR


def _tube(points: tuple[Vec, ...], radii: tuple[float, ...], piece_mm: float = 70.0) -> Union:
    """A :class:`Tube` as a union of short pieces (same shape), each evaluated only on its own block."""
    parts = []
    for p0, p1, r0, r1 in zip(points, points[1:], radii, radii[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(np.subtract(p1, p0)) / piece_mm)))
        for k in range(n):
            a, b = k / n, (k + 1) / n
            ends = tuple(tuple(float(u + t * (v - u)) for u, v in zip(p0, p1)) for t in (a, b))
            parts.append(Tube(ends, (r0 + a * (r1 - r0), r0 + b * (r1 - r0))))  # type: ignore[arg-type]
    return Union(tuple(parts))


def _dome(zd: float, cw: float, cd: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Lung floor ``z(x, y)``: a dome per hemidiaphragm (left 10 mm lower), high over the mediastinum."""

    def floor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r2 = (np.abs(x) - 0.5 * cw) ** 2 + (y - 0.15 * cd) ** 2
        return zd - 0.0035 * r2 - 10.0 * (x > 0).astype(np.float32) + 90.0 * np.exp(-((x / 35.0) ** 2))

    return floor


def sample_abdomen(rng: np.random.Generator) -> AbdomenModel:
    """Draw one patient: habitus, organ sizes/positions/orientations, diaphragm level, enhancement, HU.

    Returns
    -------
    AbdomenModel
        Shapes in the canonical frame (mm) and HU per tissue for this patient.
    """

    def j(sd: float) -> float:
        return float(_n(rng, sd))

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    def at(*p: float) -> Vec:
        return tuple(float(v) for v in p)  # type: ignore[return-value]

    cw = u(100.0, 122.0)  # cavity half-width (inside the abdominal wall), mm
    cd = cw * u(0.70, 0.80)
    fat = u(8.0, min(32.0, 146.0 - 12.0 - cw))  # subcutaneous fat
    wall = 12.0 + j(1.5)  # skin and abdominal wall muscles
    body = Ellipsoid((0.0, 0.0, 0.0), (cw + fat + wall, cd + fat + wall, 700.0))
    cavity = Ellipsoid((0.0, 0.0, 0.0), (cw, cd, 700.0))
    yv = cd - 45.0 + j(3.0)  # vertebral body centre
    dz = j(6.0)  # breath-hold level: moves the diaphragm, heart, liver, spleen and stomach together

    # --- spine, back muscles, ribs ----------------------------------------------------------------
    period, phase = u(33.0, 38.0), u(0.0, 38.0)
    vertebra = Ellipsoid(at(0, yv, 0), (21.0, 17.0, 700.0))
    discs = Intersection(_Slabs(period, phase, 4.0), vertebra)
    arch = Ellipsoid(at(0, yv + 27, 0), (17.0, 13.0, 700.0))
    canal = Ellipsoid(at(0, yv + 27, 0), (9.0, 7.5, 700.0))
    spinous = Intersection(_Slabs(period, phase + period / 2, 0.3 * period), Ellipsoid(at(0, yv + 46, 0), (5.0, 13.0, 700.0)))
    back = Union(tuple(Ellipsoid(at(s * 40, yv + 40, 0), (26.0, 19.0, 700.0)) for s in (-1, 1)))
    psoas = Union(tuple(_tube((at(s * 26, yv - 2, 25), at(s * 40, yv - 8, -50), at(s * 58, yv - 22, -140)),
                             (5.0, 17.0, 21.0)) for s in (-1, 1)))
    ribs = _RibCage(body, fat + wall - 5.0, 4.5 + j(0.4), u(30.0, 36.0), u(0.0, 36.0), 0.5, dz)
    lungs = Floored(Intersection(Ellipsoid(at(0, 0, 150 + dz), (1.1 * cw, 1.1 * cd, 130.0)), cavity),
                    _dome(85.0 + dz, cw, cd))

    # --- vessels ----------------------------------------------------------------------------------
    ax = 0.08 * cw
    aorta = Union((_tube((at(ax, yv - 28, 160), at(ax, yv - 28, -85)), (11.0 + j(1.0),) * 2),
                   _tube((at(ax, yv - 28, -85), at(-0.3 * cw, yv - 20, -150)), (7.0, 7.0)),
                   _tube((at(ax, yv - 28, -85), at(0.3 * cw, yv - 20, -150)), (7.0, 7.0))))
    ivc = _tube((at(-0.2 * cw, yv - 30, -150), at(-0.2 * cw, yv - 32, 60 + dz), at(-0.1 * cw, yv - 45, 125 + dz)),
               (11.0, 12.0, 13.0))

    # --- kidneys (hilum faces antero-medially, upper pole medial and posterior) ---------------------
    def kidney(s: int) -> tuple[Ellipsoid, Ellipsoid]:
        c = at(s * (0.53 * cw + j(3.0)), yv + 6 + j(4.0), (6.0 if s > 0 else -6.0) + j(7.0))
        frame = frame_along((-s * 0.25 + j(0.08), 0.25 + j(0.08), 1.0))
        size = 1.0 + j(0.06)
        shape = Ellipsoid(c, (54.0 * size, 18.0 * size, 27.0 * size), frame)
        sinus = Ellipsoid(at(c[0] - s * 15 * size, c[1] - 6 * size, c[2]), (22.0 * size, 8.0, 9.0), frame)
        return shape, sinus

    kidney_l, sinus_l = kidney(1)
    kidney_r, sinus_r = kidney(-1)

    # --- liver, gallbladder, stomach, bowel ---------------------------------------------------------
    ls = 1.0 + j(0.07)
    liver = Union((
        Ellipsoid(at(-0.48 * cw + j(4.0), -0.05 * cd + j(4.0), 62 + dz + j(5.0)), (0.52 * cw * ls, 0.78 * cd * ls, 62.0 * ls),
                  rotation_matrix(0.0, 0.2 + j(0.08), j(0.08))),
        Ellipsoid(at(0.05 * cw, -0.5 * cd, 80 + dz), (0.45 * cw * ls, 0.3 * cd * ls, 35.0 * ls), rotation_matrix(0.0, 0.0, -0.3)),
    ))
    gallbladder = Ellipsoid(at(-0.28 * cw + j(5.0), -0.55 * cd, 25 + dz + j(5.0)), (12.0, 13.0, 30.0 * (1 + j(0.15))),
                            frame_along((0.3, -0.4, 1.0)))
    sc = at(0.38 * cw + j(5.0), -0.3 * cd + j(5.0), 62 + dz + j(5.0))
    stomach = Ellipsoid(sc, (38.0 + j(4.0), 28.0 + j(3.0), 48.0 + j(5.0)), frame_along((-0.3, -0.2, 1.0)))
    gas_level = _HalfSpace(at(0, sc[1] - u(-0.2, 0.8) * 28.0, 0), (0.0, 1.0, 0.0))  # gas rises anteriorly
    small_bowel = Ellipsoid(at(0, -0.3 * cd, -75), (0.75 * cw, 0.62 * cd, 85.0))
    colon = _tube((at(-0.62 * cw, 0.05 * cd, -140), at(-0.66 * cw, 0.0, -40), at(-0.6 * cw, -0.35 * cd, 5),
                  at(-0.1 * cw, -0.72 * cd, -5 + j(10.0)), at(0.45 * cw, -0.55 * cd, 20), at(0.66 * cw, -0.08 * cd, 32),
                  at(0.7 * cw, 0.1 * cd, -60), at(0.6 * cw, 0.0, -140)),
                 (22.0, 20.0, 18.0, 17.0, 17.0, 16.0, 15.0, 15.0))

    # --- pancreas along the splenic vein, duodenum, mesenteric vessels (seed 003: the pancreas) -------
    shift = np.array([j(4.0), j(4.0), j(5.0)])
    pts = [np.add(p, shift) + [j(3.0), j(3.0), j(3.0)] for p in (
        (0.58 * cw, yv - 14, 40 + 0.5 * dz), (0.2 * cw, yv - 50, 24), (-0.04 * cw, yv - 60, 16),
        (-0.24 * cw, yv - 50, 4), (-0.16 * cw, yv - 38, -10))]
    ps = 1.0 + j(0.07)
    pancreas = _tube(tuple(at(*p) for p in pts), tuple(r * ps for r in (10.0, 13.0, 12.0, 17.0, 12.0)))
    splenic_vein = Union((_tube(tuple(at(*(p + [0, 10 * ps + 2, 0])) for p in pts[:3]), (4.5, 4.5, 5.0)),
                          _tube((at(*(pts[2] + [0, 10 * ps + 2, 0])), at(-0.3 * cw, yv - 50, 45 + dz)), (6.5, 6.5))))
    sma = _tube((at(ax, yv - 38, 12), at(0.06 * cw, yv - 58, -20), at(0.05 * cw, yv - 65, -90)), (4.0, 4.0, 3.5))
    smv = _tube((at(*(pts[2] + [0, -2, -12])), at(-0.04 * cw, yv - 70, -90)), (5.5, 5.0))
    duodenum = _tube((at(-0.15 * cw, -0.55 * cd, 38 + 0.5 * dz), at(-0.4 * cw, yv - 62, 20), at(-0.44 * cw, yv - 48, -5),
                     at(-0.33 * cw, yv - 38, -26), at(0.0, yv - 40, -32), at(0.15 * cw, yv - 45, -22)), (10.0,) * 6)

    # --- spleen: crescent along the 10th rib, left posterior (seed 003: the spleen) ---------------------
    sx, sy = 0.76 * cw + j(3.0), 0.36 * cd + j(4.0)
    radial = float(np.arctan2(sy, sx)) + j(0.1)
    ss = 1.0 + j(0.06)
    sc3 = at(sx, sy, 64 + dz + j(5.0))
    spleen_axes = (20.0 * ss, 40.0 * ss, 56.0 * ss)
    hole = at(sc3[0] - np.cos(radial) * 36 * ss, sc3[1] - np.sin(radial) * 36 * ss, sc3[2])
    spleen = _Carved(Ellipsoid(sc3, spleen_axes, rotation_matrix(-0.4 + j(0.08), 0.0, radial)),
                     Ellipsoid(hole, (24.0 * ss, 24.0 * ss, 34.0 * ss)))

    # --- heart on the diaphragm at the cranial end of the field of view (seed 003: the heart) ---------
    hc = np.array([0.1 * cw + j(5.0), -0.3 * cd + j(5.0), 122 + dz + j(4.0)])
    frame = frame_along((0.55 + j(0.1), -0.45 + j(0.1), -0.7))
    hs = 1.0 + j(0.07)
    heart = Ellipsoid(at(*hc), (66.0 * hs, 52.0 * hs, 56.0 * hs), frame)

    def chamber(local: Vec, axes: Vec) -> Ellipsoid:
        return Ellipsoid(at(*(hc + frame @ np.multiply(local, hs))), tuple(a * hs for a in axes), frame)  # type: ignore[arg-type]

    chambers = Union((chamber((12, 4, 8), (34, 18, 18)), chamber((0, -20, -14), (30, 11, 20)),
                      chamber((-38, 0, 0), (20, 26, 26))))

    layers = (
        Layer("skin", body),
        Layer("fat", body, -2.0),
        Layer("muscle", body, -(fat + 2.0)),
        Layer("fat", body, -(fat + wall)),
        Layer("bowel", small_bowel, texture="loops"),
        Layer("fluid", small_bowel, texture="lumen"),
        Layer("gas", small_bowel, texture="bowel_gas"),
        Layer("lung", lungs),
        Layer("muscle", back),
        Layer("muscle", psoas),
        Layer("rib", ribs),
        Layer("bone", vertebra),
        Layer("disc", discs),
        Layer("bone", arch),
        Layer("csf", canal),
        Layer("bone", spinous),
        Layer("gut_wall", colon),
        Layer("stool", colon, -3.0),
        Layer("gas", colon, -3.0, texture="colon_gas"),
        Layer("gut_wall", stomach),
        Layer("fluid", stomach, -4.0),
        Layer("gas", Intersection(stomach, gas_level, -4.0)),
        Layer("fat", pancreas, 5.0),
        Layer("gut_wall", duodenum),
        Layer("fluid", duodenum, -3.0),
        Layer("liver", liver),
        Layer("fluid", gallbladder),
        Layer("artery", aorta),
        Layer("vein", ivc),
        Layer("artery", sma),
        Layer("vein", smv),
        Layer("kidney", kidney_l, label="Kidney_L"),
        Layer("kidney", kidney_r, label="Kidney_R"),
        Layer("sinus_fat", sinus_l),
        Layer("sinus_fat", sinus_r),
        Layer("pancreas", pancreas, label="Pancreas"),
        Layer("vein", splenic_vein),
        Layer("spleen", spleen, label="Spleen"),
        Layer("fat", heart, 4.0 + j(1.0)),
        Layer("myocardium", heart, label="Heart"),
        Layer("blood", chambers, label="Heart"),
    )
    e = u(0.0, 1.0)
    hu = {name: native + gain * e + (j(5.0) if gain or name in ("fat", "fluid") else 0.0)
          for name, (native, gain) in HU.items()}
    return AbdomenModel(layers, hu, e)


def render_abdomen(
    model: AbdomenModel, grid: PoseGrid, patterns: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paint the tissues (HU) and cut the target masks on ``grid``.

    Each layer blends its HU in with a one-voxel partial-volume ramp; a voxel belongs to the structure of
    the last layer that covers its centre, so masks never overlap and match what the image shows.

    Parameters
    ----------
    model : the patient (canonical frame).
    grid : the posed output grid.
    patterns : texture name (:data:`TEXTURES`) -> ``(Z, Y, X)`` weights in [0, 1] on the grid.

    Returns
    -------
    image : ``(Z, Y, X)`` float32 noise-free HU.
    masks : structure name -> ``(Z, Y, X)`` bool mask (may be empty if an organ left the field of view).
    """
    image = np.full(grid.shape, model.hu["air"], dtype=np.float32)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    index = {name: i + 1 for i, name in enumerate(STRUCTURES)}
    for layer in model.layers:
        hit = layer_coverage(grid, layer.shape, layer.grow)
        if hit is None:
            continue
        block, alpha = hit
        if layer.texture is not None:
            alpha *= patterns[layer.texture][block]
        if not alpha.any():
            continue
        region = image[block]
        region += alpha * (np.float32(model.hu[layer.tissue]) - region)
        labels[block][alpha >= 0.5] = index.get(layer.label, 0)  # type: ignore[arg-type]
    return image, {name: labels == i for name, i in index.items()}
