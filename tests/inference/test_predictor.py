"""Turning probabilities into masks, and grouping an input folder into cases."""

from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import DatasetError
from clinseg.inference.predictor import (
    Predictor,
    find_cases,
    label_map_values,
    probabilities_to_masks,
    write_case,
)
from clinseg.io import Geometry, read_image, write_image
from clinseg.training.config import TrainConfig


def test_sigmoid_threshold_per_class() -> None:
    probs = np.array([0.2, 0.6], np.float16).reshape(2, 1, 1, 1) * np.ones((2, 1, 1, 2), np.float16)
    assert probabilities_to_masks(probs, "sigmoid", 0.5)[:, 0, 0, 0].tolist() == [0, 1]
    assert probabilities_to_masks(probs, "sigmoid", [0.1, 0.7])[:, 0, 0, 0].tolist() == [1, 0]


def test_softmax_argmax_without_background() -> None:
    probs = np.zeros((3, 1, 1, 3), np.float32)
    probs[0, ..., 0] = 1  # background
    probs[1, ..., 1] = 1
    probs[2, ..., 2] = 1
    masks = probabilities_to_masks(probs, "softmax")
    assert masks.shape == (2, 1, 1, 3)
    assert masks[0, 0, 0].tolist() == [0, 1, 0] and masks[1, 0, 0].tolist() == [0, 0, 1]


def test_find_cases_groups_channels_and_reports_missing(tmp_path: Path) -> None:
    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    for name in ("a_0000", "a_0001", "b_0000"):
        write_image(np.zeros((2, 2, 2), np.float32), geom, tmp_path / f"{name}.nii.gz")
    assert list(find_cases(tmp_path, 1)) == ["a", "b"]
    with pytest.raises(DatasetError, match=r"case 'b' lacks channel\(s\) \[1\] of 2"):
        find_cases(tmp_path, 2)
    with pytest.raises(DatasetError, match="input folder not found"):
        find_cases(tmp_path / "nope", 1)


def test_label_map_holds_the_dataset_label_values(tmp_path: Path) -> None:
    masks = np.zeros((2, 2, 2, 2), np.uint8)
    masks[0, 0, 0, 0] = masks[1, 1, 1, 1] = 1
    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    write_case(tmp_path, "c", masks, ["necrosis", "enhancing"], geom, [1, 4])
    labels = read_image(tmp_path / "c.nii.gz").array
    assert labels[0, 0, 0] == 1 and labels[1, 1, 1] == 4 and int(labels.sum()) == 5
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["enhancing.nii.gz", "necrosis.nii.gz"]
    write_case(tmp_path, "d", masks, ["a", "b"], geom)  # overlapping classes: masks only
    assert not (tmp_path / "d.nii.gz").exists()


def test_label_map_values_follow_the_run() -> None:
    def predictor(mode: str, values: tuple[int, ...] | None) -> Predictor:
        import torch

        return Predictor(torch.nn.Identity(), TrainConfig(label_mode=mode), ("x", "y"), ("T1",),
                         torch.device("cpu"), values)

    assert label_map_values(predictor("multiclass", (2, 5))) == (2, 5)
    assert label_map_values(predictor("multiclass", None)) == (1, 2)  # runs from before run.json had values
    assert label_map_values(predictor("multilabel", (2, 5))) is None
