"""Study subsets: concentrated, distributed and patients sampling (seed 000, Sec. 3)."""

from __future__ import annotations

import pytest

from clinseg.data.subsets import Subset, sample_subset
from clinseg.errors import ConfigError

STRUCTURES = ["Brainstem", "Eye_L", "Eye_R", "Lens_L", "Lens_R"]


def _table(n_cases: int = 12, incomplete: dict[int, set[str]] | None = None) -> dict[str, frozenset[str]]:
    """``n_cases`` complete cases, except the ones listed, which lack the given structures."""
    incomplete = incomplete or {}
    return {f"c{i:02d}": frozenset(set(STRUCTURES) - incomplete.get(i, set())) for i in range(n_cases)}


PARTIAL = _table(12, {0: {"Eye_L", "Lens_L"}, 3: {"Brainstem"}, 5: {"Eye_R"}, 8: {"Lens_R", "Lens_L"}})


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_distributed_gives_every_structure_exactly_m_references(size: int) -> None:
    subset = sample_subset(PARTIAL, STRUCTURES, "distributed", size, seed=3)
    for structure in STRUCTURES:
        assert subset.references(structure) == size
    for case, kept in subset.cases.items():  # only delineations that exist are kept
        assert set(kept) <= PARTIAL[case]
    assert list(subset.cases) == list(PARTIAL)  # every training volume is part of the subset


@pytest.mark.parametrize("size", [1, 2, 3])
def test_distributed_spreads_over_as_many_volumes_as_possible(size: int) -> None:
    table = _table(12)
    subset = sample_subset(table, STRUCTURES, "distributed", size, seed=0)
    labels = size * len(STRUCTURES)
    # The maximum number of labelled volumes is min(cases, labels); loads differ by at most one.
    assert len(subset.labelled_cases) == min(len(table), labels)
    loads = [len(k) for k in subset.cases.values()]
    assert max(loads) - min(loads) <= 1


def test_distributed_spreading_with_missing_delineations() -> None:
    subset = sample_subset(PARTIAL, STRUCTURES, "distributed", 2, seed=1)
    assert len(subset.labelled_cases) == 10  # 10 labels on 12 volumes: one each


def test_concentrated_takes_complete_cases_only() -> None:
    complete = {c for c, s in PARTIAL.items() if s == set(STRUCTURES)}
    for seed in range(5):
        subset = sample_subset(PARTIAL, STRUCTURES, "concentrated", 4, seed=seed)
        assert len(subset.cases) == 4
        assert set(subset.cases) <= complete
        assert all(kept == tuple(STRUCTURES) for kept in subset.cases.values())
        assert all(subset.references(s) == 4 for s in STRUCTURES)


def test_seeds_reproduce_and_differ() -> None:
    for mode in ("concentrated", "distributed", "patients"):
        a = sample_subset(PARTIAL, STRUCTURES, mode, 3, seed=7)
        assert a == sample_subset(PARTIAL, STRUCTURES, mode, 3, seed=7)
        others = {tuple(sorted(sample_subset(PARTIAL, STRUCTURES, mode, 3, seed=s).cases.items()))
                  for s in range(8)}
        assert len(others) > 1, mode


def test_patients_mode_keeps_what_each_patient_has() -> None:
    first = sample_subset(PARTIAL, STRUCTURES, "patients", 4, seed=0, patients_order="first")
    assert list(first.cases) == ["c00", "c01", "c02", "c03"]
    assert set(first.cases["c00"]) == PARTIAL["c00"]
    assert set(first.cases["c03"]) == PARTIAL["c03"]
    randomly = sample_subset(PARTIAL, STRUCTURES, "patients", 4, seed=0)
    assert len(randomly.cases) == 4
    assert all(set(kept) == PARTIAL[c] for c, kept in randomly.cases.items())


def test_impossible_requests_are_refused_clearly() -> None:
    with pytest.raises(ConfigError, match=r"concentrated: M = 9 needs 9 completely delineated cases, but only 8"):
        sample_subset(PARTIAL, STRUCTURES, "concentrated", 9, seed=0)
    with pytest.raises(ConfigError, match=r"Lens_L \(10\)"):
        sample_subset(PARTIAL, STRUCTURES, "distributed", 11, seed=0)
    with pytest.raises(ConfigError, match="13 patients requested"):
        sample_subset(PARTIAL, STRUCTURES, "patients", 13, seed=0)
    with pytest.raises(ConfigError, match="unknown sampling mode"):
        sample_subset(PARTIAL, STRUCTURES, "clustered", 1, seed=0)
    with pytest.raises(ConfigError, match="integer >= 1"):
        sample_subset(PARTIAL, STRUCTURES, "distributed", 0, seed=0)


def test_subset_json_round_trip() -> None:
    subset = sample_subset(PARTIAL, STRUCTURES, "distributed", 2, seed=4)
    assert Subset.from_json(subset.to_json()) == subset


def test_symmetric_pairs_rarely_share_a_volume_in_distributed_mode() -> None:
    """The mechanism the seed blames for the distributed eyes (Sec. 4): with M = 1 no volume holds both."""
    table = _table(12)
    for seed in range(10):
        subset = sample_subset(table, STRUCTURES, "distributed", 1, seed=seed)
        for kept in subset.cases.values():
            assert not {"Eye_L", "Eye_R"} <= set(kept)
    # with labels on every volume several times over, pairs do share volumes
    pairs = [sum({"Eye_L", "Eye_R"} <= set(k) for k in
                 sample_subset(table, STRUCTURES, "distributed", 8, seed=s).cases.values()) for s in range(3)]
    assert all(p > 0 for p in pairs)
