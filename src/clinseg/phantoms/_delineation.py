"""Clinical delineation practice: which OARs get delineated, and CT->MR propagation errors.

Seed section 2: OARs "were typically segmented only if they were in clinically relevant proximity to
the clinical target volume" (9.4 ± 1.8 of 11 per patient, 15 of 52 patients complete), contralateral
twins are usually delineated together (section 5), and delineations "were made on CT images and
propagated to corresponding MR images", which "regularly led to over- and under-segmentation".

Seed 001 (section 4.3.1, Table 4.1) reports instead how often each organ was delineated in its 44 MRIs;
:func:`choose_by_rates` draws that practice (one independent decision per organ, both sides of a pair
together), and per-organ rates (:func:`expand_rates`) can also override the distance rule of seed 000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from clinseg.errors import ConfigError

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
    rates: Mapping[str, float] | None = None,
) -> list[str]:
    """The OARs a clinician would delineate, in the order of ``gaps``.

    Parameters
    ----------
    gaps : organ name -> gap to the tumour in mm (see :func:`tumour_gaps`).
    pairs : (left, right) twins decided together most of the time.
    rng : random stream (three uniform draws per pair, then one per other organ, in a fixed order).
    rule : the distance rule.
    rates : structure name -> fixed probability replacing the rule for it (see :func:`expand_rates`); a
        pair with a rate is decided together. The draws are the same with or without ``rates``, so the
        decisions on the other organs do not change.
    """
    rates = rates or {}
    chosen: dict[str, bool] = {}
    paired = {name for pair in pairs for name in pair}
    for left, right in pairs:
        u_together, u_left, u_right = rng.random(3)
        if left in rates or right in rates:
            chosen[left] = chosen[right] = bool(u_left < rates.get(left, rates.get(right, 0.0)))
        elif u_together < rule.pair_together:
            both = u_left < rule.probability(min(gaps[left], gaps[right]), left)
            chosen[left] = chosen[right] = bool(both)
        else:
            chosen[left] = bool(u_left < rule.probability(gaps[left], left))
            chosen[right] = bool(u_right < rule.probability(gaps[right], right))
    for name in gaps:
        if name not in paired:
            u = rng.random()
            chosen[name] = bool(u < (rates[name] if name in rates else rule.probability(gaps[name], name)))
    return [name for name in gaps if chosen[name]]


def expand_rates(
    rates: Mapping[str, float], structures: Sequence[str], bilateral: Mapping[str, tuple[str, str]]
) -> dict[str, float]:
    """Per-structure delineation probabilities from per-organ ones.

    Parameters
    ----------
    rates : organ -> probability in [0, 1]; an organ is an unpaired structure name or the name of a
        bilateral pair (``"Lens"`` sets ``Lens_L`` and ``Lens_R``; a single side is refused, since the two
        sides are delineated together).
    structures : the structure names of the dataset.
    bilateral : pair name -> ``(left, right)`` structure names.

    Raises
    ------
    ConfigError
        For an unknown organ, a single side of a pair or a probability outside [0, 1].

    Examples
    --------
    >>> expand_rates({"Lens": 0.5}, ["Lens_L", "Lens_R"], {"Lens": ("Lens_L", "Lens_R")})
    {'Lens_L': 0.5, 'Lens_R': 0.5}
    """
    out: dict[str, float] = {}
    for organ, p in rates.items():
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise ConfigError(f"delineation rate of {organ!r} must be a number in [0, 1], got {p!r}") from None
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"delineation rate of {organ!r} must be within [0, 1], got {p}")
        side_of = next((pair for pair, sides in bilateral.items() if organ in sides), None)
        if side_of is not None:  # both sides are always decided together: one rate per pair
            raise ConfigError(f"delineation rate for {organ!r}: it is one side of {side_of!r}; give a rate "
                              f"for {side_of!r} (both sides are delineated together)")
        if organ in bilateral:
            names: Sequence[str] = bilateral[organ]
        elif organ in structures:
            names = [organ]
        else:
            paired = {name for sides in bilateral.values() for name in sides}
            known = sorted((set(structures) - paired) | set(bilateral))
            raise ConfigError(f"delineation rate for unknown organ {organ!r}; known: {', '.join(known)}")
        for name in names:
            out[name] = p
    return out


def choose_by_rates(
    structures: Sequence[str],
    bilateral: Mapping[str, tuple[str, str]],
    rates: Mapping[str, float],
    rng: np.random.Generator,
) -> list[str]:
    """Organs delineated independently with fixed probabilities (seed 001, Table 4.1), in ``structures`` order.

    Parameters
    ----------
    structures : structure names; each needs a rate in ``rates`` (per structure, see :func:`expand_rates`).
    bilateral : pair name -> ``(left, right)``: both sides are decided together, on the left side's rate.
    rates : structure name -> probability in [0, 1].
    rng : random stream (one uniform draw per organ, in order of first appearance in ``structures``).
    """
    side = {name: pair for pair in bilateral.values() for name in pair}
    chosen: dict[str, bool] = {}
    for name in structures:
        if name in chosen:
            continue
        members = side.get(name, (name,))
        decided = bool(rng.random() < rates[members[0]])
        for member in members:
            chosen[member] = decided
    return [name for name in structures if chosen[name]]


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
