"""Localise to segment (seed 003): a low-resolution localisation network finds each organ, a local organ
network segments a padded crop around it, and the result is pasted back into the full volume.

Per organ: "We first computed a low res version of the image and then segmented it using the localisation
network. We then identified the organ as the largest connected foreground region in the low res
segmentation. We then segmented the corresponding region in the full resolution image with padding on each
side of the organ" (seed 003, "Two stage segmentation"). With ``boxes`` given (ground-truth localisation)
the localisation network is skipped: the ceiling of the method.

When the localisation finds nothing, the organ is reported "not found" (empty mask) or, when the cascade
holds a fallback single-stage network, segmented by that network over the whole image; it never crashes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.data.crop import Box, bounding_box, crop, pad_box, paste, scale_box
from clinseg.data.loading import normalize_intensity
from clinseg.errors import CheckpointError
from clinseg.inference.postprocess import largest_component
from clinseg.inference.predictor import Predictor
from clinseg.io.atomic import write_text
from clinseg.io.image import Geometry
from clinseg.training.config import TrainConfig

#: The file that makes a run folder a cascade: ``{"method": "two-stage", "margin": 15, ...}``.
CASCADE_FILE = "cascade.json"


@dataclass
class CascadeReport:
    """What one cascade prediction did, per organ: ``found`` (bool), ``box`` (full-res), voxel counts."""

    organs: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    voxels_total: int = 0
    voxels_segmented: int = 0


@dataclass
class CascadePredictor:
    """A localisation run and an organ run used together.

    Attributes
    ----------
    localiser : trained on the resampled grid (``config.resample``), or None for ground-truth boxes only.
    organ : trained on organ crops (``sampler: organ-crop``).
    margin : voxels of context added to each side of the localised box (seed 003: 15).
    fallback : single-stage predictor for organs the localiser misses (None: report "not found").
    """

    localiser: Predictor | None
    organ: Predictor
    margin: int = 15
    fallback: Predictor | None = None
    last_report: CascadeReport = field(default_factory=CascadeReport)

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> CascadePredictor:
        """Load ``RUN/localiser`` and ``RUN/organ`` as described by ``RUN/cascade.json``."""
        run_dir = Path(run_dir)
        path = run_dir / CASCADE_FILE
        if not path.is_file():
            raise CheckpointError(f"{run_dir}: not a two-stage run (no {CASCADE_FILE})")
        info = json.loads(path.read_text(encoding="utf-8"))
        localiser = Predictor.from_run(run_dir / "localiser", checkpoint, device)
        organ = Predictor.from_run(run_dir / "organ", checkpoint, device)
        fallback = Predictor.from_run(info["fallback"], checkpoint, device) if info.get("fallback") else None
        return cls(localiser, organ, int(info.get("margin", 15)), fallback)

    def segment(self, raw: np.ndarray, geometry: Geometry, **options: Any) -> np.ndarray:
        """Segment a ``(C, Z, Y, X)`` image with its intensities as stored (normalised per case as the networks
        were trained); masks ``(N, Z, Y, X)`` on the input grid."""
        return self.predict(normalize_intensity(np.asarray(raw, dtype=np.float32), self.config.normalization),  # type: ignore[arg-type]
                            **options)

    # what predict_folder needs from a predictor
    @property
    def config(self) -> TrainConfig:
        return self.organ.config

    @property
    def structures(self) -> tuple[str, ...]:
        return self.organ.structures

    @property
    def channels(self) -> tuple[str, ...]:
        return self.organ.channels

    def localise(self, image: np.ndarray) -> dict[int, Box | None]:
        """Full-resolution box of each organ's largest low-resolution component (None when empty)."""
        if self.localiser is None:
            raise CheckpointError("this cascade has no localisation network; pass ground-truth boxes")
        low = self.localiser.predict(image, largest_component=False, native_grid=True)
        boxes: dict[int, Box | None] = {}
        for n in range(low.shape[0]):
            component = largest_component(low[n] > 0)
            box = bounding_box(component)
            boxes[n] = None if box is None else scale_box(box, low.shape[1:], image.shape[1:])
        return boxes

    def predict(self, image: np.ndarray, *, boxes: Mapping[int, Box | None] | None = None,
                largest_component: bool | None = None, mirror_axes: Sequence[int] | None = None) -> np.ndarray:
        """Segment a normalised ``(C, Z, Y, X)`` image; returns ``(N, Z, Y, X)`` uint8 masks.

        ``boxes`` (organ index -> unpadded full-resolution box) replaces the localisation network, e.g. with
        the reference's boxes for the ground-truth-localised ceiling. :attr:`last_report` tells what was
        found and how many voxels the organ network processed.
        """
        start = time.perf_counter()
        shape = image.shape[1:]
        found = self.localise(image) if boxes is None else dict(boxes)
        masks = np.zeros((len(self.structures), *shape), dtype=np.uint8)
        report = CascadeReport(voxels_total=int(np.prod(shape)))
        fallback_masks = None
        for n, name in enumerate(self.structures):
            box = found.get(n)
            if box is None:
                if self.fallback is not None:
                    if fallback_masks is None:
                        fallback_masks = self.fallback.predict(image, largest_component=largest_component)
                        report.voxels_segmented += report.voxels_total
                    masks[n] = fallback_masks[n]
                report.organs[name] = {"found": False, "fallback": self.fallback is not None}
                logging.getLogger(__name__).info("%s not localised%s", name,
                                                 "; single-stage fallback" if self.fallback else "")
                continue
            padded = pad_box(box, self.margin)
            segmented = self.organ.predict(crop(image, padded), largest_component=largest_component,
                                           mirror_axes=mirror_axes)
            paste(segmented[n], padded, shape, out=masks[n])
            size = int(np.prod([hi - lo for lo, hi in padded]))
            report.voxels_segmented += size
            report.organs[name] = {"found": True, "box": [list(b) for b in padded], "crop_voxels": size}
        report.seconds = time.perf_counter() - start
        self.last_report = report
        return masks


def write_cascade_info(run_dir: Path, margin: int, fallback: str | None = None) -> None:
    """Mark ``run_dir`` as a two-stage run (``localiser/`` and ``organ/`` inside)."""
    write_text(run_dir / CASCADE_FILE, json.dumps({"method": "two-stage", "margin": margin, "fallback": fallback},
                                                 indent=2))


def load_predictor(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> Any:
    """The predictor of any run folder: a cascade when it holds ``cascade.json``, the 2D networks and the 3D
    network of a 2D-3D run when it holds ``twod3d.json``, else a single network."""
    if (Path(run_dir) / CASCADE_FILE).is_file():
        return CascadePredictor.from_run(run_dir, checkpoint, device)
    from clinseg.inference.two_d_three_d import TwoDThreeDPredictor
    from clinseg.training.two_d_three_d import TWOD3D_FILE

    if (Path(run_dir) / TWOD3D_FILE).is_file():
        return TwoDThreeDPredictor.from_run(run_dir, checkpoint, device)
    return Predictor.from_run(run_dir, checkpoint, device)
