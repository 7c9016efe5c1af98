"""The preprocessed-case cache: built once, shared, invalidated by a changed dataset or plan, read a patch
at a time without holding cases in memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from clinseg.data.cache import build_cache, cache_folder
from clinseg.data.dataset import load_dataset
from clinseg.data.intensity import ChannelNorm
from clinseg.data.loading import load_case
from clinseg.data.preprocess import Preprocessing
from clinseg.training.run_data import dataset_files_key
from tests._synthetic import write_dataset

PREP = Preprocessing(None, False, (ChannelNorm("zscore"),))


def test_cached_case_equals_the_case_loaded_directly(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "ds"))
    entries = build_cache(ds, ds.train, dataset_files_key(ds), PREP, root=tmp_path / "cache", workers=1)
    direct = load_case(ds.train[0], ds.spec, normalization="zscore")
    cached = entries[direct.case_id].load()
    assert np.allclose(cached.image, direct.image, atol=2e-3)  # stored as float16
    assert np.array_equal(cached.target, direct.target)
    assert np.array_equal(cached.annotated, direct.annotated)
    image, target = entries[direct.case_id].read_patch((-2, 3, 4), (8, 8, 8))
    assert np.array_equal(target[:, 2:], direct.target[:, 0:6, 3:11, 4:12])
    assert np.allclose(image[:, 2:], direct.image[:, 0:6, 3:11, 4:12], atol=2e-3)
    assert not target[:, :2].any() and np.allclose(image[:, :2], cached.image[0, 0, 0, 0], atol=2e-3)  # padding
    locations = entries[direct.case_id].locations()
    assert all(direct.target[s][tuple(locations[s].T)].all() for s in range(len(locations)))


def test_cache_is_reused_and_rebuilt_when_the_data_or_plan_changes(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds")
    ds = load_dataset(root)
    key = dataset_files_key(ds)
    build_cache(ds, ds.train, key, PREP, root=tmp_path / "cache", workers=1)
    folder = cache_folder(ds, key, PREP, tmp_path / "cache") / "cases"
    stamp = (folder / "case_0.image.npy").stat().st_mtime_ns
    build_cache(ds, ds.train, key, PREP, root=tmp_path / "cache", workers=1)
    assert (folder / "case_0.image.npy").stat().st_mtime_ns == stamp  # reused, not rewritten
    other_plan = Preprocessing((2.0, 2.0, 2.0), True, (ChannelNorm("zscore"),))
    assert cache_folder(ds, key, other_plan, tmp_path / "cache") != folder.parent
    time.sleep(0.01)
    mask = root / "structuresTr" / "case_0" / "Organ.nii.gz"
    os.utime(mask, ns=(time.time_ns(), time.time_ns()))  # an edited file, even of the same size
    changed = dataset_files_key(load_dataset(root))
    assert changed != key and cache_folder(ds, changed, PREP, tmp_path / "cache") != folder.parent


def test_an_interrupted_build_resumes_with_the_cases_not_yet_done(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "ds"))
    key = dataset_files_key(ds)
    build_cache(ds, ds.train[:1], key, PREP, root=tmp_path / "cache", workers=1)
    folder = cache_folder(ds, key, PREP, tmp_path / "cache") / "cases"
    first = (folder / "case_0.json").stat().st_mtime_ns
    entries = build_cache(ds, ds.train, key, PREP, root=tmp_path / "cache", workers=1)
    assert sorted(entries) == ["case_0", "case_1", "case_2"]
    assert (folder / "case_0.json").stat().st_mtime_ns == first


def test_an_unwritable_cache_is_one_clear_error(tmp_path: Path) -> None:
    from clinseg.errors import DatasetError

    ds = load_dataset(write_dataset(tmp_path / "ds"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DatasetError, match="CLINSEG_CACHE"):
        build_cache(ds, ds.train, "k", PREP, root=blocker, workers=1)


def test_foreground_patches_favour_structures_that_few_cases_delineate(tmp_path: Path) -> None:
    """Partially delineated data: a structure delineated in 1 of 4 cases is drawn as often, in total, as one
    delineated in all 4 (weight 1/n), where seed 000's uniform rule draws each structure equally."""
    from clinseg.data.cached_sampler import CachedPatchSampler, structure_weights

    assert np.allclose(structure_weights([4, 1]), [0.2, 0.8])
    assert np.allclose(structure_weights([4, 1], "uniform"), [0.5, 0.5])
    with pytest.raises(ValueError, match="balance"):
        structure_weights([1], "inverse")
    ds = load_dataset(write_dataset(tmp_path / "ds", cases=4))
    entries = list(build_cache(ds, ds.train, dataset_files_key(ds), PREP, root=tmp_path / "cache", workers=1).values())
    keep = [np.array([True, True, i == 0]) for i in range(4)]  # Eye_R delineated in one case only

    def centred_on_eye_r(balance: str) -> float:
        sampler = CachedPatchSampler(entries, (8, 8, 8), 1.0, np.random.default_rng(0), keep=keep, balance=balance)
        draws = [sampler.sample_centre() for _ in range(600)]
        (case_of_eye_r, voxels), = sampler.candidates[2]
        eye_r = set(map(tuple, voxels))
        return float(np.mean([case == case_of_eye_r and tuple(c) in eye_r for case, c in draws]))

    assert centred_on_eye_r("uniform") < 0.45 < centred_on_eye_r("delineations")
