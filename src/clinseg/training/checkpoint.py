"""Checkpoints: written atomically, loaded safely (``weights_only=True``: a checkpoint is untrusted).

A checkpoint holds the model and optimiser states plus a :class:`TrainState` (iteration, best score,
random-generator states), which is all that is needed to resume a run exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
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
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as "RuntimeError [enforce fail at …]"
        kept = (f"the previous {path.name} is kept intact (run the same command again to resume from it)"
                if path.is_file() else f"no {path.name} was written")
        raise CheckpointError(f"{path}: could not write the checkpoint (is the disk full or over quota? "
                              f"{type(exc).__name__}: {_first_sentence(exc)}); {kept}") from exc


def _first_sentence(exc: BaseException, limit: int = 160) -> str:
    """The start of an exception's message: its first line, up to the first full stop that ends a sentence."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.split(". ", 1)[0] if ". " in text[1:] and not text.startswith("[enforce") else text
    return text if len(text) <= limit else text[:limit] + " …"


def _load_problem(exc: BaseException) -> str:
    """Why ``torch.load`` failed, in words that do not repeat torch's advice to load the file with
    ``weights_only=False`` (which would run any code an untrusted file holds)."""
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        return (f"corrupt or unsafe checkpoint: it holds Python objects other than tensors{what}, which clinseg "
                "refuses to load (they could run code); not a clinseg checkpoint, or tampered with")
    return f"corrupt or unsafe checkpoint: truncated or damaged ({type(exc).__name__}: {_first_sentence(exc)})"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; raises :class:`CheckpointError` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: {_load_problem(exc)}") from None
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
