"""The 2D-3D model: three plane networks, cached feature extraction, the 3D network, inference, receptive field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data import features as store
from clinseg.errors import DatasetError
from clinseg.inference.cascade import load_predictor
from clinseg.inference.predictor import Predictor, predict_folder
from clinseg.inference.two_d_three_d import TwoDThreeDPredictor
from clinseg.io import read_image
from clinseg.training.config import TrainConfig
from clinseg.training.two_d_three_d import extract_features, plane_config, train_2d3d

BASE = TrainConfig(model="unet3d", model_kwargs={"features": [4, 8]}, patch_size=[8, 8, 8], batch_size=2,
                   val_cases=1, val_every=2, checkpoint_every=1, threads=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from clinseg.io import write_image
    from tests.conftest import (  # the tiny dataset of the shared fixture, built once here
        GEOM,
        _blob,
    )

    root = tmp_path_factory.mktemp("tiny") / "ds"
    rng = np.random.default_rng(0)
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps({"name": "Tiny", "channel_names": {"0": "T1"},
                                                   "labels": {"A": 1, "B": 2}, "label_mode": "multilabel"}))
    for split, prefix, n in (("Tr", "case", 3), ("Ts", "test", 1)):
        for i in range(n):
            write_image(rng.normal(size=GEOM.shape).astype(np.float32), GEOM,
                        root / f"images{split}" / f"{prefix}_{i}_0000.nii.gz")
            write_image(_blob(GEOM.shape, (4, 5, 4), 2), GEOM, root / f"structures{split}" / f"{prefix}_{i}" / "A.nii.gz")
            write_image(_blob(GEOM.shape, (4, 5, 8), 2), GEOM, root / f"structures{split}" / f"{prefix}_{i}" / "B.nii.gz")
    out = tmp_path_factory.mktemp("runs") / "twod3d"
    train_2d3d(root, out, BASE, iterations=2, model2d_kwargs={"features": [4, 8]}, size2d=8)
    return root, out


def test_plane_configs_slice_along_their_axis():
    assert plane_config(BASE, "axial").patch_size == [1, 64, 64]
    assert plane_config(BASE, "coronal", size=8).patch_size == [8, 1, 8]
    sagittal = plane_config(BASE, "sagittal", size=8)
    assert sagittal.patch_size == [8, 8, 1] and sagittal.model == "unet2d" and sagittal.model_kwargs["plane"] == "sagittal"


def test_features_are_stored_per_case_and_plane(run: tuple[Path, Path]):
    dataset, out = run
    for plane in ("axial", "coronal", "sagittal"):
        folder = out / "features" / plane
        assert store.read_info(folder)["channels"] == 2  # the plane network's outputs (A, B) before sigmoid
        for case in ("case_0", "case_1", "case_2"):
            array = np.load(folder / f"{case}.npy")
            assert array.shape == (2, 8, 10, 12) and array.dtype == np.float16
    net3d = Predictor.from_run(out / "net3d")
    assert net3d.config.feature_channels == 6
    first_conv = next(m for m in net3d.model.modules() if hasattr(m, "in_channels"))
    assert first_conv.in_channels == 7  # 1 MR channel + 3 planes x 2 features


def test_feature_cache_is_reused_and_invalidated(run: tuple[Path, Path], tmp_path: Path):
    dataset, out = run
    folder = tmp_path / "features"
    assert extract_features(dataset, out / "axial", folder) == 3
    stamp = (folder / "case_0.npy").stat().st_mtime_ns
    assert extract_features(dataset, out / "axial", folder) == 0  # same weights: nothing recomputed
    assert (folder / "case_0.npy").stat().st_mtime_ns == stamp
    info = json.loads((folder / "features.json").read_text())
    info["checkpoint"] = "other weights"
    (folder / "features.json").write_text(json.dumps(info))
    assert extract_features(dataset, out / "axial", folder) == 3  # other weights: recomputed


def test_inference_runs_2d_then_3d(run: tuple[Path, Path], tmp_path: Path):
    dataset, out = run
    predictor = load_predictor(out)
    assert isinstance(predictor, TwoDThreeDPredictor)
    predict_folder(predictor, dataset / "imagesTs", tmp_path / "pred")
    assert read_image(tmp_path / "pred" / "test_0" / "A.nii.gz").array.shape == (8, 10, 12)
    with pytest.raises(DatasetError, match="7 channels"):
        Predictor.from_run(out / "net3d").predict(np.zeros((1, 8, 10, 12), np.float32))


def test_receptive_fields_are_recorded(run: tuple[Path, Path]):
    _, out = run
    field = json.loads((out / "twod3d.json").read_text())["receptive_field"]
    assert field["3d"] == 18 and set(field["2d"]) == {"axial", "coronal", "sagittal"}  # 2-level unet3d: 18
    assert field["2d-3d_zyx"] == [field["3d"] + field["2d"]["axial"] - 1] * 3
