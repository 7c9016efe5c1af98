"""Checkpoints: written atomically, loaded safely (``weights_only=True``: a checkpoint is untrusted).

A checkpoint holds the model and optimiser states plus a :class:`TrainState` (iteration, best score,
random-generator states), which is all that is needed to resume a run exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clinseg.errors import CheckpointError
from clinseg.io.atomic import atomic_path


@dataclass
class TrainState:
    """Progress of a run; JSON-serialisable (the RNG states are stored as JSON text)."""

    iteration: int = 0
    best_score: float = float("-inf")
    best_iteration: int = 0
    bad_validations: int = 0
    finished: bool = False
    sampler_rng: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: TrainState,
) -> None:
    """Write model/optimiser/state to ``path`` atomically (the previous file stays valid until the rename)."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "state": json.dumps(dataclasses.asdict(state)),
        "torch_rng": torch.get_rng_state(),
        "format": 1,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; raises :class:`CheckpointError` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or unsafe checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != 1 or "model" not in payload:
        raise CheckpointError(f"{path}: not a clinseg checkpoint")
    try:
        payload["state"] = TrainState(**json.loads(payload["state"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable training state ({exc})") from exc
    return payload


def restore(
    payload: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, path: str | Path
) -> TrainState:
    """Load a checkpoint payload into ``model``/``optimizer`` and restore the torch RNG; return the state."""
    try:
        model.load_state_dict(payload["model"])
        if optimizer is not None and payload.get("optimizer"):
            optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: checkpoint does not fit this model/config ({detail} …)") from exc
    if "torch_rng" in payload:
        torch.set_rng_state(payload["torch_rng"])
    return payload["state"]
