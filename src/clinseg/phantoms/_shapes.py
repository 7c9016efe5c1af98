"""Signed-distance primitives and the posed voxel grid they are drawn on (building blocks of phantoms).

Every shape lives in a *canonical* anatomical frame in mm, ``(x, y, z)`` = (patient left, posterior,
superior) as in ITK/DICOM LPS, and answers ``sd(x, y, z)``: an approximate signed distance in mm
(negative inside) evaluated on coordinate arrays of any shape. Shapes are immutable and can be mirrored
about the mid-sagittal plane ``x = 0``, which is how left/right organ pairs are made.

:class:`PoseGrid` holds, for every voxel of an output ``(Z, Y, X)`` grid, the canonical coordinates it
shows (after a rigid pose, a global scale and a smooth mirror-symmetric deformation), and evaluates a
shape only inside the sub-block that can contain it, so small organs cost little even at 1 mm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Vec = tuple[float, float, float]
_MIRROR = np.diag([-1.0, 1.0, 1.0])


def rotation_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """3x3 rotation ``Rz @ Ry @ Rx`` for angles in radians about the x, y and z axes."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return r_z @ r_y @ r_x


def frame_along(axis: Sequence[float]) -> np.ndarray:
    """A rotation whose first column is ``axis`` (normalised): local x runs along ``axis``."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    b = np.cross(helper, a)
    b /= np.linalg.norm(b)
    return np.stack([a, b, np.cross(a, b)], axis=1)


def _mirror_point(p: Sequence[float]) -> Vec:
    return (-float(p[0]), float(p[1]), float(p[2]))


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with semi-axes ``axes`` (mm) along the columns of ``rotation`` (identity: x, y, z)."""

    center: Vec
    axes: Vec
    rotation: np.ndarray | None = field(default=None, compare=False)

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = (x - self.center[0], y - self.center[1], z - self.center[2])
        if self.rotation is not None:
            r = self.rotation
            d = tuple(r[0, i] * d[0] + r[1, i] * d[1] + r[2, i] * d[2] for i in range(3))
        a = self.axes
        q2 = (d[0] / a[0]) ** 2 + (d[1] / a[1]) ** 2 + (d[2] / a[2]) ** 2
        g = np.sqrt((d[0] / a[0] ** 2) ** 2 + (d[1] / a[1] ** 2) ** 2 + (d[2] / a[2] ** 2) ** 2)
        q = np.sqrt(q2)
        # First-order distance to the surface, (q - 1) / |grad q|; exact on spheres.
        ratio = np.where(g > 1e-9, q / np.maximum(g, 1e-9), min(a))
        return (q - 1.0) * ratio

    def bound(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.center, dtype=float), float(max(self.axes))

    def mirrored(self) -> Ellipsoid:
        rot = None if self.rotation is None else _MIRROR @ self.rotation @ _MIRROR
        return Ellipsoid(_mirror_point(self.center), self.axes, rot)


@dataclass(frozen=True)
class Tube:
    """Polyline tube: round cross-section whose radius varies linearly along each segment (mm)."""

    points: tuple[Vec, ...]
    radii: tuple[float, ...]

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = None
        for (p0, p1), (r0, r1) in zip(zip(self.points, self.points[1:]), zip(self.radii, self.radii[1:])):
            d = np.subtract(p1, p0)
            length2 = float(d @ d)
            rx, ry, rz = x - p0[0], y - p0[1], z - p0[2]
            t = np.clip((rx * d[0] + ry * d[1] + rz * d[2]) / length2, 0.0, 1.0)
            dist = np.sqrt((rx - t * d[0]) ** 2 + (ry - t * d[1]) ** 2 + (rz - t * d[2]) ** 2)
            sd = dist - (r0 + t * (r1 - r0))
            out = sd if out is None else np.minimum(out, sd)
        assert out is not None
        return out

    def bound(self) -> tuple[np.ndarray, float]:
        pts = np.asarray(self.points, dtype=float)
        c = (pts.min(axis=0) + pts.max(axis=0)) / 2
        return c, float(np.linalg.norm(pts - c, axis=1).max() + max(self.radii))

    def mirrored(self) -> Tube:
        return Tube(tuple(_mirror_point(p) for p in self.points), self.radii)

    def sample(self, n: int) -> np.ndarray:
        """``(n, 3)`` points spread along the centreline (mm)."""
        pts = np.asarray(self.points, dtype=float)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        at = np.linspace(0.0, s[-1], n)
        return np.stack([np.interp(at, s, pts[:, i]) for i in range(3)], axis=1)


@dataclass(frozen=True)
class Blob:
    """Star-shaped lump: radius ``radius * (1 + m(u))`` in direction ``u``, ``m`` a low-order polynomial.

    ``coefs`` (9 floats) weight ``ux, uy, uz, ux*uy, uy*uz, ux*uz, ux²-uy², 3uz²-1, ux*uy*uz``.
    """

    center: Vec
    radius: float
    coefs: tuple[float, ...] = (0.0,) * 9

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        inv = 1.0 / np.maximum(r, 1e-6)
        ux, uy, uz = dx * inv, dy * inv, dz * inv
        basis = (ux, uy, uz, ux * uy, uy * uz, ux * uz, ux * ux - uy * uy, 3 * uz * uz - 1, ux * uy * uz)
        m = sum(c * b for c, b in zip(self.coefs, basis))
        return r - self.radius * (1.0 + m)

    def bound(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.center, dtype=float), self.radius * (1.0 + float(np.abs(self.coefs).sum()))

    def mirrored(self) -> Blob:
        flip = (-1, 1, 1, -1, 1, -1, 1, 1, -1)
        return Blob(_mirror_point(self.center), self.radius, tuple(c * f for c, f in zip(self.coefs, flip)))


@dataclass(frozen=True)
class Union:
    """Union of shapes (minimum of their distances)."""

    parts: tuple[object, ...]

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = self.parts[0].sd(x, y, z)  # type: ignore[attr-defined]
        for part in self.parts[1:]:
            out = np.minimum(out, part.sd(x, y, z))  # type: ignore[attr-defined]
        return out

    def bound(self) -> tuple[np.ndarray, float]:
        bounds = [p.bound() for p in self.parts]  # type: ignore[attr-defined]
        lo = np.min([c - r for c, r in bounds], axis=0)
        hi = np.max([c + r for c, r in bounds], axis=0)
        c = (lo + hi) / 2
        return c, float(max(np.linalg.norm(bc - c) + r for bc, r in bounds))

    def mirrored(self) -> Union:
        return Union(tuple(p.mirrored() for p in self.parts))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Intersection:
    """Intersection of ``shape`` grown by ``grow`` mm with ``within``; bounded by ``shape``."""

    shape: object
    within: object
    grow: float = 0.0

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.shape.sd(x, y, z) - self.grow, self.within.sd(x, y, z))  # type: ignore[attr-defined]

    def bound(self) -> tuple[np.ndarray, float]:
        c, r = self.shape.bound()  # type: ignore[attr-defined]
        return c, r + max(self.grow, 0.0)

    def mirrored(self) -> Intersection:
        return Intersection(self.shape.mirrored(), self.within.mirrored(), self.grow)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Floored:
    """``shape`` cut below the surface ``z = floor(x, y)`` (``floor`` must be even in ``x``)."""

    shape: object
    floor: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(compare=False)

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.shape.sd(x, y, z), self.floor(x, y) - z)  # type: ignore[attr-defined]

    def bound(self) -> tuple[np.ndarray, float]:
        return self.shape.bound()  # type: ignore[attr-defined]

    def mirrored(self) -> Floored:
        return Floored(self.shape.mirrored(), self.floor)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Folded:
    """``shape`` whose surface is pushed in by ``depth + amp * g`` mm, ``g`` a 3D sinusoid in [-1, 1].

    Used for the grey/white-matter interface and sulci: ``g = sin(kx·|x|+φ) sin(ky·y+φ) sin(kz·z+φ)``
    (even in ``x`` so both hemispheres fold alike).
    """

    shape: object
    depth: float
    amp: float
    wavelength: float = 18.0
    phase: Vec = (0.0, 0.0, 0.0)

    def pattern(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        k = 2 * np.pi / self.wavelength
        return (
            np.sin(k * np.abs(x) + self.phase[0])
            * np.sin(k * 0.93 * y + self.phase[1])
            * np.sin(k * 1.07 * z + self.phase[2])
        )

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.shape.sd(x, y, z) + self.depth + self.amp * self.pattern(x, y, z)  # type: ignore[attr-defined]

    def bound(self) -> tuple[np.ndarray, float]:
        return self.shape.bound()  # type: ignore[attr-defined]

    def mirrored(self) -> Folded:
        return Folded(self.shape.mirrored(), self.depth, self.amp, self.wavelength, self.phase)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SymmetricWarp:
    """Smooth displacement field (mm) that is mirror-symmetric about ``x = 0``.

    ``d_x`` is odd in ``x`` and ``d_y``, ``d_z`` are even, so a mirrored pair of organs stays mirrored.
    ``amps`` are the three component amplitudes (mm), ``phases`` six phases, ``wavelength`` in mm.
    """

    amps: Vec = (0.0, 0.0, 0.0)
    phases: tuple[float, ...] = (0.0,) * 6
    wavelength: float = 160.0

    @property
    def max_displacement(self) -> float:
        return float(np.abs(self.amps).sum())

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        k = 2 * np.pi / self.wavelength
        p = self.phases
        dx = self.amps[0] * np.sin(k * x) * np.cos(k * y + p[0]) * np.cos(k * z + p[1])
        dy = self.amps[1] * np.cos(k * x) * np.sin(k * y + p[2]) * np.cos(k * z + p[3])
        dz = self.amps[2] * np.cos(k * x) * np.cos(k * y + p[4]) * np.sin(k * z + p[5])
        return dx, dy, dz


class PoseGrid:
    """Canonical coordinates of every voxel of a ``(Z, Y, X)`` grid, and windowed shape evaluation.

    A voxel at world position ``w`` (mm, ``origin + index * spacing``, identity direction) shows the
    canonical point ``c = warp(R^T (w - t) / s)``: the head is scaled by ``s``, rotated by ``R`` and
    moved by ``t`` (mm), then warped by a mirror-symmetric field.

    Parameters
    ----------
    shape_zyx : grid shape ``(Z, Y, X)``.
    spacing : voxel size in mm ``(x, y, z)``.
    origin : first voxel centre in mm ``(x, y, z)``.
    rotation, translation, scale : the rigid pose and global scale.
    warp : the mirror-symmetric deformation (or None).
    """

    def __init__(
        self,
        shape_zyx: tuple[int, int, int],
        spacing: Vec,
        origin: Vec,
        rotation: np.ndarray | None = None,
        translation: Vec = (0.0, 0.0, 0.0),
        scale: float = 1.0,
        warp: SymmetricWarp | None = None,
    ) -> None:
        self.shape = tuple(int(s) for s in shape_zyx)
        self.spacing = np.asarray(spacing, dtype=float)
        self.origin = np.asarray(origin, dtype=float)
        self.rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)
        self.translation = np.asarray(translation, dtype=float)
        self.scale = float(scale)
        # Blocks reach beyond a shape's bounding sphere by the warp, one voxel and 6 mm for layers that
        # paint a grown shape (up to +4.5 mm) with a partial-volume ramp.
        self.margin = (warp.max_displacement if warp is not None else 0.0) * self.scale + float(self.spacing.max()) + 6.0
        nz, ny, nx = self.shape
        w = [self.origin[i] + self.spacing[i] * np.arange(n) - self.translation[i] for i, n in enumerate((nx, ny, nz))]
        r = self.rotation
        coords = []
        for i in range(3):
            c = (
                (r[0, i] * w[0] / self.scale)[None, None, :].astype(np.float32)
                + (r[1, i] * w[1] / self.scale)[None, :, None].astype(np.float32)
                + (r[2, i] * w[2] / self.scale)[:, None, None].astype(np.float32)
            )
            coords.append(c)
        if warp is not None:
            d = warp(*coords)
            coords = [(c + di).astype(np.float32) for c, di in zip(coords, d)]
        self.x, self.y, self.z = coords
        self._cache: dict[int, tuple[tuple[slice, slice, slice], np.ndarray, object]] = {}

    def world(self, point: Sequence[float]) -> np.ndarray:
        """World position (mm) of a canonical point, ignoring the small warp."""
        return self.scale * (self.rotation @ np.asarray(point, dtype=float)) + self.translation

    def window(self, shape: object) -> tuple[slice, slice, slice] | None:
        """Index block ``(z, y, x)`` that can contain ``shape`` (None when it misses the grid)."""
        c, r = shape.bound()  # type: ignore[attr-defined]
        centre = self.world(c)
        reach = r * self.scale + self.margin
        lo = np.floor((centre - reach - self.origin) / self.spacing).astype(int)
        hi = np.ceil((centre + reach - self.origin) / self.spacing).astype(int) + 1
        sizes = (self.shape[2], self.shape[1], self.shape[0])
        lo = np.clip(lo, 0, sizes)
        hi = np.clip(hi, 0, sizes)
        if np.any(hi <= lo):
            return None
        return (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))

    def evaluate(self, shape: object) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        """``(block, sd)``: the signed distance (mm, float32) of ``shape`` on its index block.

        The parts of a :class:`Union` are evaluated only on their own blocks (``+inf`` elsewhere), so a
        small part of a large union costs little. Results are cached per shape object.
        """
        key = id(shape)
        hit = self._cache.get(key)
        if hit is not None and hit[2] is shape:
            return hit[0], hit[1]
        block = self.window(shape)
        if block is None:
            return None
        sd = self._sd_on(shape, block)
        self._cache[key] = (block, sd, shape)
        return block, sd

    def _sd_on(self, shape: object, block: tuple[slice, slice, slice]) -> np.ndarray:
        if not isinstance(shape, Union):
            return shape.sd(self.x[block], self.y[block], self.z[block]).astype(np.float32, copy=False)  # type: ignore[attr-defined]
        out = np.full(tuple(s.stop - s.start for s in block), np.inf, dtype=np.float32)
        for part in shape.parts:
            own = self.window(part)
            if own is None:
                continue
            inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(own, block))
            if any(s.stop <= s.start for s in inter):
                continue
            rel = tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inter, block))
            np.minimum(out[rel], self._sd_on(part, inter), out=out[rel])  # type: ignore[arg-type]
        return out

    def mask(self, shape: object, grow: float = 0.0) -> np.ndarray:
        """Full-grid boolean mask ``sd < grow``; never empty: falls back to the deepest voxel."""
        out = np.zeros(self.shape, dtype=bool)
        hit = self.evaluate(shape)
        if hit is None:
            return out
        block, sd = hit
        inside = sd < grow
        if not inside.any():
            inside = np.zeros_like(inside)
            inside.flat[int(np.argmin(sd))] = True
        out[block] = inside
        return out


@dataclass(frozen=True)
class Sulci:
    """Clefts in the outer ``depth`` mm of ``shape`` where its :class:`Folded` pattern exceeds ``level``."""

    folded: Folded
    depth: float = 4.0
    level: float = 0.5

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        inner = self.folded.shape.sd(x, y, z)  # type: ignore[attr-defined]
        outer = np.maximum(-(inner + self.depth), inner)  # the outer shell of the shape
        # 8 mm per pattern unit turns the pattern threshold into an approximate distance.
        return np.maximum(outer, 8.0 * (self.level - self.folded.pattern(x, y, z)))

    def bound(self) -> tuple[np.ndarray, float]:
        return self.folded.bound()

    def mirrored(self) -> Sulci:
        return Sulci(self.folded.mirrored(), self.depth, self.level)
