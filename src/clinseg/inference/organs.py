"""Predict organs at risk with seed 001's pipeline: one or several runs (axial, coronal, sagittal), their
majority vote, and the anatomy rules (:mod:`clinseg.inference.anatomy`), written per dataset structure.

A run of ``--method oar2d`` outputs organs (both eyes in ``Eye``); any other multilabel run outputs the
dataset's structures, which are merged into organs here (``Eye_L`` or ``Eye_R`` -> ``Eye``) so the same rules
apply. The output always has the dataset's structures: with ``postprocess="none"`` the only step is the
split of bilateral organs at the brain's mid-plane; with ``"anatomy"`` every rule runs (seed 001 §4.2.2).

The fat rule of the optic nerves compares intensities within the image, so it reads the first channel as
stored (the seed divides by the image maximum, a scale that does not change the rule), not the normalised
network input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from clinseg.data.dataset import CaseRecord
from clinseg.data.loading import load_image
from clinseg.data.relations import Relations, parse_relations
from clinseg.errors import CheckpointError, ConfigError
from clinseg.inference.anatomy import (
    AnatomyRoles,
    AnatomySettings,
    list_rules,
    postprocess_case,
)
from clinseg.inference.predictor import (
    Predictor,
    find_cases,
    prepare_output,
    write_case,
)
from clinseg.io.image import Geometry
from clinseg.progress import track
from clinseg.training.config import TrainConfig

__all__ = ["OrganPipeline", "Postprocess", "predict_organs_folder"]

Postprocess = Literal["none", "anatomy"]


def _run_info(run_dir: Path) -> dict:
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a clinseg run folder (no config.yaml)")
    path = run_dir / "run.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if "relations" not in info or "structures" not in info:
        raise CheckpointError(f"{run_dir}: run.json lacks the dataset's structures and relations (a run trained "
                              "before they were recorded: retrain it to use --postprocess/--ensemble)")
    return info


@dataclass
class OrganPipeline:
    """Runs whose organ masks are voted and post-processed into the dataset's structures.

    Attributes
    ----------
    predictors : one per run (e.g. axial, coronal, sagittal), same dataset and channels.
    structures : the dataset's structure names (output order).
    relations : the dataset's relations (``bilateral`` says which structures are the sides of an organ).
    settings : anatomy rules and their parameters.
    """

    predictors: list[Predictor]
    structures: tuple[str, ...]
    relations: Relations
    settings: AnatomySettings

    @classmethod
    def from_runs(cls, runs: Sequence[str | Path], postprocess: Postprocess = "anatomy", checkpoint: str = "best",
                  device: str = "auto", settings: AnatomySettings | None = None) -> OrganPipeline:
        """Load the runs; they must have been trained on the same structures and channels."""
        if not runs:
            raise ConfigError("no run given")
        infos = [_run_info(Path(r)) for r in runs]
        predictors = [Predictor.from_run(r, checkpoint, device) for r in runs]
        for run, info, predictor in zip(runs[1:], infos[1:], predictors[1:]):
            if info["structures"] != infos[0]["structures"] or predictor.channels != predictors[0].channels:
                raise ConfigError(f"{run}: trained on other structures or channels than {runs[0]}; an ensemble "
                                  "votes runs of one dataset")
        if any(p.activation != "sigmoid" for p in predictors):
            raise ConfigError("the anatomy rules need multilabel runs (one sigmoid per organ)")
        structures = tuple(infos[0]["structures"])
        relations = parse_relations(infos[0]["relations"], structures, f"{runs[0]}/run.json")
        if postprocess not in ("none", "anatomy"):
            raise ConfigError(f"postprocess must be 'none' or 'anatomy', got {postprocess!r}")
        if postprocess == "none":
            settings = AnatomySettings(disabled=tuple(list_rules()))
        return cls(predictors, structures, relations, settings or AnatomySettings())

    @property
    def channels(self) -> tuple[str, ...]:
        """The image channels every run reads."""
        return self.predictors[0].channels

    @property
    def config(self) -> TrainConfig:
        """The first run's configuration (its intensity normalisation is every run's input)."""
        return self.predictors[0].config

    @property
    def roles(self) -> AnatomyRoles:
        return AnatomyRoles(bilateral=dict(self.relations.bilateral))

    def organ_masks(self, predictor: Predictor, masks: np.ndarray) -> dict[str, np.ndarray]:
        """One run's ``(N, Z, Y, X)`` output as ``{organ: bool mask}`` (sides merged when it outputs them)."""
        named = {name: masks[n].astype(bool) for n, name in enumerate(predictor.structures)}
        organs: dict[str, np.ndarray] = {}
        for organ in self.relations.entities(self.structures):
            if organ in named:
                organs[organ] = named[organ]
            else:
                members = [named[m] for m in self.relations.members(organ) if m in named]
                if members:
                    organs[organ] = np.logical_or.reduce(members)
        return organs

    def segment(self, raw: np.ndarray, geometry: Geometry, **_: object) -> np.ndarray:
        """``(N, Z, Y, X)`` uint8 masks in :attr:`structures` order of a ``(C, Z, Y, X)`` image with its intensities
        as stored: each run segments it as it was trained (planned or not), then the vote and the rules (the
        fat rule reads the stored first channel)."""
        mask_sets = [self.organ_masks(p, p.segment(raw, geometry)) for p in self.predictors]
        out = postprocess_case(mask_sets, raw[0], geometry, self.roles, self.settings)
        empty = np.zeros(raw.shape[1:], dtype=np.uint8)
        return np.stack([out[name].astype(np.uint8) if name in out else empty for name in self.structures])


def predict_organs_folder(pipeline: OrganPipeline, input_dir: str | Path, out_dir: str | Path, *,
                          on_case: Callable[[str, float], None] | None = None) -> list[str]:
    """Predict every case of ``input_dir`` into ``out_dir/<case>/<structure>.nii.gz`` (atomically per case)."""
    first = pipeline.predictors[0]
    cases = find_cases(input_dir, len(first.channels))
    out_dir = prepare_output(out_dir)
    for case, files in track(list(cases.items()), "predicting organs"):
        record = CaseRecord(case, "test", tuple(files), None, {}, frozenset())
        raw, geometry = load_image(record, "none")  # read once: the fat rule needs the stored intensities
        start = time.perf_counter()
        masks = pipeline.segment(raw, geometry)
        if on_case is not None:
            on_case(case, time.perf_counter() - start)
        write_case(out_dir, case, masks, pipeline.structures, geometry)
    return list(cases)


def ensemble_runs(run: str | Path, ensemble: Sequence[str] | None) -> list[Path]:
    """``run`` followed by the ``ensemble`` runs (comma-separated items allowed), each once, in order."""
    out = [Path(run)]
    for item in ensemble or []:
        for part in str(item).split(","):
            path = Path(part.strip())
            if part.strip() and path.resolve() not in {p.resolve() for p in out}:
                out.append(path)
    return out


def uses_organs(run_dir: str | Path) -> bool:
    """Whether a run's outputs are merged organs (its predictions need the split into sides)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return False
    info: Mapping = json.loads(path.read_text(encoding="utf-8"))
    return bool(info.get("structures")) and list(info.get("outputs", [])) != list(info["structures"])
