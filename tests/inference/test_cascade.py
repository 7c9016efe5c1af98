"""Localise to segment end to end on a tiny dataset: two networks in one run, cascade, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from clinseg.data import load_case, load_dataset
from clinseg.data.crop import bounding_box
from clinseg.inference.cascade import CascadePredictor, load_predictor
from clinseg.inference.predictor import Predictor, predict_folder
from clinseg.training.config import TrainConfig
from clinseg.training.measures import training_measures
from clinseg.training.run import train
from clinseg.training.two_stage import TwoStageOptions, train_two_stage

TINY = dict(model="resfcn3d", model_kwargs={"features": [4, 4, 4], "blocks": 1}, patch_size=[8, 8, 8],
            batch_size=2, val_cases=1, val_every=1, checkpoint_every=1, threads=1)


def test_two_stage_run_trains_both_networks_and_predicts(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=3)
    run = tmp_path / "two"
    states = train_two_stage(root, run, TrainConfig(**TINY), TwoStageOptions(margin=2, jitter=[1, 3]), iterations=2)
    assert set(states) == {"localiser", "organ"} and all(s.iteration == 2 for s in states.values())
    assert yaml.safe_load((run / "localiser" / "config.yaml").read_text())["resample"] == [3.0, 2.0, 2.0]
    organ_cfg = yaml.safe_load((run / "organ" / "config.yaml").read_text())
    assert organ_cfg["sampler"] == "organ-crop" and organ_cfg["sampler_kwargs"] == {"margin": 2, "jitter": [1, 3]}
    assert json.loads((run / "cascade.json").read_text())["margin"] == 2

    predictor = load_predictor(run)
    assert isinstance(predictor, CascadePredictor)
    dataset = load_dataset(root)
    case = load_case(dataset.test[0], dataset.spec)
    masks = predictor.predict(case.image)
    assert masks.shape == case.target.shape and masks.dtype == np.uint8
    report = predictor.last_report
    assert set(report.organs) == {"A", "B"} and report.voxels_total == int(np.prod(case.image.shape[1:]))

    # ground-truth localisation: crops around the reference boxes; masks only inside the padded boxes
    boxes = {n: bounding_box(case.target[n]) for n in range(2)}
    gt = predictor.predict(case.image, boxes=boxes)
    assert all(predictor.last_report.organs[s]["found"] for s in ("A", "B"))
    for n, box in boxes.items():
        outside = np.ones(case.image.shape[1:], bool)
        outside[tuple(slice(max(lo - 2, 0), hi + 2) for lo, hi in box)] = False
        assert not gt[n][outside].any()

    # the whole folder through the same predict_folder as single-stage runs
    cases = predict_folder(predictor, root / "imagesTs", tmp_path / "pred")
    assert cases == ["test_0"] and (tmp_path / "pred" / "test_0" / "A.nii.gz").is_file()
    measures = training_measures(run / "organ")
    assert measures.iterations == 2 and measures.validations == 2 and measures.seconds > 0


def test_missed_organ_is_not_found_or_segmented_by_the_fallback(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=3)
    run = tmp_path / "two"
    train_two_stage(root, run, TrainConfig(**TINY), TwoStageOptions(margin=2), iterations=1)
    single = tmp_path / "single"
    train(root, single, TrainConfig(**TINY), iterations=1)
    dataset = load_dataset(root)
    image = load_case(dataset.test[0], dataset.spec).image
    cascade = CascadePredictor.from_run(run)
    empty = cascade.predict(image, boxes={0: None, 1: None})
    assert not empty.any() and cascade.last_report.organs["A"] == {"found": False, "fallback": False}
    cascade.fallback = Predictor.from_run(single)
    rescued = cascade.predict(image, boxes={0: None, 1: None})
    assert np.array_equal(rescued, cascade.fallback.predict(image))
    assert cascade.last_report.organs["B"]["fallback"] is True


def test_resampled_run_predicts_on_the_input_grid(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=3)
    train(root, tmp_path / "low", TrainConfig(**TINY, resample=[2.0, 2.0, 2.0]), iterations=1)
    predictor = Predictor.from_run(tmp_path / "low")
    dataset = load_dataset(root)
    image = load_case(dataset.test[0], dataset.spec).image
    assert predictor.predict(image).shape == (2, 8, 10, 12)
    assert predictor.predict(image, native_grid=True).shape == (2, 4, 5, 6)


class _FixedLocaliser:
    """A localisation stage with known low-resolution output (stands in for a trained network)."""

    def __init__(self, masks: np.ndarray) -> None:
        self.masks = masks

    def predict(self, image: np.ndarray, **options: object) -> np.ndarray:
        assert options.get("native_grid") is True
        return self.masks


def test_localisation_takes_the_largest_component_and_maps_its_box_to_full_resolution(
        make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=3)
    train_two_stage(root, tmp_path / "two", TrainConfig(**TINY), TwoStageOptions(margin=1), iterations=1,
                    stages=("organ",))
    organ = Predictor.from_run(tmp_path / "two" / "organ")
    low = np.zeros((2, 4, 5, 6), np.uint8)
    low[0, 0:2, 0:2, 0:2] = 1          # 8 voxels: the largest component of organ 0
    low[0, 3, 4, 5] = 1                # a stray voxel, dropped
    cascade = CascadePredictor(_FixedLocaliser(low), organ, margin=1)  # type: ignore[arg-type]
    image = np.zeros((1, 8, 10, 12), np.float32)
    boxes = cascade.localise(image)
    assert boxes == {0: ((0, 4), (0, 4), (0, 4)), 1: None}  # low-res (0,2) x2 on every axis
    cascade.predict(image)
    assert cascade.last_report.organs["A"]["box"] == [[-1, 5], [-1, 5], [-1, 5]]
    assert cascade.last_report.organs["B"] == {"found": False, "fallback": False}
