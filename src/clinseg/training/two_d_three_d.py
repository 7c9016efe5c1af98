"""The 2D-3D model of seed 001 §2.2.1: three 2D networks (axial, coronal, sagittal) whose final-layer
outputs feed a 3D network as extra input channels, trained in three steps into one run folder.

::

    RUN/twod3d.json           planes, receptive fields: what ``clinseg predict RUN`` needs
    RUN/axial/, coronal/, sagittal/   the 2D networks: normal runs on slices one voxel thick
    RUN/features/<plane>/     their outputs before the activation, per case (cached, see data/features.py)
    RUN/net3d/                the 3D network: a normal run reading image + 2D-feature channels

The steps follow the thesis: "1. Train three versions of the 2D network respectively on axial, coronal and
sagittal slices. 2. For all images of the training database, extract the learned features from final
convolutional layers (without softmax normalization) ... and save their outputs in files. 3. Train the 3D
model using the extracted 2D features as additional channels to the input image patches." Each step resumes;
features are recomputed only when a 2D network's weights changed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from clinseg.data import features as store
from clinseg.data.dataset import load_dataset
from clinseg.data.loading import load_image
from clinseg.inference.predictor import Predictor
from clinseg.inference.sliding_window import predict_probabilities
from clinseg.io.atomic import write_text
from clinseg.models.receptive_field import receptive_field
from clinseg.models.unet2d import PLANE_AXES
from clinseg.progress import track
from clinseg.training.checkpoint import TrainState
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.preflight import check_dataset_for_training
from clinseg.training.resume import ResumePolicy
from clinseg.training.run import train

TWOD3D_FILE = "twod3d.json"
PLANES: tuple[str, ...] = tuple(PLANE_AXES)


def slice_patch(size: int, plane: str) -> list[int]:
    """A ``size`` x ``size`` slice patch, one voxel thick along the plane's axis."""
    return [1 if axis == PLANE_AXES[plane] else size for axis in range(3)]


def plane_config(base: TrainConfig, plane: str, model: str = "unet2d", size: int = 64,
                 model_kwargs: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of the ``plane`` 2D network: ``base`` with ``overrides`` (e.g. the 2D batch size and
    target weights), the 2D network and a slice patch."""
    cfg = dataclasses.replace(unplanned(base), **(overrides or {}))
    return dataclasses.replace(cfg, model=model, model_kwargs={**(model_kwargs or {}), "plane": plane},
                               patch_size=slice_patch(size, plane), features=[], feature_channels=0)


def plane_features(predictor: Predictor, image: Any) -> Any:
    """``(K, Z, Y, X)`` outputs of a 2D network's final layer before the activation, on a whole volume."""
    return predict_probabilities(predictor.model, image, tuple(predictor.config.patch_size),
                                 overlap=predictor.config.overlap, activation="none", device=predictor.device)


def extract_features(dataset_dir: str | Path, network_run: Path, folder: Path, device: str = "auto") -> int:
    """Store the features of ``network_run`` for every training case of the dataset into ``folder``
    (kept when the network's weights are unchanged); returns the number of cases computed now."""
    dataset = load_dataset(dataset_dir)
    predictor = Predictor.from_run(network_run, "best", device)
    checkpoint = network_run / "checkpoints" / "best.pt"
    info = {"channels": predictor.model.out_channels, "source": str(network_run.resolve()),
            "checkpoint": store.file_sha256(checkpoint), "normalization": predictor.config.normalization}
    store.prepare_folder(folder, info)
    todo = [r for r in dataset.train if not store.has_case(folder, r.case_id)]
    for record in track(todo, f"features {network_run.name}"):
        image, _ = load_image(record, predictor.config.normalization)  # type: ignore[arg-type]
        store.write_case(folder, record.case_id, plane_features(predictor, image))
    return len(todo)


def effective_receptive_field(run_dir: Path, device: str = "auto") -> dict[str, Any]:
    """Receptive fields in voxels: each 2D network's in-plane one, the 3D network's, and the 2D-3D model's
    per axis ``(Z, Y, X)``: a voxel sees the 3D field, and every voxel of it brings the 2D context of the
    planes through it, so along an axis the extent is the 3D field plus the largest in-plane field of the
    planes containing that axis, minus one."""
    fields2d = {plane: receptive_field(Predictor.from_run(run_dir / plane, "best", device).model)
                for plane in PLANES}
    field3d = receptive_field(Predictor.from_run(run_dir / "net3d", "best", device).model)
    effective = [field3d + max(fields2d[p] for p in PLANES if PLANE_AXES[p] != axis) - 1 for axis in range(3)]
    return {"2d": fields2d, "3d": field3d, "2d-3d_zyx": effective}


def train_2d3d(dataset_dir: str | Path, run_dir: str | Path, base: TrainConfig, *, iterations: int | None = None,
               model2d: str = "unet2d", size2d: int = 64, model2d_kwargs: dict[str, Any] | None = None,
               config2d: dict[str, Any] | None = None, skip_validation: bool = False,
               resume: ResumePolicy | None = None) -> dict[str, TrainState]:
    """Train the three 2D networks, extract their features, train the 3D network (``base``'s model and
    patch) on image + features; writes ``RUN/twod3d.json`` with the receptive fields. ``config2d`` holds
    TrainConfig fields that differ for the 2D networks. The dataset passes the checks of ``clinseg
    validate`` once, before the four networks (unless ``skip_validation``); ``resume`` applies to each."""
    run_dir = Path(run_dir)
    if not skip_validation:
        check_dataset_for_training(dataset_dir, run_dir)
    states: dict[str, TrainState] = {}
    folders = []
    for plane in PLANES:
        cfg2d = plane_config(base, plane, model2d, size2d, model2d_kwargs, config2d)
        states[plane] = train(dataset_dir, run_dir / plane, cfg2d, iterations=iterations, skip_validation=True,
                              resume=resume)
        folder = run_dir / "features" / plane
        extract_features(dataset_dir, run_dir / plane, folder, base.device)
        folders.append(str(folder.resolve()))
    states["net3d"] = train(dataset_dir, run_dir / "net3d", dataclasses.replace(unplanned(base), features=folders),
                            iterations=iterations, skip_validation=True, resume=resume)
    info = {"method": "2d-3d", "planes": list(PLANES), "receptive_field": effective_receptive_field(run_dir)}
    write_text(run_dir / TWOD3D_FILE, json.dumps(info, indent=2))
    return states
