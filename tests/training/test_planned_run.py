"""A planned run end to end: plan stored in the run, cases from the cache, prediction back on the input grid,
a wall-clock budget honoured, batches reproducible per iteration, loader memory independent of case count."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from clinseg.data.augmentation import AugmentationSettings, Augmenter
from clinseg.data.cache import build_cache
from clinseg.data.cached_sampler import CachedPatchSampler
from clinseg.data.dataset import load_dataset
from clinseg.data.intensity import ChannelNorm
from clinseg.data.loading import load_case
from clinseg.data.preprocess import Preprocessing
from clinseg.data.samplers import ClassAwarePatchSampler
from clinseg.inference.predictor import Predictor, predict_folder
from clinseg.planning.plan import PlanSettings
from clinseg.training.batches import BatchStream
from clinseg.training.config import TrainConfig
from clinseg.training.run import train
from clinseg.training.run_data import dataset_files_key
from clinseg.training.schedule import ScheduleSettings
from tests._synthetic import write_case, write_dataset

TINY = dict(model="unet3d", model_kwargs={"features": [4, 8]}, patch_size=[8, 8, 8], batch_size=2,
            val_cases=1, val_every=4, threads=1, workers=0)


@pytest.mark.slow
def test_planned_run_predicts_on_the_input_grid(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", cases=3, spacings=[(1.0, 1.0, 2.0), (1.0, 1.0, 2.0), (1.2, 1.2, 2.0)])
    # a test image of another spacing and shape: resampled to the plan's grid and back
    write_case(root, "Ts", "odd", (12, 28, 30), (0.8, 0.8, 2.6), seed=9)
    run = tmp_path / "run"
    state = train(root, run, TrainConfig(**TINY, iterations=8))
    assert state.iteration == 8
    plan = json.loads((run / "plan.json").read_text())
    assert plan["spacing"] == pytest.approx([1.0, 1.0, 2.0]) and plan["normalization"][0]["scheme"] == "ct"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["normalization"] == "plan" and saved["plan"]["enabled"] is True
    predictor = Predictor.from_run(run, device="cpu")
    assert predictor.plan is not None
    out = tmp_path / "pred"
    predict_folder(predictor, root / "imagesTs", out)
    for case in ("test_0", "odd"):
        image = nib.load(root / "imagesTs" / f"{case}_0000.nii.gz")
        for name in ("Organ", "Eye_L", "Eye_R"):
            mask = nib.load(out / case / f"{name}.nii.gz")
            assert mask.shape == image.shape and np.allclose(mask.affine, image.affine)


def test_unplanned_run_keeps_the_old_behaviour(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds")
    run = tmp_path / "run"
    train(root, run, TrainConfig(**TINY, iterations=2, plan=PlanSettings(enabled=False)))
    assert not (run / "plan.json").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["normalization"] == "zscore"


@pytest.mark.slow
def test_a_time_budget_is_honoured_within_ten_percent(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds")
    run = tmp_path / "run"
    cfg = TrainConfig(**{**TINY, "val_every": 25}, schedule=ScheduleSettings(time="8s"))
    state = train(root, run, cfg)
    record = json.loads((run / "schedule.json").read_text())
    assert record["iterations"] == state.iteration > 10
    assert abs(record["elapsed_seconds"] - 8.0) <= 0.8  # within 10% (on a machine not shared with other work)
    assert yaml.safe_load((run / "config.yaml").read_text())["iterations"] == state.iteration
    # resuming the finished run trains nothing more and keeps the fixed length
    assert train(root, run, cfg).iteration == state.iteration


def test_batches_are_the_same_from_workers_and_in_process(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "ds"))
    prep = Preprocessing(None, True, (ChannelNorm("zscore"),))
    entries = build_cache(ds, ds.train, dataset_files_key(ds), prep, root=tmp_path / "cache", workers=1)
    aug = Augmenter(AugmentationSettings(rotation_p=0.5, noise_p=0.5), (8, 8, 8), [2], 2, [0, 2, 1])

    def sampler() -> CachedPatchSampler:
        return CachedPatchSampler(list(entries.values()), (8, 8, 8), 0.5, np.random.default_rng(0), aug)

    with BatchStream(sampler(), 2, seed=3, start=5, stop=9, workers=0) as inline, \
            BatchStream(sampler(), 2, seed=3, start=5, stop=9, workers=2) as background:
        for _ in range(4):
            a, b = inline.next(), background.next()
            assert np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)
    with BatchStream(sampler(), 2, seed=3, start=7, workers=0) as resumed, \
            BatchStream(sampler(), 2, seed=3, start=5, workers=0) as whole:
        whole.next(), whole.next()
        assert np.array_equal(resumed.next().image, whole.next().image)  # batch 7 is batch 7


def _loader_peak(entries: list, patch: tuple[int, int, int]) -> int:
    tracemalloc.start()
    sampler = CachedPatchSampler(entries, patch, 0.5, np.random.default_rng(0))
    for _ in range(10):
        sampler.batch(2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_loader_memory_does_not_grow_with_the_number_of_cases(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "ds", cases=24, shape=(32, 32, 32), test_cases=0))
    prep = Preprocessing(None, False, (ChannelNorm("zscore"),))
    entries = list(build_cache(ds, ds.train, dataset_files_key(ds), prep, root=tmp_path / "cache",
                               workers=1).values())
    few, many = _loader_peak(entries[:6], (16, 16, 16)), _loader_peak(entries, (16, 16, 16))
    case_bytes = 32**3 * (4 + 3)  # one case in memory: float32 image + a byte per structure
    assert many - few < 2 * case_bytes  # 18 more cases cost less than two cases' arrays
    tracemalloc.start()
    ClassAwarePatchSampler([load_case(r, ds.spec) for r in ds.train], (16, 16, 16), 0.5, np.random.default_rng(0))
    in_memory = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert in_memory > 24 * case_bytes > 10 * many  # the whole-volume sampler holds every case


def test_background_arm_counts_undelineated_structures_as_empty(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds")
    (root / "structuresTr" / "case_1" / "Eye_L.nii.gz").unlink()
    ds = load_dataset(root)
    prep = Preprocessing(None, True, (ChannelNorm("zscore"),))
    entries = build_cache(ds, ds.train, dataset_files_key(ds), prep, root=tmp_path / "cache", workers=1)
    masked = CachedPatchSampler([entries["case_1"]], (8, 8, 8), 0.0, np.random.default_rng(0))
    naive = CachedPatchSampler([entries["case_1"]], (8, 8, 8), 0.0, np.random.default_rng(0),
                               absent_as_background=True)
    assert masked.batch(1).annotated.tolist() == [[True, False, True]]  # Eye_L not delineated: no loss
    assert naive.batch(1).annotated.tolist() == [[True, True, True]]  # ... or learned as background
