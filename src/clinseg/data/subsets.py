"""Training subsets for learning-curve studies: which cases, and which delineations in each (seed 000, Sec. 3).

A subset of size M gives each structure M delineated references ("references per class"):

* ``concentrated``: M cases in which every structure is delineated (equivalent to delineating M patients
  completely).
* ``distributed``: every training case, but each structure keeps its delineation in only M of the cases that
  have it, spread pseudo-randomly over as many cases as possible (seed 000: "pseudo-randomly sampled to evenly
  spread the labels over as many volumes as possible"). A delineation removed this way is treated exactly as
  a missing one: the case is used, with loss weight c_n = 0 for that structure.
* ``patients``: the first (or M random) cases with whatever delineations they have, for patient-count
  studies (seed 002).

:func:`sample_subset` is a pure function of the annotation table and ``(mode, M, seed)``.

Examples
--------
>>> table = {"a": {"Eye_L", "Eye_R"}, "b": {"Eye_L", "Eye_R"}, "c": {"Eye_L"}}
>>> sample_subset(table, ["Eye_L", "Eye_R"], "concentrated", 1, seed=0).cases  # doctest: +SKIP
{'b': ('Eye_L', 'Eye_R')}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from clinseg.errors import ConfigError

SubsetMode = Literal["concentrated", "distributed", "patients"]
MODES: tuple[str, ...] = ("concentrated", "distributed", "patients")


@dataclass(frozen=True)
class Subset:
    """A sampled training subset.

    Attributes
    ----------
    mode, size, seed : how it was drawn.
    cases : case id -> structures whose delineation is kept, in structure order. Cases whose tuple is empty
        are part of the subset (``distributed`` keeps every volume) but carry no label.
    """

    mode: str
    size: int
    seed: int
    cases: Mapping[str, tuple[str, ...]]

    def references(self, structure: str) -> int:
        """Number of cases in which ``structure`` is kept."""
        return sum(structure in kept for kept in self.cases.values())

    @property
    def labelled_cases(self) -> list[str]:
        """Cases that keep at least one delineation."""
        return [case for case, kept in self.cases.items() if kept]

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "size": self.size, "seed": self.seed,
                           "cases": {c: list(k) for c, k in self.cases.items()}}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Subset:
        raw = json.loads(text)
        return cls(raw["mode"], int(raw["size"]), int(raw["seed"]),
                   {c: tuple(k) for c, k in raw["cases"].items()})


def sample_subset(
    annotations: Mapping[str, frozenset[str] | set[str]],
    structures: Sequence[str],
    mode: str,
    size: int,
    seed: int,
    *,
    patients_order: Literal["first", "random"] = "random",
) -> Subset:
    """Draw the training subset of ``mode`` and size ``M = size``.

    Parameters
    ----------
    annotations : the pool of training cases (in a stable order, e.g. sorted ids) -> structures delineated.
    structures : every structure of the dataset, in output order.
    mode : ``concentrated``, ``distributed`` or ``patients``.
    size : M, references per class (patients for ``patients``), >= 1.
    seed : the subset is a function of ``(annotations, mode, size, seed)`` only.
    patients_order : ``patients`` mode takes the ``first`` M cases of the pool or M ``random`` ones.

    Returns
    -------
    Subset
        Cases in pool order, each with its kept structures in ``structures`` order.

    Raises
    ------
    ConfigError
        For an unknown mode, ``size < 1``, or a request the pool cannot satisfy (concentrated M larger than
        the number of complete cases; a structure delineated in fewer than M cases; more patients than cases).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown sampling mode {mode!r}; use one of {', '.join(MODES)}")
    if int(size) != size or size < 1:
        raise ConfigError(f"subset size must be an integer >= 1, got {size!r}")
    size = int(size)
    order = list(annotations)
    rng = np.random.default_rng(seed)
    if mode == "concentrated":
        chosen = _concentrated(annotations, structures, size, rng)
        kept = {case: tuple(structures) for case in chosen}
    elif mode == "distributed":
        kept = _distributed(annotations, structures, size, rng)
    else:
        if size > len(order):
            raise ConfigError(f"patients: {size} patients requested but the pool has only {len(order)} cases")
        picked = order[:size] if patients_order == "first" else list(rng.choice(order, size, replace=False))
        kept = {case: tuple(s for s in structures if s in annotations[case]) for case in picked}
    cases = {case: kept[case] for case in order if case in kept}
    return Subset(mode, size, int(seed), cases)


def _concentrated(annotations: Mapping[str, frozenset[str] | set[str]], structures: Sequence[str], size: int,
                  rng: np.random.Generator) -> list[str]:
    complete = [case for case, done in annotations.items() if set(structures) <= set(done)]
    if size > len(complete):
        raise ConfigError(f"concentrated: M = {size} needs {size} completely delineated cases, but only "
                          f"{len(complete)} of the {len(annotations)} training cases are complete; "
                          "use smaller sizes or the distributed mode")
    return list(rng.choice(complete, size, replace=False))


def _distributed(annotations: Mapping[str, frozenset[str] | set[str]], structures: Sequence[str], size: int,
                 rng: np.random.Generator) -> dict[str, tuple[str, ...]]:
    """Keep each structure in exactly ``size`` cases, greedily onto the least-loaded cases.

    Structures with the fewest candidate cases are placed first (they have the least freedom); each then
    goes to the ``size`` candidates that hold the fewest kept delineations so far, ties broken at random
    (drawn anew for each structure, so which structures share a volume is left to chance). This reaches the largest possible number of labelled volumes whenever every
    case can take every structure, and spreads the labels evenly (loads differ by at most one).
    """
    cases = list(annotations)
    candidates = {s: [c for c in cases if s in annotations[c]] for s in structures}
    short = {s: len(c) for s, c in candidates.items() if len(c) < size}
    if short:
        listing = ", ".join(f"{s} ({n})" for s, n in short.items())
        raise ConfigError(f"distributed: M = {size} references per class, but these structures are delineated "
                          f"in fewer training cases: {listing}")
    load = dict.fromkeys(cases, 0)
    kept: dict[str, set[str]] = {c: set() for c in cases}
    # Ties between equally constrained structures are broken at random too, so that no structure is always
    # placed first.
    struct_rank = dict(zip(structures, rng.permutation(len(structures)).tolist()))
    for structure in sorted(structures, key=lambda s: (len(candidates[s]), struct_rank[s])):
        rank = dict(zip(cases, rng.permutation(len(cases)).tolist()))
        chosen = sorted(candidates[structure], key=lambda c: (load[c], rank[c]))[:size]
        for case in chosen:
            kept[case].add(structure)
            load[case] += 1
    return {c: tuple(s for s in structures if s in kept[c]) for c in cases}
