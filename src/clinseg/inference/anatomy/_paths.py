"""Centreline of an optic nerve: a shortest path through the voxels between two landmarks (seed 001 §4.2.2.2).

The graph's nodes are the voxels of a cuboid holding both landmarks (with a margin across the AP axis). Every
edge goes one voxel further along the antero-posterior array axis, towards the target, and -1/0/+1 voxel along
each of the two other axes, so the centreline has one point per AP slice. Entering a node costs

* ``C_l`` when the voxel is predicted negative,
* ``R - d_border`` when it is predicted positive (``d_border``: distance to the nearest negative voxel, capped
  at ``R``; ``R`` interpolated along the AP axis from the start to the target value),
* plus ``C_t * d_target`` (distance to the target),

all in voxels (the finest spacing; see :func:`~clinseg.inference.anatomy._geometry.voxel_unit_mm`). Dijkstra's
algorithm (:func:`scipy.sparse.csgraph.dijkstra`) gives the cheapest path from the start (eye side).

When the target cannot be reached with one lateral voxel per AP step (the landmarks are more apart across than
along the AP axis), the path ends at the reachable voxel of the target's slice nearest to the target and a
straight segment joins it to the target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

# Added to every edge: Dijkstra needs no zero weights (an explicit zero may be read as "no edge"); every path
# has one edge per AP slice, so a constant does not change which path is cheapest.
_EPS = 1e-6


def straight_line(p0: Sequence[int], p1: Sequence[int]) -> np.ndarray:
    """``(N, 3)`` integer voxels from ``p0`` to ``p1`` (both included), one per step of the longest axis."""
    a, b = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    n = int(np.max(np.abs(b - a))) + 1
    points = np.rint(np.linspace(a, b, n)).astype(np.int64)
    return points[np.concatenate([[True], np.any(np.diff(points, axis=0) != 0, axis=1)])]


def interpolate_radius(
    ap_index: np.ndarray, start_ap: int, target_ap: int, r_start: float, r_target: float
) -> np.ndarray:
    """Radius at AP index ``ap_index``: ``r_start`` at the start slice, ``r_target`` at the target, linear between."""
    span = target_ap - start_ap
    t = np.zeros(np.shape(ap_index)) if span == 0 else np.clip((np.asarray(ap_index) - start_ap) / span, 0.0, 1.0)
    return r_start + (r_target - r_start) * t


def trace_centreline(
    positive: np.ndarray,
    start: Sequence[int],
    target: Sequence[int],
    *,
    ap_axis: int,
    spacing_zyx: Sequence[float],
    voxel_mm: float,
    radius_start: float,
    radius_target: float,
    label_penalty: float,
    target_cost: float,
    margin: Sequence[int],
) -> np.ndarray:
    """Cheapest AP-monotonic path of voxels from ``start`` to ``target``.

    Parameters
    ----------
    positive : bool ``(Z, Y, X)`` (refined) prediction of the nerve.
    start, target : ``(z, y, x)`` voxel indices of the eye-nerve and the chiasm landmark.
    ap_axis : array axis (0, 1 or 2) along which every step advances by one voxel.
    spacing_zyx : voxel size in mm, array axis order.
    voxel_mm : length of one "voxel" of the costs and radii, in mm.
    radius_start, radius_target : ``R`` in voxels at the start and at the target slice.
    label_penalty : ``C_l``.  target_cost : ``C_t`` (per voxel of distance).
    margin : voxels added to the cuboid on each side, per array axis (the AP entry is ignored).

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` int64 ``(z, y, x)`` voxels, the first ``start``, the last ``target``.
    """
    shape = np.asarray(positive.shape)
    s = np.clip(np.asarray(start, dtype=np.int64), 0, shape - 1)
    t = np.clip(np.asarray(target, dtype=np.int64), 0, shape - 1)
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    a, (o1, o2) = ap_axis, [ax for ax in range(3) if ax != ap_axis]
    lo = np.minimum(s, t) - np.asarray(margin)
    hi = np.maximum(s, t) + np.asarray(margin)
    lo[a], hi[a] = min(s[a], t[a]), max(s[a], t[a])
    lo, hi = np.maximum(lo, 0), np.minimum(hi, shape - 1)

    # Distance to the nearest negative voxel (in voxels), on a crop wide enough for the cap at R.
    pad = np.ceil(max(radius_start, radius_target) * voxel_mm / sp).astype(np.int64) + 1
    c_lo, c_hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, shape - 1)
    crop = positive[tuple(slice(l0, h0 + 1) for l0, h0 in zip(c_lo, c_hi))]
    if crop.all():
        border = np.full(crop.shape, np.inf)
    else:
        border = ndi.distance_transform_edt(crop, sampling=sp) / voxel_mm
    roi = tuple(slice(l0 - c0, h0 - c0 + 1) for l0, h0, c0 in zip(lo, hi, c_lo))
    step = 1 if t[a] >= s[a] else -1
    order = slice(None) if step == 1 else slice(None, None, -1)
    pos = np.transpose(crop[roi], (a, o1, o2))[order]  # (L, H, W): slice k is AP index s[a] + k * step
    dist_border = np.transpose(border[roi], (a, o1, o2))[order]
    n_slices, height, width = pos.shape

    ap_idx = s[a] + step * np.arange(n_slices)
    radius = interpolate_radius(ap_idx, int(s[a]), int(t[a]), radius_start, radius_target)[:, None, None]
    d_target = (
        np.sqrt(
            ((ap_idx - t[a]) * sp[a])[:, None, None] ** 2
            + ((np.arange(lo[o1], hi[o1] + 1) - t[o1]) * sp[o1])[None, :, None] ** 2
            + ((np.arange(lo[o2], hi[o2] + 1) - t[o2]) * sp[o2])[None, None, :] ** 2
        )
        / voxel_mm
    )
    cost = np.where(pos, np.clip(radius - dist_border, 0.0, None), label_penalty) + target_cost * d_target + _EPS

    ids = np.arange(n_slices * height * width).reshape(n_slices, height, width)
    src, dst = [], []
    for du in (-1, 0, 1):
        for dv in (-1, 0, 1):
            u0, u1 = max(0, -du), height - max(0, du)
            v0, v1 = max(0, -dv), width - max(0, dv)
            src.append(ids[:-1, u0:u1, v0:v1].ravel())
            dst.append(ids[1:, u0 + du : u1 + du, v0 + dv : v1 + dv].ravel())
    src_a, dst_a = np.concatenate(src), np.concatenate(dst)
    graph = csr_matrix((cost.ravel()[dst_a], (src_a, dst_a)), shape=(ids.size, ids.size))
    start_id = int(ids[0, s[o1] - lo[o1], s[o2] - lo[o2]])
    dist, pred = dijkstra(graph, directed=True, indices=start_id, return_predecessors=True)

    end_id = int(ids[-1, t[o1] - lo[o1], t[o2] - lo[o2]])
    if not np.isfinite(dist[end_id]):
        last = ids[-1].ravel()
        reachable = last[np.isfinite(dist[last])]
        end_id = int(reachable[np.argmin(d_target.ravel()[reachable])])
    nodes = [end_id]
    while nodes[-1] != start_id:
        nodes.append(int(pred[nodes[-1]]))
    k, u, v = np.unravel_index(np.asarray(nodes[::-1]), ids.shape)
    path = np.empty((k.size, 3), dtype=np.int64)
    path[:, a], path[:, o1], path[:, o2] = ap_idx[k], lo[o1] + u, lo[o2] + v
    if not np.array_equal(path[-1], t):
        path = np.concatenate([path, straight_line(path[-1], t)[1:]])
    return path


def within_radius(
    points: np.ndarray, radii_mm: np.ndarray, shape: Sequence[int], spacing_zyx: Sequence[float]
) -> np.ndarray:
    """Bool ``(Z, Y, X)`` mask of the voxels within ``radii_mm[i]`` mm of ``points[i]`` for some ``i``."""
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    out = np.zeros(tuple(shape), dtype=bool)
    for point, r in zip(np.asarray(points), np.broadcast_to(radii_mm, (len(points),))):
        half = np.floor(r / sp + 1e-9).astype(np.int64)
        lo, hi = np.maximum(point - half, 0), np.minimum(point + half, np.asarray(shape) - 1)
        grids = np.meshgrid(
            *[(np.arange(l0, h0 + 1) - p) * d for l0, h0, p, d in zip(lo, hi, point, sp)], indexing="ij"
        )
        ball = sum(g**2 for g in grids) <= r * r * (1 + 1e-9)
        out[tuple(slice(l0, h0 + 1) for l0, h0 in zip(lo, hi))] |= ball
    return out


def radius_in_voxels(radius_mm: float, voxel_mm: float) -> float:
    """A radius given in mm as a number of voxels of size ``voxel_mm``, at least one voxel."""
    return max(radius_mm / voxel_mm, 1.0)
