"""Clinical delineation practice: which OARs get delineated, and CT->MR propagation errors.

Seed section 2: OARs "were typically segmented only if they were in clinically relevant proximity to
the clinical target volume" (9.4 ± 1.8 of 11 per patient, 15 of 52 patients complete), contralateral
twins are usually delineated together (section 5), and delineations "were made on CT images and
propagated to corresponding MR images", which "regularly led to over- and under-segmentation".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: Small organs are skipped now and then even near the tumour (lenses most often).
_SMALL_ORGAN_CEILINGS = {
    "Pituitary": 0.97,
    "Eye_L": 0.96,
    "Eye_R": 0.96,
    "Cochlea_L": 0.92,
    "Cochlea_R": 0.92,
    "Lens_L": 0.86,
    "Lens_R": 0.86,
}


@dataclass(frozen=True)
class DelineationRule:
    """Probability that a clinician delineates an OAR, from its distance to the tumour.

    ``p(d) = ceiling / (1 + exp((d - reach_mm) / softness_mm))`` with ``d`` the gap (mm) between the
    tumour surface and the organ surface; ``ceiling < 1`` leaves room for the occasional omission of a
    nearby organ, more often for the small ones (``ceilings`` per organ name override it). A bilateral pair is decided together, on the nearer twin, with probability
    ``pair_together``; otherwise each twin on its own distance. The defaults are tuned on 2,000 simulated
    head-oar cases to the seed's 9.4 ± 1.8 of 11 delineated and 15/52 (0.29) complete (section 2);
    they give 9.4 ± 1.7 delineated and 0.39 complete over 3,000 simulated training cases.
    """

    reach_mm: float = 105.0
    softness_mm: float = 16.0
    ceiling: float = 0.99
    ceilings: Mapping[str, float] = field(default_factory=lambda: dict(_SMALL_ORGAN_CEILINGS))
    pair_together: float = 0.9

    def probability(self, gap_mm: float | np.ndarray, name: str | None = None) -> float | np.ndarray:
        """Probability of delineating an organ ``gap_mm`` from the tumour (``name`` picks its ceiling)."""
        z = (np.asarray(gap_mm, dtype=float) - self.reach_mm) / self.softness_mm
        return self.ceilings.get(name, self.ceiling) / (1.0 + np.exp(z))


def tumour_gaps(
    anchors: Mapping[str, tuple[np.ndarray, float]], centre: Sequence[float], radius: float
) -> dict[str, float]:
    """Surface-to-surface gap (mm, >= 0) between a spherical tumour and each organ's anchor points."""
    c = np.asarray(centre, dtype=float)
    return {
        name: max(0.0, float(np.linalg.norm(points - c, axis=1).min()) - radius - r)
        for name, (points, r) in anchors.items()
    }


def choose_delineated(
    gaps: Mapping[str, float],
    pairs: Sequence[tuple[str, str]],
    rng: np.random.Generator,
    rule: DelineationRule = DelineationRule(),
) -> list[str]:
    """The OARs a clinician would delineate, in the order of ``gaps``.

    Parameters
    ----------
    gaps : organ name -> gap to the tumour in mm (see :func:`tumour_gaps`).
    pairs : (left, right) twins decided together most of the time.
    rng : random stream (one uniform draw per organ or pair, in a fixed order).
    rule : the distance rule.
    """
    chosen: dict[str, bool] = {}
    paired = {name for pair in pairs for name in pair}
    for left, right in pairs:
        u_together, u_left, u_right = rng.random(3)
        if u_together < rule.pair_together:
            both = u_left < rule.probability(min(gaps[left], gaps[right]), left)
            chosen[left] = chosen[right] = bool(both)
        else:
            chosen[left] = bool(u_left < rule.probability(gaps[left], left))
            chosen[right] = bool(u_right < rule.probability(gaps[right], right))
    for name in gaps:
        if name not in paired:
            chosen[name] = bool(rng.random() < rule.probability(gaps[name], name))
    return [name for name in gaps if chosen[name]]


def shift_mask(mask: np.ndarray, shift_zyx: Sequence[int]) -> np.ndarray:
    """Move a ``(Z, Y, X)`` mask by whole voxels, filling with False (no wrap-around)."""
    out = np.zeros_like(mask)
    src, dst = [], []
    for n, s in zip(mask.shape, shift_zyx):
        s = int(s)
        src.append(slice(max(0, -s), n - max(0, s)))
        dst.append(slice(max(0, s), n - max(0, -s)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def propagation_error(mask: np.ndarray, rng: np.random.Generator, case_shift: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """A clean ``(Z, Y, X)`` mask as propagated from CT: shifted, then maybe dilated or eroded by 1 voxel.

    The shift is the case's registration error ``case_shift`` plus a per-structure jitter (each axis
    -1, 0 or +1 voxel); over-segmentation (dilation) and under-segmentation (erosion) each have
    probability 0.3. Erosion is skipped when it would remove more than 60 % of a thin structure, and the
    result is never empty. The input is not modified.
    """
    jitter = rng.choice([-1, 0, 1], size=3, p=[0.15, 0.7, 0.15])
    out = shift_mask(mask, np.asarray(case_shift) + jitter)
    u = rng.random()
    if u < 0.3:
        out = ndimage.binary_dilation(out)
    elif u < 0.6:
        eroded = ndimage.binary_erosion(out)
        if eroded.sum() >= 0.4 * out.sum():
            out = eroded
    return out if out.any() else mask.copy()
