"""A trained interactive network applied to an image and clicks: the one place that turns clicks into a mask.

Used by validation during training, by ``clinseg predict --clicks`` (simulated clicks), and by the viewer
(``clinseg interact``, a person's clicks). The network reads the normalised image channels plus the two
click maps of :meth:`Guidance.maps` and outputs the probability of the clicked object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clinseg.data.dataset import CaseRecord
from clinseg.data.loading import load_image
from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.predictor import Predictor
from clinseg.inference.sliding_window import predict_probabilities
from clinseg.interactive.clicks import Point
from clinseg.interactive.guidance import (
    ClickSettings,
    Guidance,
    first_round,
    next_round,
    slice_axis_of,
)
from clinseg.io.image import Geometry, strip_ending
from clinseg.training.config import TrainConfig

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")

#: A simulated session: the mask after each round of clicks, and the clicks given up to that round.
Rounds = list[tuple[np.ndarray, Guidance]]


@dataclass
class InteractiveNetwork:
    """An interactive run's network with the settings needed to apply it."""

    model: torch.nn.Module
    config: TrainConfig
    structures: tuple[str, ...]
    channels: tuple[str, ...]
    device: torch.device

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> InteractiveNetwork:
        """Load an interactive run (``clinseg train --method interactive``); other runs are a ConfigError."""
        predictor = Predictor.from_run(run_dir, checkpoint, device)
        return cls.from_predictor(predictor, str(run_dir))

    @classmethod
    def from_predictor(cls, predictor: Predictor, source: str = "run") -> InteractiveNetwork:
        if not predictor.config.interactive:
            raise ConfigError(f"{source}: not an interactive run (train it with --method interactive)")
        return cls(predictor.model, predictor.config, predictor.structures, predictor.channels, predictor.device)

    @property
    def settings(self) -> ClickSettings:
        return ClickSettings.from_dict(self.config.interactive)

    @property
    def slice_axis(self) -> int | None:
        """0 for an axial slice-wise network (patches ``[1, H, W]``), None for a 3-D network."""
        return slice_axis_of(self.config.patch_size)

    @property
    def normalization(self) -> str:
        return self.config.normalization

    def load_image(self, path: str | Path) -> tuple[np.ndarray, Geometry]:
        """Read and normalise an image as in training: one file, or the ``_0000`` file of a multi-channel case
        whose other channels lie beside it. Returns ``((C, Z, Y, X) float32, geometry)``."""
        path = Path(path)
        files = [path]
        match = _CHANNEL_RE.match(strip_ending(path.name))
        if len(self.channels) > 1:
            if not match:
                raise DatasetError(f"{path}: this run reads {len(self.channels)} channels; give the _0000 file "
                                   "of a case whose _0001.. files lie beside it")
            ending = path.name[len(strip_ending(path.name)):]
            files = [path.with_name(f"{match['case']}_{c:04d}{ending}") for c in range(len(self.channels))]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f"image file(s) not found: {', '.join(missing)}")
        case = match["case"] if match else strip_ending(path.name)
        return load_image(CaseRecord(case, "test", tuple(files), None, {}, frozenset()),  # type: ignore[arg-type]
                          self.normalization)

    def probabilities(self, image: np.ndarray, guidance: Guidance, *, slices: Sequence[int] | None = None,
                      previous: np.ndarray | None = None) -> np.ndarray:
        """``(Z, Y, X)`` probability of the object designated by ``guidance`` on a normalised image.

        For a slice-wise network, ``slices`` limits the work to those slices along :attr:`slice_axis` (the
        viewer recomputes only the clicked slice); the others are taken from ``previous`` (zeros if None).
        """
        if image.ndim != 4 or image.shape[0] != len(self.channels):
            raise DatasetError(f"expected a ({len(self.channels)}, Z, Y, X) image, got shape {image.shape}")
        shape = image.shape[1:]
        inputs = np.concatenate([image, guidance.maps(shape, self.settings.sigma, self.slice_axis)])
        patch = tuple(self.config.patch_size)
        if slices is None or self.slice_axis is None:
            return predict_probabilities(self.model, inputs, patch, overlap=self.config.overlap,
                                         activation="sigmoid", device=self.device, progress=False)[0]
        axis = self.slice_axis
        out = np.zeros(shape, np.float32) if previous is None else previous.astype(np.float32, copy=True)
        for index in slices:
            where = tuple(slice(index, index + 1) if a == axis else slice(None) for a in range(3))
            out[where] = predict_probabilities(self.model, inputs[(slice(None), *where)], patch,
                                               overlap=self.config.overlap, activation="sigmoid",
                                               device=self.device, progress=False)[0]
        return out

    def segment(self, image: np.ndarray, fg: Sequence[Point], bg: Sequence[Point], *,
                slices: Sequence[int] | None = None, previous: np.ndarray | None = None) -> np.ndarray:
        """``(Z, Y, X)`` uint8 mask of the object the clicks designate (``(z, y, x)`` points)."""
        guidance = Guidance([tuple(p) for p in fg], [tuple(p) for p in bg])
        probs = self.probabilities(image, guidance, slices=slices, previous=previous)
        return (probs >= self.config.threshold).astype(np.uint8)

    def simulate(self, image: np.ndarray, target: np.ndarray, clicks: int,
                 spacing: Sequence[float] | None = None) -> Rounds:
        """Simulated session on one structure: see :func:`simulate_session`."""
        settings = self.settings

        def segment(guidance: Guidance) -> np.ndarray:
            return self.segment(image, guidance.fg, guidance.bg)

        return simulate_session(segment, target, clicks, self.slice_axis, spacing=spacing,
                                min_size=settings.min_size)


def simulate_session(segment: Callable[[Guidance], np.ndarray], target: np.ndarray, clicks: int,
                     slice_axis: int | None, *, spacing: Sequence[float] | None = None,
                     min_size: int = 1) -> Rounds:
    """A person's session simulated from the reference ``target`` with ``clicks`` clicks per slice
    (slice-wise network) or per volume (3-D network): round 1 clicks the innermost point of the object,
    each further round clicks the largest error of the previous result (seed 002 §2.3, §3.3).

    Returns the mask and the clicks after each round; a round that finds nothing left to correct ends
    the session early (its result repeats for the remaining rounds, so the list always has ``clicks`` items).
    """
    if clicks < 1:
        raise ConfigError(f"the click budget must be >= 1, got {clicks}")
    guidance = first_round(target, slice_axis, spacing)
    mask = segment(guidance)
    rounds: Rounds = [(mask, Guidance(list(guidance.fg), list(guidance.bg)))]
    for _ in range(1, clicks):
        if next_round(guidance, target, mask, slice_axis, spacing=spacing, min_size=min_size):
            mask = segment(guidance)
        rounds.append((mask, Guidance(list(guidance.fg), list(guidance.bg))))
    return rounds
