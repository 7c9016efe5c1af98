"""Procedural adult lower-leg anatomy in Hounsfield units for the ct-bone phantom (no image I/O).

A leg is described in the canonical frame of a *left* leg in mm, ``(x, y, z)`` = (lateral, posterior,
proximal), like LPS for the left leg, with ``x = y = 0`` on the leg axis and ``z = 0`` at the centre of the
field of view; a right leg is the mirror image (the pose mirrors the grid). Every structure runs along
``z``: a :class:`Section` is a star-shaped cross-section (mean radius plus three harmonics) around a
centreline, both tabulated every 5 mm of ``z`` and interpolated, so bones bend, taper and flare towards
the knee and ankle. The level along the shin, ``u`` (0 ankle joint, 1 knee joint), sets the calf bulk,
the metaphyseal flare with thin cortex and cancellous bone, the fibular head and the lateral malleolus.

Shapes here answer ``sd(x, y, z)`` on an in-plane block ``x, y`` of shape ``(ny, nx)`` (mm) and a column
of levels ``z`` of shape ``(nz,)`` (mm), returning ``(nz, ny, nx)``: the pose of a leg on the table is a
rotation about ``z`` (the axis tilts through the centrelines), so ``z`` separates and each shape is
evaluated only on the in-plane block its ``box()`` can reach.

The tibia (anteromedial, triangular with its crest anterior) and the fibula (posterolateral, 11-14 mm,
seed 002 Figure 3) are cortical shells (1250-1750 HU) around marrow (0-90 HU), joined by the interosseous
membrane, among the anterior, lateral and posterior muscle compartments (44-54 HU) separated by fat
septa, neurovascular bundles, subcutaneous fat (-100 HU) and skin. The contralateral leg, mirrored beside
the medial side and unlabelled, is the optional distractor: its bones look exactly like the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clinseg.phantoms._abdomen_anatomy import Layer
from clinseg.phantoms._head_anatomy import _n

#: Structures the renderer delineates, in label order: the target (seed 002's fibula) and the tibia.
STRUCTURES: tuple[str, ...] = ("Fibula", "Tibia")
#: Canonical levels (mm) at which centrelines and radii are tabulated: the field of view ±100 mm, plus margin.
Z_KNOTS = np.arange(-140.0, 140.1, 5.0)


@dataclass(frozen=True)
class Section:
    """A structure along ``z``: radius ``r (1 + m(θ))`` around the centre ``(cx, cy)``, all tabulated at ``z``.

    ``harmonics`` are ``a1, b1, a2, b2, a3, b3`` of ``m(θ) = Σ a_k cos kθ' + b_k sin kθ'`` with ``θ'``
    measured from the direction ``angle`` (rad): ``a3 > 0`` makes a triangle with a corner at ``angle``,
    ``a2 > 0`` elongates the section along ``angle``. A negative radius means "absent at this level".
    """

    z: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    r: tuple[float, ...]
    harmonics: tuple[float, ...] = (0.0,) * 6
    angle: float = 0.0

    def box(self) -> tuple[float, float, float, float]:
        """``(x_min, x_max, y_min, y_max)`` mm that contains the structure at every level."""
        reach = np.maximum(np.asarray(self.r), 0.0) * (1.0 + float(np.abs(self.harmonics).sum()))
        cx, cy = np.asarray(self.cx), np.asarray(self.cy)
        return float((cx - reach).min()), float((cx + reach).max()), float((cy - reach).min()), float((cy + reach).max())

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, r = (np.interp(z, self.z, v).astype(np.float32)[:, None, None] for v in (self.cx, self.cy, self.r))
        dx, dy = x[None] - cx, y[None] - cy
        rho = np.sqrt(dx * dx + dy * dy)
        if not any(self.harmonics):
            return rho - r
        c, s = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        inv = 1.0 / np.maximum(rho, 1e-3)
        ux, uy = (dx * c + dy * s) * inv, (dy * c - dx * s) * inv
        a1, b1, a2, b2, a3, b3 = (np.float32(h) for h in self.harmonics)
        m = (a1 * ux + b1 * uy + a2 * (ux * ux - uy * uy) + b2 * 2 * ux * uy
             + a3 * ux * (ux * ux - 3 * uy * uy) + b3 * uy * (3 * ux * ux - uy * uy))
        return rho - r * (1.0 + m)


@dataclass(frozen=True)
class Band:
    """A sheet of half-thickness ``half`` mm spanning the segment ``a -> b`` at every level (tabulated at ``z``)."""

    z: tuple[float, ...]
    a: tuple[tuple[float, ...], tuple[float, ...]]
    b: tuple[tuple[float, ...], tuple[float, ...]]
    half: float

    def box(self) -> tuple[float, float, float, float]:
        xs, ys = np.concatenate([self.a[0], self.b[0]]), np.concatenate([self.a[1], self.b[1]])
        return float(xs.min() - self.half), float(xs.max() + self.half), float(ys.min() - self.half), float(ys.max() + self.half)

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        ax, ay, bx, by = (np.interp(z, self.z, v).astype(np.float32)[:, None, None] for v in (*self.a, *self.b))
        dx, dy = bx - ax, by - ay
        px, py = x[None] - ax, y[None] - ay
        t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
        return np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2) - self.half


@dataclass(frozen=True)
class Merged:
    """Union of shapes (minimum of their distances)."""

    parts: tuple[object, ...]

    def box(self) -> tuple[float, float, float, float]:
        boxes = np.array([p.box() for p in self.parts])  # type: ignore[attr-defined]
        return float(boxes[:, 0].min()), float(boxes[:, 1].max()), float(boxes[:, 2].min()), float(boxes[:, 3].max())

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = self.parts[0].sd(x, y, z)  # type: ignore[attr-defined]
        for part in self.parts[1:]:
            out = np.minimum(out, part.sd(x, y, z))  # type: ignore[attr-defined]
        return out


@dataclass(frozen=True)
class Inside:
    """``shape`` clipped to ``within`` shrunk by ``inset`` mm (a muscle compartment inside the fascia)."""

    shape: object
    within: object
    inset: float = 0.0

    def box(self) -> tuple[float, float, float, float]:
        return self.shape.box()  # type: ignore[attr-defined]

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.shape.sd(x, y, z), self.within.sd(x, y, z) + self.inset)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Placed:
    """``shape`` mirrored in ``x`` (when ``mirror``) and moved by ``offset`` mm: the contralateral leg."""

    shape: object
    offset: tuple[float, float, float]
    mirror: bool = True

    def box(self) -> tuple[float, float, float, float]:
        x0, x1, y0, y1 = self.shape.box()  # type: ignore[attr-defined]
        ox, oy = self.offset[0], self.offset[1]
        xs = (ox - x1, ox - x0) if self.mirror else (ox + x0, ox + x1)
        return xs[0], xs[1], y0 + oy, y1 + oy

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        sign = -1.0 if self.mirror else 1.0
        return self.shape.sd(sign * (x - self.offset[0]), y - self.offset[1], z - self.offset[2])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LegModel:
    """One patient: tissue layers in painting order (contralateral leg first) and HU per tissue."""

    layers: tuple[Layer, ...]
    hu: dict[str, float]


def _tab(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _leg(rng: np.random.Generator, size: float, level: float, shin_mm: float, labelled: bool) -> tuple[list[Layer], float]:
    """Layers of one left leg (target structures labelled or not) and its half-width (mm) in the field of view."""

    def j(sd: float) -> float:
        return float(_n(rng, sd))

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    z = Z_KNOTS
    t = _tab(z)
    lv = level + z / shin_mm  # level along the shin: 0 ankle joint, 1 knee joint
    calf = np.exp(-(((lv - 0.72) / 0.32) ** 2))
    bend = 1.0 - (z / 140.0) ** 2  # bowing, largest mid field of view
    tilt_x, tilt_y = j(3.0) * z / 100.0, j(3.0) * z / 100.0  # leg axis a few degrees off the scanner's z
    sb = 1.0 + 0.5 * (size - 1.0) + j(0.04)  # bones scale less than soft tissue

    def wave(amp: float) -> np.ndarray:  # gently varying diameter
        return 1.0 + amp * np.sin(2 * np.pi * z / u(70.0, 140.0) + u(0.0, 2 * np.pi))

    # --- outline: a round front (over the tibia) and the calf bulging posteriorly ------------------------
    front = Section(t, _tab(tilt_x), _tab(tilt_y - 8.0 * size), _tab(size * (34.0 + 8.0 * calf) * wave(0.02)),
                    (0.0, 0.0, j(0.04), 0.0, 0.0, 0.0))
    calf_r = size * (26.0 + 24.0 * calf) * u(0.9, 1.1)
    calf_x, calf_y = tilt_x + j(2.0), tilt_y + size * (8.0 + 14.0 * calf)
    calf_h = (0.0, 0.0, 0.1 + j(0.03), 0.0, 0.0, 0.0)
    leg = Merged((front, Section(t, _tab(calf_x), _tab(calf_y), _tab(calf_r), calf_h)))
    fat = size * u(3.0, 12.0)  # subcutaneous fat, mm
    in_fov = np.abs(z) <= 100.0
    half_width = float(max((size * (34.0 + 8.0 * calf) * 1.04)[in_fov].max(), (calf_r * 1.13)[in_fov].max()))

    # --- tibia: anteromedial, triangular (crest anterior, interosseous border posterolateral) -----------
    flare_t = 0.75 * np.exp(-(((1.0 - lv) / 0.13) ** 2)) + 0.55 * np.exp(-((lv / 0.11) ** 2))
    rt = sb * u(11.5, 13.5) * (1.0 + flare_t) * wave(0.04)
    tt = sb * u(4.5, 6.5) * (1.0 - 0.65 * np.clip(flare_t / 0.75, 0.0, 1.0))  # thin cortex at the metaphyses
    xt = tilt_x - 12.0 * size + j(3.0) + j(2.5) * bend
    yt = tilt_y - 22.0 * size + j(2.0) + j(2.5) * bend
    h_t = (0.0, 0.0, 0.06 + j(0.02), 0.0, 0.14 + j(0.03), 0.0)
    a_t = -np.pi / 2 + j(0.12)

    # --- fibula: posterolateral, 11-14 mm, with its head and the lateral malleolus at the ends ----------
    flare_f = 0.8 * np.exp(-(((1.0 - lv) / 0.06) ** 2)) + 0.6 * np.exp(-((lv / 0.08) ** 2))
    rf = sb * u(5.4, 7.0) * (1.0 + flare_f) * wave(0.06)
    tf = rf * u(0.32, 0.42) * (1.0 - 0.5 * np.clip(flare_f / 0.6, 0.0, 1.0))
    h_f = (0.0, 0.0, j(0.05), 0.0, 0.1 + j(0.03), 0.0)
    a_f = u(0.0, 2 * np.pi)
    xf = xt + sb * (29.0 + j(1.5)) + j(2.5) * bend
    yf = yt + sb * (17.0 + j(2.0)) + 8.0 * (lv - 0.5) + j(2.5) * bend
    # keep the bones >= 3 mm apart at every level (they touch only at the joints, outside the field of view)
    dist = np.hypot(xf - xt, yf - yt)
    need = rt * (1.0 + np.abs(h_t).sum()) + rf * (1.0 + np.abs(h_f).sum()) + 3.0
    push = np.maximum(1.0, need / dist)
    xf, yf = xt + (xf - xt) * push, yt + (yf - yt) * push

    def bone(r: np.ndarray, x: np.ndarray, y: np.ndarray, h: tuple[float, ...], a: float) -> Section:
        return Section(t, _tab(x), _tab(y), _tab(r), h, a)

    def cancellous(inner: np.ndarray, flare: np.ndarray, full: float) -> np.ndarray:
        grow = np.clip((flare - 0.15) / (full - 0.15), 0.0, 1.0)
        return np.where(grow > 0, inner * grow, -10.0)

    tibia, fibula = bone(rt, xt, yt, h_t, a_t), bone(rf, xf, yf, h_f, a_f)
    unit_x, unit_y = (xf - xt) / np.hypot(xf - xt, yf - yt), (yf - yt) / np.hypot(xf - xt, yf - yt)
    membrane = Band(t, (_tab(xt + 0.8 * rt * unit_x), _tab(yt + 0.8 * rt * unit_y)), (_tab(xf), _tab(yf)), 0.8)

    # --- muscle compartments (fat septa around each), neurovascular bundles ------------------------------
    mx, my = (xt + xf) / 2, (yt + yf) / 2
    anterior = Section(t, _tab(mx + 3.0 * size), _tab(my - 15.0 * size), _tab(size * (10.0 + 4.0 * calf) * u(0.9, 1.1)),
                       (0.0, 0.0, 0.15, 0.0, 0.0, 0.0), np.pi / 2 + j(0.2))
    lateral = Section(t, _tab(xf + 9.0 * size), _tab(yf - 3.0 * size), _tab(size * (8.0 + 2.0 * calf) * u(0.9, 1.1)),
                      (0.0, 0.0, 0.15, 0.0, 0.0, 0.0), np.pi / 2 + j(0.2))
    superficial = Section(t, _tab(calf_x), _tab(calf_y + 6.0 * size), _tab(0.8 * calf_r), calf_h)
    fascia = fat + 2.0
    bundles = Merged(tuple(Section(t, _tab(bx), _tab(by), _tab(np.full_like(z, 1.8))) for bx, by in (
        (mx + j(1.5), my - 5.0 + j(1.5)), (xt - 2.0 + j(2.0), yt + 18.0 * sb + j(2.0)), (xf - 8.0 + j(1.5), yf + 8.0 + j(1.5)))))

    target = {"Fibula": "Fibula", "Tibia": "Tibia"} if labelled else {"Fibula": None, "Tibia": None}
    layers = [
        Layer("skin", leg),
        Layer("fat", leg, -2.0),
        Layer("muscle", leg, -fascia),
    ]
    for tissue, compartment in (("muscle_ant", anterior), ("muscle_lat", lateral), ("muscle_sup", superficial)):
        clipped = Inside(compartment, leg, fascia)
        layers += [Layer("septum", clipped, 1.2), Layer(tissue, clipped)]
    layers += [
        Layer("fat", bundles, 1.6),
        Layer("vessel", bundles),
        Layer("membrane", membrane),
        Layer("cortex", tibia, label=target["Tibia"]),
        Layer("marrow", bone(rt - tt, xt, yt, h_t, a_t), label=target["Tibia"]),
        Layer("cancellous", bone(cancellous(rt - tt, flare_t, 0.6), xt, yt, h_t, a_t), label=target["Tibia"]),
        Layer("cortex", fibula, label=target["Fibula"]),
        Layer("marrow", bone(rf - tf, xf, yf, h_f, a_f), label=target["Fibula"]),
        Layer("cancellous", bone(cancellous(rf - tf, flare_f, 0.5), xf, yf, h_f, a_f), label=target["Fibula"]),
    ]
    return layers, half_width


def sample_legs(rng: np.random.Generator, second_leg: bool = True) -> LegModel:
    """Draw one patient: leg size, imaged level and shin length, both bones, soft tissue and HU.

    The target leg is drawn first, so switching ``second_leg`` off leaves it unchanged. The contralateral
    leg (same patient, mirrored, unlabelled) lies beside the medial side, from 8 mm pressed into the
    target leg to 10 mm apart, so part of it (often a tibia) shows at the edge of the field of view.

    Returns
    -------
    LegModel
        Shapes in the canonical left-leg frame (mm) and HU per tissue for this patient.
    """
    size, level, shin = float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.38, 0.6)), float(rng.uniform(330.0, 410.0))
    layers, width = _leg(rng, size, level, shin, labelled=True)
    other, other_width = _leg(rng, size * float(rng.uniform(0.96, 1.04)), level, shin, labelled=False)
    offset = (-(width + other_width + float(rng.uniform(-8.0, 10.0))), float(_n(rng, 6.0)), float(_n(rng, 10.0)))
    if second_leg:
        layers = [Layer(layer.tissue, Placed(layer.shape, offset), layer.grow) for layer in other] + layers

    def j(sd: float) -> float:
        return float(_n(rng, sd))

    hu = {"air": -1000.0, "skin": 30.0 + j(5.0), "fat": -100.0 + j(8.0), "septum": -70.0 + j(10.0),
          "muscle": 48.0 + j(4.0), "muscle_ant": 54.0 + j(4.0), "muscle_lat": 50.0 + j(4.0), "muscle_sup": 44.0 + j(4.0),
          "vessel": 40.0 + j(5.0), "membrane": 75.0 + j(8.0), "cortex": float(rng.uniform(1250.0, 1750.0)),
          "marrow": float(rng.uniform(0.0, 90.0)), "cancellous": float(rng.uniform(180.0, 320.0))}
    return LegModel(tuple(layers), hu)


def _block(box: Sequence[float], x: np.ndarray, y: np.ndarray, pad: float) -> tuple[slice, slice] | None:
    """In-plane index block ``(y, x)`` of the grid whose canonical coordinates fall within ``box`` ± ``pad``."""
    inside = (x >= box[0] - pad) & (x <= box[1] + pad) & (y >= box[2] - pad) & (y <= box[3] + pad)
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def render_legs(model: LegModel, x: np.ndarray, y: np.ndarray, z: np.ndarray, ramp: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paint the tissues (HU) and cut the bone masks.

    Each layer blends its HU in with a partial-volume ramp ``ramp`` mm wide; a voxel belongs to the
    structure of the last layer that covers its centre, so the masks never overlap and match the image.

    Parameters
    ----------
    model : the patient (canonical left-leg frame).
    x, y : ``(Y, X)`` canonical in-plane coordinates (mm) of the grid's voxels.
    z : ``(Z,)`` canonical level (mm) of each slice.
    ramp : partial-volume width in mm (the voxel size).

    Returns
    -------
    image : ``(Z, Y, X)`` float32 noise-free HU.
    masks : :data:`STRUCTURES` name -> ``(Z, Y, X)`` bool (the labelled leg's bones only).
    """
    image = np.full((z.size, *x.shape), model.hu["air"], dtype=np.float32)
    labels = np.zeros(image.shape, dtype=np.uint8)
    index = {name: i + 1 for i, name in enumerate(STRUCTURES)}
    for layer in model.layers:
        block = _block(layer.shape.box(), x, y, max(layer.grow, 0.0) + ramp)  # type: ignore[attr-defined]
        if block is None:
            continue
        sd = layer.shape.sd(x[block], y[block], z)  # type: ignore[attr-defined]
        alpha = np.clip(0.5 - (sd - layer.grow) / ramp, 0.0, 1.0)
        region = image[:, block[0], block[1]]
        region += alpha * (np.float32(model.hu[layer.tissue]) - region)
        labels[:, block[0], block[1]][alpha >= 0.5] = index.get(layer.label, 0)  # type: ignore[arg-type]
    return image, {name: labels == i for name, i in index.items()}
