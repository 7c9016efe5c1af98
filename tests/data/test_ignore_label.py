"""nnU-Net v2's ``ignore`` label and region labels: read from dataset.json, unknown in the loss, validation
and evaluation, resampled and cached as unknown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clinseg.data.cache import build_cache
from clinseg.data.dataset import load_dataset, read_spec
from clinseg.data.intensity import ChannelNorm
from clinseg.data.loading import UNKNOWN, load_targets
from clinseg.data.preprocess import Preprocessing
from clinseg.errors import DatasetError
from clinseg.evaluation.evaluate import evaluate_predictions
from clinseg.io import Geometry, write_image
from clinseg.losses.multilabel import masked_bce, masked_soft_dice
from clinseg.training.run_data import dataset_files_key
from clinseg.training.validation import dice

GEOM = Geometry(spacing=(1.0, 1.0, 1.0), shape=(8, 10, 12))


def _dataset(root: Path, labels: dict) -> Path:
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels,
                                                   "label_mode": "multilabel", "file_ending": ".nii.gz"}))
    label_map = np.zeros(GEOM.shape, np.uint8)
    label_map[2:6, 2:5, 2:6] = 1
    label_map[2:6, 5:8, 6:10] = 2
    label_map[:, :, 11] = 3  # the ignore label along one border
    for split in ("Tr", "Ts"):
        write_image(np.random.default_rng(0).normal(size=GEOM.shape).astype(np.float32), GEOM,
                    root / f"images{split}" / f"c_0000.nii.gz")
        write_image(label_map, GEOM, root / f"labels{split}" / "c.nii.gz")
    return root


def test_ignore_and_regions_are_read_from_dataset_json(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", {"background": 0, "A": 1, "B": 2, "AB": [1, 2], "ignore": 3})
    spec = read_spec(root)
    assert spec.structures == ("A", "AB", "B") or set(spec.structures) == {"A", "B", "AB"}
    assert spec.ignore_value == 3 and spec.regions == {"AB": (1, 2)}
    ds = load_dataset(root)
    target, annotated = load_targets(ds.train[0], spec, GEOM)
    ab = spec.structures.index("AB")
    assert annotated.all()
    assert (target[:, :, :, 11] == UNKNOWN).all()  # unknown for every structure
    assert (target[ab] == 1).sum() == (target[spec.structures.index("A")] == 1).sum() + \
        (target[spec.structures.index("B")] == 1).sum()


def test_ignore_must_be_the_highest_value_and_regions_need_multilabel(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="highest"):
        read_spec(_dataset(tmp_path / "a", {"background": 0, "ignore": 1, "A": 2}))
    root = _dataset(tmp_path / "b", {"background": 0, "A": 1, "AB": [1, 2]})
    raw = json.loads((root / "dataset.json").read_text())
    raw["label_mode"] = "multiclass"
    (root / "dataset.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="multilabel"):
        read_spec(root)


def test_unknown_voxels_have_no_loss() -> None:
    logits = torch.randn(1, 2, 4, 4, 4)
    target = (torch.rand(1, 2, 4, 4, 4) > 0.5).to(torch.uint8)
    annotated = torch.ones(1, 2, dtype=torch.bool)
    unknown = target.clone()
    unknown[..., 0] = UNKNOWN
    changed = logits.clone()
    changed[..., 0] = 50.0  # anything at unknown voxels
    known_part = (target[..., 1:], logits[..., 1:])
    assert masked_bce(changed, unknown, annotated) == pytest.approx(
        float(masked_bce(known_part[1], known_part[0], annotated)), rel=1e-5)
    assert masked_soft_dice(changed, unknown, annotated) == pytest.approx(
        float(masked_soft_dice(known_part[1], known_part[0], annotated)), rel=1e-5)
    assert dice(np.ones(4, bool), np.array([1, 1, 0, 0], bool), np.array([1, 1, 0, 0], bool)) == 1.0


def test_unknown_voxels_survive_the_cache_and_are_not_scored(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", {"background": 0, "A": 1, "B": 2, "ignore": 3})
    ds = load_dataset(root)
    prep = Preprocessing((2.0, 2.0, 2.0), False, (ChannelNorm("zscore"),))
    entry = build_cache(ds, ds.train, dataset_files_key(ds), prep, root=tmp_path / "cache", workers=1)["c"]
    cached = entry.load().target
    assert (cached == UNKNOWN).any() and set(np.unique(cached)) <= {0, 1, UNKNOWN}
    assert (cached[:, :, :, -1] == UNKNOWN).all()
    # a prediction that also covers the ignored border scores perfectly: those voxels are not scored
    pred = tmp_path / "pred" / "c"
    label_map = np.zeros(GEOM.shape, np.uint8)
    label_map[2:6, 2:5, 2:6] = 1
    a = (label_map == 1).astype(np.uint8)
    a[:, :, 11] = 1
    write_image(a, GEOM, pred / "A.nii.gz")
    write_image(np.zeros(GEOM.shape, np.uint8), GEOM, pred / "B.nii.gz")
    metrics = evaluate_predictions(tmp_path / "pred", root, "test")
    assert metrics.set_index("structure").loc["A", "dice"] == pytest.approx(1.0)
