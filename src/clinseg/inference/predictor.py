"""Apply a trained run to new images: ``clinseg predict RUN INPUT_DIR OUT_DIR``.

Each case is written as ``OUT_DIR/<case>/<structure>.nii.gz`` (uint8 masks, the input's geometry) and,
for exclusive classes, ``OUT_DIR/<case>.nii.gz`` (label map). A case folder appears only once all of its
files are written (written in a hidden temporary folder, then renamed), so an interrupted batch never
leaves a partial case behind; the temporary folders of a killed run are removed by the next prediction into
the same folder. Case and structure names become file names: one that is not a safe file name
(:func:`clinseg.names.check_name`) is refused. Inputs are only read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clinseg.data.dataset import CaseRecord
from clinseg.data.laterality import swap_permutation
from clinseg.data.loading import load_image, normalize_intensity
from clinseg.data.preprocess import prepare_image, restore_probabilities
from clinseg.data.resize import lowres_shape, resize_image, resize_masks
from clinseg.errors import CheckpointError, ConfigError, DatasetError
from clinseg.inference.backend_choice import BackendChoice, choose_backend
from clinseg.inference.backends import Backend, check_backend_name
from clinseg.inference.inputs import find_cases
from clinseg.inference.postprocess import (
    keep_largest_components,
    threshold,
    to_label_map,
)
from clinseg.inference.sliding_window import default_batch_size, predict_probabilities
from clinseg.io.atomic import atomic_folder, ensure_folder, remove_stale_temporaries
from clinseg.io.image import Geometry, write_image
from clinseg.models import create_model
from clinseg.names import check_name, check_names
from clinseg.planning.plan import Plan, load_plan
from clinseg.progress import track
from clinseg.training.calibration import read_thresholds
from clinseg.training.checkpoint import load_checkpoint, restore
from clinseg.training.config import TrainConfig, load_config
from clinseg.training.device import select_device

log = logging.getLogger(__name__)


def probabilities_to_masks(probs: np.ndarray, activation: str, thresholds: float | Sequence[float] = 0.5) -> np.ndarray:
    """``(N[+1], Z, Y, X)`` probabilities -> ``(N, Z, Y, X)`` uint8 masks.

    Sigmoid outputs are thresholded per class (scalar or one threshold per class); softmax outputs
    (background first) become one-hot masks of the arg-max.
    """
    if activation == "softmax":
        labels = to_label_map(probs, "softmax")
        return np.stack([labels == c for c in range(1, probs.shape[0])]).astype(np.uint8)
    return threshold(probs, thresholds)


@dataclass
class Predictor:
    """A trained network with what is needed to apply it (config, structure and channel names, device)."""

    model: torch.nn.Module
    config: TrainConfig
    structures: tuple[str, ...]
    channels: tuple[str, ...]
    device: torch.device
    #: each structure's value in the dataset's label maps (``RUN/run.json``); ``None``: 1, 2, ... in order
    label_values: tuple[int, ...] | None = None
    #: one threshold per sigmoid output chosen on the validation cases (``RUN/thresholds.json``, written by
    #: ``calibrate: true``); ``None``: ``config.threshold`` for every output
    thresholds: tuple[float, ...] | None = None
    #: the run's plan (``RUN/plan.json``): inputs are cropped, resampled and normalised as in training and
    #: the masks returned on the input grid; ``None``: an unplanned run (each image's own grid)
    plan: Plan | None = None
    #: what runs the network on the CPU: ``torch``, ``auto`` (the fastest here, calibrated once per network
    #: and machine, cached) or an exported engine by name (:mod:`clinseg.inference.backend_choice`); chosen at
    #: the first prediction; on a GPU always torch
    backend: str = "torch"
    _choice: tuple[str, BackendChoice] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto",
                 backend: str = "torch") -> Predictor:
        """Load ``RUN/checkpoints/<checkpoint>.pt`` with the run's saved configuration."""
        run_dir = Path(run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise CheckpointError(f"{run_dir}: not a clinseg run folder (no config.yaml)")
        cfg = load_config(run_dir / "config.yaml")
        info = json.loads((run_dir / "fingerprint.json").read_text(encoding="utf-8"))
        run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) \
            if (run_dir / "run.json").is_file() else {}
        # the network's classes: the dataset's structures, or its organs for a run that merged bilateral pairs
        structures = tuple(run_info.get("outputs") or info["structures"])
        check_names(structures, "structure name", run_dir / ("run.json" if run_info.get("outputs") else "fingerprint.json"))
        channels = tuple(info["channels"])
        dev = select_device(device)
        inputs, outputs = cfg.network_channels(len(channels), len(structures))
        model = create_model(cfg.model, inputs, outputs, **cfg.model_kwargs)
        path = run_dir / "checkpoints" / f"{checkpoint}.pt"
        restore(load_checkpoint(path, "cpu"), model, None, path)
        values = run_info.get("label_values") or {}
        label_values = tuple(int(values[s]) for s in structures) if all(s in values for s in structures) else None
        thresholds = read_thresholds(run_dir, structures) if cfg.label_mode == "multilabel" else None
        plan = load_plan(run_dir / "plan.json") if (run_dir / "plan.json").is_file() else None
        return cls(model.to(dev).eval(), cfg, structures, channels, dev, label_values, thresholds, plan,
                   check_backend_name(backend))

    @property
    def activation(self) -> str:
        return "sigmoid" if self.config.label_mode == "multilabel" else "softmax"

    def engine(self) -> Backend | None:
        """The exported engine that runs the network, or ``None`` for torch (the sliding window's own way);
        chosen for :attr:`backend` at the first call (:func:`~clinseg.inference.backend_choice.choose_backend`).
        """
        if check_backend_name(self.backend) == "torch":
            return None
        if self._choice is None or self._choice[0] != self.backend:
            patch = tuple(int(p) for p in self.config.patch_size)
            in_channels = self.config.network_channels(len(self.channels), len(self.structures))[0]
            choice = choose_backend(self.model, in_channels, patch, requested=self.backend,  # type: ignore[arg-type]
                                    device=self.device, batch=default_batch_size(patch, self.device))
            log.debug("the network runs on %s", choice.name)
            self._choice = (self.backend, choice)
        choice = self._choice[1]
        return None if choice.name == "torch" else choice.backend

    def predict(self, image: np.ndarray, *, mirror_axes: Sequence[int] | None = None,
                largest_component: bool | None = None, native_grid: bool = False) -> np.ndarray:
        """Segment a normalised ``(C, Z, Y, X)`` image; returns ``(N, Z, Y, X)`` uint8 masks.

        A run trained on a resampled grid (``config.resample``) segments the image on that grid; its masks
        are returned on the input grid unless ``native_grid`` (the localisation stage of a cascade uses them
        on its own grid).
        """
        return self.predict_with_probabilities(image, mirror_axes=mirror_axes, largest_component=largest_component,
                                               native_grid=native_grid)[0]

    def predict_with_probabilities(self, image: np.ndarray, *, mirror_axes: Sequence[int] | None = None,
                                   largest_component: bool | None = None,
                                   native_grid: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict`, plus the network's probabilities ``(N, Z, Y, X)`` float (per structure; the
        background of a softmax dropped) on the grid it ran on — the input grid unless ``config.resample``."""
        cfg = self.config
        if cfg.interactive:
            raise ConfigError("this run is interactive: it segments the object that clicks designate; use "
                              "'clinseg predict --clicks K' (clicks simulated from a reference) or "
                              "'clinseg interact' (a person's clicks)")
        if cfg.channels and image.shape[0] == len(self.channels) + cfg.feature_channels:
            # a network trained on a selection of channels (e.g. one MR sequence) reads that selection
            image = np.concatenate([image[list(cfg.channels)], image[len(self.channels):]])
        expected = (len(cfg.channels) or len(self.channels)) + cfg.feature_channels
        if image.shape[0] != expected:
            raise DatasetError(f"this network reads {expected} channels ({len(self.channels)} image channels"
                               + (f" + {cfg.feature_channels} feature channels: predict with its 2D-3D run"
                                  if cfg.feature_channels else "") + f"), got an image with {image.shape[0]}")
        full_shape = image.shape[1:]
        if cfg.resample:
            image = resize_image(image, lowres_shape(full_shape, cfg.resample))
        probs = predict_probabilities(
            self.model, image, tuple(cfg.patch_size), overlap=cfg.overlap, activation=self.activation,
            mirror_axes=tuple(cfg.mirror_axes if mirror_axes is None else mirror_axes), device=self.device,
            skip_background=cfg.skip_background, backend=self.engine(),
        )
        masks = probabilities_to_masks(probs, self.activation, self.thresholds or cfg.threshold)
        lcc = cfg.largest_component if largest_component is None else largest_component
        if lcc:
            masks = keep_largest_components(masks, [True] * masks.shape[0])
        if cfg.resample and not native_grid:
            masks = resize_masks(masks, full_shape)
        return masks, (probs if self.activation == "sigmoid" else probs[1:])


    def segment(self, raw: np.ndarray, geometry: Geometry, *, mirror_axes: Sequence[int] | None = None,
                largest_component: bool | None = None) -> np.ndarray:
        """Segment a ``(C, Z, Y, X)`` image with its intensities as stored; returns ``(N, Z, Y, X)`` uint8 masks
        on the input grid (see :meth:`segment_with_probabilities`)."""
        return self.segment_with_probabilities(raw, geometry, mirror_axes=mirror_axes,
                                               largest_component=largest_component)[0]

    def segment_with_probabilities(self, raw: np.ndarray, geometry: Geometry, *,
                                   mirror_axes: Sequence[int] | None = None,
                                   largest_component: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Segment a ``(C, Z, Y, X)`` image with its intensities as stored; returns masks ``(N, Z, Y, X)`` uint8
        and probabilities (per structure) on the input grid.

        A planned run crops, resamples and normalises the image as its plan says, runs the network there and
        maps the probabilities back (linear) before thresholding; each structure the plan marks as one object
        keeps its largest component (``largest_component`` True/False overrides, for all structures). Test-time
        mirroring (``mirror_axes``) uses the plan's mirror axes, swapping left and right structures. An
        unplanned run normalises the image per case and segments it on its own grid.
        """
        if self.plan is None:
            image = normalize_intensity(np.asarray(raw, dtype=np.float32), self.config.normalization)  # type: ignore[arg-type]
            masks, probs = self.predict_with_probabilities(image, mirror_axes=mirror_axes,
                                                           largest_component=largest_component)
            return masks, probs
        cfg, plan = self.config, self.plan
        warn_spacing(plan, geometry)
        prepared = prepare_image(np.asarray(raw, dtype=np.float32), geometry, plan.preprocessing())
        image = self._network_channels(prepared.image)
        axes = tuple(plan.mirror_axes) if mirror_axes else ()
        probs = predict_probabilities(
            self.model, image, tuple(cfg.patch_size), overlap=cfg.overlap, activation=self.activation,
            mirror_axes=axes, device=self.device, skip_background=cfg.skip_background,
            mirror_swap=self._mirror_swap(), backend=self.engine())
        probs = restore_probabilities(probs, prepared)
        masks = probabilities_to_masks(probs, self.activation, self.thresholds or cfg.threshold)
        if largest_component is None and not cfg.largest_component:
            keep = [s in plan.largest_component for s in self.structures]
        else:
            keep = [bool(cfg.largest_component if largest_component is None else largest_component)] * len(masks)
        if any(keep):
            masks = keep_largest_components(masks, keep)
        return masks, (probs if self.activation == "sigmoid" else probs[1:])

    def _network_channels(self, image: np.ndarray) -> np.ndarray:
        """The channels the network reads (a selection of the image's), checked."""
        cfg = self.config
        if cfg.channels and image.shape[0] == len(self.channels):
            image = image[list(cfg.channels)]
        expected = len(cfg.channels) or len(self.channels)
        if image.shape[0] != expected:
            raise DatasetError(f"this network reads {expected} channel(s), got an image with {image.shape[0]}")
        return image

    def _mirror_swap(self) -> tuple[int, list[int]] | None:
        """The output-channel permutation of a left-right flip (the plan's pairs), for test-time mirroring."""
        plan = self.plan
        if plan is None or plan.lr_axis is None or not plan.lateral_pairs:
            return None
        perm = swap_permutation(self.structures, [tuple(p) for p in plan.lateral_pairs])  # type: ignore[misc]
        return plan.lr_axis, (perm if self.activation == "sigmoid" else [0] + [1 + p for p in perm])


def warn_spacing(plan: Plan, geometry: Geometry, factor: float = 1.5) -> None:
    """Log a warning when ``geometry``'s spacing lies far (``factor`` x) outside the training cases' range."""
    if len(plan.spacing_range) != 2:
        return
    low, high = np.asarray(plan.spacing_range[0]), np.asarray(plan.spacing_range[1])
    spacing = np.asarray(geometry.spacing)
    if np.any(spacing < low / factor) or np.any(spacing > high * factor):
        log.warning("input spacing %s mm is far outside the training cases' range %s-%s mm: the network has "
                    "not seen images like this one", _mm(spacing), _mm(low), _mm(high))


def _mm(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def label_map_values(predictor: object) -> tuple[int, ...] | None:
    """The label-map values of a predictor's exclusive classes (the dataset's, else 1, 2, ... in order);
    ``None`` when its classes overlap (multi-label), so no label map is written."""
    if getattr(getattr(predictor, "config", None), "label_mode", "multilabel") != "multiclass":
        return None
    structures = predictor.structures  # type: ignore[attr-defined]
    return getattr(predictor, "label_values", None) or tuple(range(1, len(structures) + 1))


def prepare_output(out_dir: str | Path, what: str = "output folder") -> Path:
    """Create ``out_dir`` (a :class:`~clinseg.errors.ConfigError` naming it when it cannot be a folder) and
    remove the hidden temporary case folders a killed prediction left in it."""
    out_dir = ensure_folder(out_dir, what)
    for stale in remove_stale_temporaries(out_dir):
        log.info("removed %s, left by an interrupted prediction", stale)
    return out_dir


def write_case(out_dir: Path, case: str, masks: np.ndarray, structures: Sequence[str], geometry: Geometry,
               label_values: Sequence[int] | None = None) -> None:
    """Write one case's masks atomically as a folder; with ``label_values`` (one per structure, for exclusive
    classes) also ``<case>.nii.gz``, a label map in the dataset's own values.

    ``case`` and every structure name must be safe file names (:func:`clinseg.names.check_name`): a name
    such as ``../x`` would write outside ``out_dir``.
    """
    out_dir = Path(out_dir)
    check_name(case, "case id", out_dir)
    for name in structures:
        check_name(name, "structure name", out_dir)
    with atomic_folder(out_dir / case) as tmp:
        for n, name in enumerate(structures):
            write_image(masks[n], geometry, tmp / f"{name}.nii.gz")
    if label_values is not None:
        if len(label_values) != masks.shape[0]:
            raise ConfigError(f"{case}: {len(label_values)} label values for {masks.shape[0]} structures")
        labels = np.zeros(masks.shape[1:], dtype=np.uint8 if max(label_values, default=0) < 256 else np.uint16)
        for n, value in enumerate(label_values):
            labels[masks[n] > 0] = value
        write_image(labels, geometry, out_dir / f"{case}.nii.gz")


def predict_folder(predictor: Predictor, input_dir: str | Path, out_dir: str | Path, *,
                   case_options: Callable[[str], dict[str, Any]] | None = None,
                   on_case: Callable[[str, float], None] | None = None, probabilities_dir: str | Path | None = None,
                   channels: Sequence[str] | None = None, **options: object) -> list[str]:
    """Predict every case of ``input_dir`` into ``out_dir`` with a progress bar; returns the case ids.

    ``input_dir`` is a folder or one image file, read by :func:`clinseg.inference.inputs.find_cases`
    (``channels``: one file-name ending per channel, ``--channels``). ``options`` go to
    ``predictor.segment`` for every case, ``case_options(case)`` adds per-case ones (e.g. ground-truth boxes);
    ``on_case(case, seconds)`` is called after each case with its prediction time. ``probabilities_dir``
    also writes each structure's probability map (float32) as ``<probabilities_dir>/<case>/<structure>.nii.gz``,
    e.g. to choose thresholds on a precision-recall sweep.
    """
    cases = find_cases(input_dir, len(predictor.channels), channels)
    if probabilities_dir is not None and (not isinstance(predictor, Predictor) or predictor.config.resample):
        raise ConfigError("probability maps are written for single-network runs on the images' own grid only")
    out_dir = prepare_output(out_dir)
    if probabilities_dir is not None:
        prepare_output(probabilities_dir, "probability folder")
    for case, files in track(list(cases.items()), "predicting", what="cases"):
        record = CaseRecord(case, "test", tuple(files), None, {}, frozenset())
        raw, geometry = load_image(record, "none")
        start = time.perf_counter()
        kwargs = {**options, **(case_options(case) if case_options else {})}
        if probabilities_dir is None:
            masks = predictor.segment(raw, geometry, **kwargs)  # type: ignore[arg-type]
        else:
            masks, probs = predictor.segment_with_probabilities(raw, geometry, **kwargs)  # type: ignore[arg-type]
            write_case(Path(probabilities_dir), case, probs.astype(np.float32), predictor.structures, geometry)
        if on_case is not None:
            on_case(case, time.perf_counter() - start)
        write_case(out_dir, case, masks, predictor.structures, geometry, label_map_values(predictor))
    return list(cases)
