"""Apply a 2D-3D run (seed 001 §2.2.1): the three 2D networks, then the 3D network on image + their outputs.

At inference nothing is read from the training feature cache: the 2D networks run on the whole volume (the
thesis: "Inference runs the three 2D networks then the 3D network").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.data.loading import normalize_intensity
from clinseg.errors import CheckpointError
from clinseg.inference.predictor import Predictor
from clinseg.io.image import Geometry
from clinseg.training.config import TrainConfig
from clinseg.training.two_d_three_d import PLANES, TWOD3D_FILE, plane_features


@dataclass
class TwoDThreeDPredictor:
    """The 2D networks by plane and the 3D network reading their features."""

    planes: dict[str, Predictor]
    net3d: Predictor

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> TwoDThreeDPredictor:
        run_dir = Path(run_dir)
        if not (run_dir / TWOD3D_FILE).is_file():
            raise CheckpointError(f"{run_dir}: not a 2D-3D run (no {TWOD3D_FILE})")
        planes = {plane: Predictor.from_run(run_dir / plane, checkpoint, device) for plane in PLANES}
        return cls(planes, Predictor.from_run(run_dir / "net3d", checkpoint, device))

    def segment(self, raw: np.ndarray, geometry: Geometry, **options: Any) -> np.ndarray:
        """Segment a ``(C, Z, Y, X)`` image with its intensities as stored (normalised per case as the networks
        were trained); masks ``(N, Z, Y, X)`` on the input grid."""
        return self.predict(normalize_intensity(np.asarray(raw, dtype=np.float32), self.config.normalization),  # type: ignore[arg-type]
                            **options)

    # what predict_folder needs from a predictor
    @property
    def config(self) -> TrainConfig:
        return self.net3d.config

    @property
    def structures(self) -> tuple[str, ...]:
        return self.net3d.structures

    @property
    def channels(self) -> tuple[str, ...]:
        return self.net3d.channels

    def features(self, image: np.ndarray) -> np.ndarray:
        """The 2D networks' outputs before the activation, concatenated in plane order."""
        return np.concatenate([plane_features(self.planes[p], image).astype(np.float32) for p in PLANES])

    def predict(self, image: np.ndarray, *, largest_component: bool | None = None,
                mirror_axes: Sequence[int] | None = None) -> np.ndarray:
        """Segment a normalised ``(C, Z, Y, X)`` image; returns ``(N, Z, Y, X)`` uint8 masks."""
        stacked = np.concatenate([image, self.features(image)])
        return self.net3d.predict(stacked, largest_component=largest_component, mirror_axes=mirror_axes)
