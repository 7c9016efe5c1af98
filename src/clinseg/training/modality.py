"""Training method ``2d``: seed 001's 2D model with modality-specific subnetworks, and its schedule for
training databases with missing MR sequences (§2.2.2, §2.3.3).

When every training case has every sequence, the whole network (``modality2d``) is trained at once. When
some lack sequences, the thesis trains in two steps:

1. each modality-specific subnetwork, alone (its auxiliary classification layer as output), on the images
   for which its sequence is provided;
2. the entire network, its modality-specific subnetworks starting from the step-1 weights, on the images for
   which all sequences are provided.

Run folder::

    RUN/method.json          the schedule: plane, sequences missing per case, stages and their folders
    RUN/subnet_<SEQ>/        step 1, one normal run per sequence (``channels: [k]``); split.json = its cases
    RUN/subnets_init/        the step-1 weights under the full network's names: the ``init`` run of step 2
    RUN/config.yaml, ...     step 2 (or the only stage): the whole network, a normal run in RUN itself

The final network's run is written as RUN itself, so ``clinseg predict RUN``, ``clinseg report RUN`` and
resuming work unchanged (no predictor hook); the step-1 runs are sub-folders. The full network starts
from the step-1 weights through the ordinary ``init`` mechanism (:mod:`clinseg.pretraining.transfer`), which
records in ``RUN/init.json`` which tensors were copied. Every stage resumes on its own when interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

from torch import nn

from clinseg.data.dataset import Dataset, load_dataset
from clinseg.errors import ConfigError
from clinseg.inference.predictor import Predictor
from clinseg.io.atomic import write_text
from clinseg.models.unet2d import PLANE_AXES
from clinseg.training.checkpoint import TrainState, save_checkpoint
from clinseg.training.config import TrainConfig, save_config, unplanned
from clinseg.training.methods import TRAIN_METHODS, stages_summary
from clinseg.training.preflight import check_dataset_for_training
from clinseg.training.resume import ResumePolicy
from clinseg.training.run import missing_channels, train

log = logging.getLogger(__name__)

MODEL = "modality2d"
SUBNET_MODEL = "modality2d_subnet"
METHOD_FILE = "method.json"
INIT_DIR = "subnets_init"
#: In-plane patch size when the configuration sets none: 64 x 64 slices train on a CPU.
DEFAULT_SLICE_SIZE = 64
#: Options of ``modality2d`` that ``modality2d_subnet`` shares (the rest concern the main part).
_SUBNET_OPTIONS = ("subnet_features", "norm", "plane")


def slice_patch(patch_size: list[int], axis: int, default: int = DEFAULT_SLICE_SIZE) -> list[int]:
    """A patch one voxel thick along array axis ``axis`` (0=Z axial, 1=Y coronal, 2=X sagittal).

    The in-plane sizes are those of ``patch_size`` other than its single 1 (a slice patch for another
    plane, ``[1, 64, 64]``) or other than ``axis``; ``default`` for both when ``patch_size`` is empty.

    >>> slice_patch([1, 48, 64], 1)
    [48, 1, 64]
    """
    if not patch_size:
        inplane = [default, default]
    else:
        drop = patch_size.index(1) if patch_size.count(1) == 1 else axis
        inplane = [p for i, p in enumerate(patch_size) if i != drop]
    inplane.insert(axis, 1)
    return inplane


def full_config(base: TrainConfig, plane: str) -> TrainConfig:
    """The whole network's configuration: ``modality2d`` on ``plane`` slices, 1-voxel-thick patches.
    ``base.model_kwargs`` are kept when ``base`` already names ``modality2d``."""
    if plane not in PLANE_AXES:
        raise ConfigError(f"plane must be one of {', '.join(PLANE_AXES)}, got {plane!r}")
    if base.model != MODEL:
        log.info("method 2d trains %s (configured model %s is not used)", MODEL, base.model)
    kwargs = {**(base.model_kwargs if base.model == MODEL else {}), "plane": plane}
    return dataclasses.replace(unplanned(base), model=MODEL, model_kwargs=kwargs,
                               patch_size=slice_patch(list(base.patch_size), PLANE_AXES[plane]))


def subnet_config(full: TrainConfig, channel: int) -> TrainConfig:
    """Step 1 for sequence ``channel``: its subnetwork alone (same widths, norm, plane), that channel only."""
    kwargs = {k: v for k, v in full.model_kwargs.items() if k in _SUBNET_OPTIONS}
    return dataclasses.replace(full, model=SUBNET_MODEL, model_kwargs=kwargs, channels=[channel], init="")


def missing_sequences(dataset: Dataset) -> dict[str, list[str]]:
    """Training case -> names of the sequences it lacks, for the cases that lack any."""
    spec = dataset.spec
    missing = {r.case_id: sorted(missing_channels(r, spec)) for r in dataset.train}
    return {case: [spec.channels[c] for c in gone] for case, gone in missing.items() if gone}


def _subnet_folders(channels: tuple[str, ...]) -> list[str]:
    """``subnet_<name>`` per sequence (unsafe characters replaced; the index appended on a clash)."""
    names = [f"subnet_{re.sub(r'[^A-Za-z0-9._-]', '_', c)}" for c in channels]
    return [f"{n}_{k}" if names.count(n) > 1 else n for k, n in enumerate(names)]


def gather_subnet_weights(subnet_runs: list[Path], full: TrainConfig, init_dir: Path) -> int:
    """Write the step-1 weights (``best.pt`` of each run) under the full network's names as an ``init`` run.

    Sequence ``k``'s subnetwork is ``net.<name>`` in its own run and ``net.subnets.<k>.<name>`` in the full
    network (:func:`clinseg.models.modality2d.subnet_prefix`), so the runs' subnetworks are mounted at those
    indices of a module list; the all-sequence subnetwork (index K) and the main part are left out and keep
    their initialisation. Returns the number of tensors written.
    """
    holder = nn.Module()
    holder.net = nn.Module()
    holder.net.subnets = nn.ModuleList(Predictor.from_run(run, "best", "cpu").model.net for run in subnet_runs)
    save_checkpoint(init_dir / "checkpoints" / "best.pt", holder, None, TrainState())
    save_config(full, init_dir / "config.yaml")
    write_text(init_dir / "fingerprint.json", (subnet_runs[0] / "fingerprint.json").read_text(encoding="utf-8"))
    return len(holder.state_dict())


def train_modality(dataset_dir: str | Path, run_dir: str | Path, base: TrainConfig | None = None, *,
                   plane: str = "axial", iterations: int | None = None, skip_validation: bool = False,
                   resume: ResumePolicy | None = None) -> dict[str, TrainState]:
    """Train the 2D model on ``plane`` slices with the schedule of §2.3.3; returns each stage's final state
    (``subnet_<SEQ>`` ..., then ``full``). The dataset passes the checks of ``clinseg validate`` once, before
    every stage (unless ``skip_validation``); ``resume`` applies to each stage's folder."""
    dataset, run_dir = load_dataset(dataset_dir), Path(run_dir)
    if not skip_validation:
        check_dataset_for_training(dataset_dir, run_dir)
    spec = dataset.spec
    full = full_config(base or TrainConfig(), plane)
    missing = missing_sequences(dataset)
    states: dict[str, TrainState] = {}
    stages: list[dict] = []
    if missing:
        if len(missing) == len(dataset.train):
            raise ConfigError(f"{dataset.root}: no training case has all sequences ({', '.join(spec.channels)}); "
                              "the whole network trains on complete cases (seed 001 §2.3.3)")
        folders = _subnet_folders(spec.channels)
        for k, folder in enumerate(folders):
            log.info("step 1: subnetwork of %s on the cases that have it", spec.channels[k])
            states[folder] = train(dataset_dir, run_dir / folder, subnet_config(full, k), iterations=iterations,
                                   skip_validation=True, resume=resume)
            stages.append({"name": folder, "run": folder, "model": SUBNET_MODEL, "channels": [spec.channels[k]],
                           "cases": "training cases that have this sequence", "init": None})
        if full.init:
            log.warning("method 2d with missing sequences starts from the step-1 weights, not init %s", full.init)
        tensors = gather_subnet_weights([run_dir / f for f in folders], full, run_dir / INIT_DIR)
        full = dataclasses.replace(full, channels=list(range(spec.num_channels)),
                                   init=str((run_dir / INIT_DIR).resolve()))
        init_note = f"{INIT_DIR} ({tensors} tensors of the {spec.num_channels} modality-specific subnetworks)"
    else:
        init_note = full.init or None
    stages.append({"name": "full", "run": ".", "model": MODEL, "channels": list(spec.channels),
                   "cases": "training cases that have all sequences" if missing else "all training cases",
                   "init": init_note})
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / METHOD_FILE, json.dumps(
        {"method": "2d", "plane": plane, "missing_sequences": missing, "stages": stages}, indent=2))
    log.info("step 2: the whole network%s", " on the complete cases" if missing else "")
    states["full"] = train(dataset_dir, run_dir, full, iterations=iterations, skip_validation=True, resume=resume)
    return states


@TRAIN_METHODS.register("2d")
def two_d(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
          plane: str = "axial", skip_validation: bool = False, resume: ResumePolicy | None = None) -> str:
    """Seed 001's 2D model with modality-specific subnetworks on ``plane`` slices; with missing sequences,
    its subnetworks are pretrained on the cases that have their sequence first (§2.3.3)."""
    states = train_modality(dataset, out, cfg, plane=plane, iterations=iterations, skip_validation=skip_validation,
                            resume=resume)
    return stages_summary(states)
