"""Per-voxel feature maps stored per case, appended to the image channels (the 2D features of a 2D-3D model).

Seed 001 §2.2.1 trains a 3D network "using the extracted 2D features as additional channels to the input
image patches": the 2D networks' final-layer outputs are computed once for every case and "saved in files",
so the 3D training never runs the 2D networks. A feature folder holds::

    FOLDER/features.json    {"channels": K, "source": run folder, "checkpoint": sha256 of the weights, ...}
    FOLDER/<case>.npy       (K, Z, Y, X) float16 on the case's image grid

``TrainConfig.features`` lists such folders; training appends their channels after the image channels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import DatasetError
from clinseg.io.atomic import atomic_path, write_text

FEATURES_FILE = "features.json"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (identifies the network weights the features came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_info(folder: str | Path) -> dict[str, Any]:
    """``features.json`` of a feature folder; :class:`DatasetError` when the folder is not one."""
    path = Path(folder) / FEATURES_FILE
    if not path.is_file():
        raise DatasetError(f"{folder}: not a feature folder (no {FEATURES_FILE}); extract the features first")
    return json.loads(path.read_text(encoding="utf-8"))


def feature_channels(folders: Sequence[str | Path]) -> int:
    """Total number of feature channels of the folders."""
    return sum(int(read_info(folder)["channels"]) for folder in folders)


def prepare_folder(folder: str | Path, info: dict[str, Any]) -> bool:
    """Make ``folder`` hold features described by ``info``; returns True when its existing files are still
    valid (same ``info``: same source weights and settings), False when they were cleared or it is new."""
    folder = Path(folder)
    path = folder / FEATURES_FILE
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")) == info:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.npy"):
        stale.unlink()
    write_text(path, json.dumps(info, indent=2))
    return False


def has_case(folder: str | Path, case: str) -> bool:
    return (Path(folder) / f"{case}.npy").is_file()


def write_case(folder: str | Path, case: str, features: np.ndarray) -> None:
    """Store one case's ``(K, Z, Y, X)`` features as float16, atomically."""
    with atomic_path(Path(folder) / f"{case}.npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, features.astype(np.float16, copy=False))


def read_case(folders: Sequence[str | Path], case: str, shape: Sequence[int]) -> np.ndarray:
    """The features of ``case`` from every folder, concatenated, ``(K, *shape)`` float32."""
    arrays = []
    for folder in folders:
        path = Path(folder) / f"{case}.npy"
        if not path.is_file():
            raise DatasetError(f"{path}: no features for case {case!r}; extract the features first")
        array = np.load(path, allow_pickle=False)
        if tuple(array.shape[1:]) != tuple(shape):
            raise DatasetError(f"{path}: features of shape {array.shape[1:]} do not match the image {tuple(shape)}")
        arrays.append(array.astype(np.float32))
    return np.concatenate(arrays) if arrays else np.zeros((0, *shape), np.float32)
