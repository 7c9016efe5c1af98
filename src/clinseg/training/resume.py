"""Resuming a run folder: the options asked for must match the saved configuration.

``clinseg train DATASET --out RUN`` on an existing run resumes it with its saved ``config.yaml``. Options
given again that differ from the saved ones (``--model``, ``--seed``, ``--preset``, a ``--config`` file …)
would otherwise be ignored in silence, so they are refused with both values named; ``--force`` resumes
anyway with the saved configuration (recorded in ``RUN/history.json``). Only the options the caller set are
compared: a plain ``clinseg train DATASET --out RUN`` resumes whatever the run was trained with.

The iteration target is the exception: a larger ``--iterations`` extends a finished run (or moves the end of
an unfinished one), recorded in ``RUN/history.json``; fewer iterations than were already trained is refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text
from clinseg.training.checkpoint import load_checkpoint
from clinseg.training.config import TrainConfig, load_config

log = logging.getLogger(__name__)

#: The run folder's record of extensions and forced resumes (``RUN/history.json``).
HISTORY_FILE = "history.json"
#: Fields that may differ on resume without a refusal: where and how fast a run trains, not what it trains
#: (``iterations`` follows its own rule).
EXECUTION_FIELDS = frozenset({"iterations", "device", "threads"})


@dataclass(frozen=True)
class ResumePolicy:
    """How :func:`clinseg.training.run.train` treats a run folder that already holds a run.

    Attributes
    ----------
    explicit : the :class:`TrainConfig` fields the user set (``clinseg train`` passes those of ``--config``,
        ``--preset``, ``--model`` …); only these are compared with the saved configuration. ``None``: every
        field of the configuration passed to ``train`` (a library caller passes the configuration it means).
    force : resume even when compared fields differ, keeping the saved configuration.
    """

    explicit: frozenset[str] | None = None
    force: bool = False


@dataclass(frozen=True)
class Resume:
    """What resuming a run folder does: the configuration to train with and what to record."""

    config: TrainConfig
    extension: dict[str, Any] | None = None
    forced: dict[str, Any] | None = None


def _plain(value: Any) -> Any:
    """A value as YAML/JSON reads it back (tuples as lists), so saved and asked values compare equal."""
    return json.loads(json.dumps(value, default=list))


def changed_options(saved: TrainConfig, asked: TrainConfig,
                    fields: frozenset[str] | None) -> dict[str, tuple[Any, Any]]:
    """``field -> (saved value, asked value)`` for the compared ``fields`` (``None``: all) that differ."""
    names = [f.name for f in dataclasses.fields(TrainConfig)
             if (fields is None or f.name in fields) and f.name not in EXECUTION_FIELDS]
    diffs = {}
    for name in names:
        old, new = _plain(getattr(saved, name)), _plain(getattr(asked, name))
        if old != new:
            diffs[name] = (old, new)
    return diffs


def _options(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, str) and not v else v}" for k, v in values.items())


def trained_iterations(run_dir: Path) -> int:
    """Iterations recorded in ``RUN/checkpoints/last.pt`` (0 without one)."""
    last = run_dir / "checkpoints" / "last.pt"
    return load_checkpoint(last)["state"].iteration if last.is_file() else 0


def plan_resume(run_dir: str | Path, asked: TrainConfig | None, policy: ResumePolicy | None = None,
                iterations: int | None = None) -> Resume | None:
    """How to resume the run in ``run_dir`` (``None`` when it holds none yet); refuses what cannot be.

    Parameters
    ----------
    run_dir : the run folder.
    asked : the resolved configuration asked for (``None``: resume as saved).
    policy : which fields to compare, and whether to force (default: compare every field of ``asked``).
    iterations : the iteration target asked for explicitly (``--iterations``); ``asked.iterations`` counts
        too when ``policy.explicit`` is ``None`` or names ``iterations``.

    Raises
    ------
    ConfigError
        When compared options differ (without ``force``), or the target is below the iterations trained.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        return None
    policy = policy or ResumePolicy()
    saved = load_config(config_path)
    forced = None
    if asked is not None:
        diffs = changed_options(saved, asked, policy.explicit)
        if diffs:
            was = _options({k: old for k, (old, _) in diffs.items()})
            now = _options({k: new for k, (_, new) in diffs.items()})
            if not policy.force:
                raise ConfigError(f"{run_dir} was trained with {was}; you asked for {now}: use a new --out "
                                  "folder, or --force to resume it with its saved configuration")
            log.warning("--force: resuming %s with its saved configuration (%s), not %s", run_dir, was, now)
            forced = {"saved": {k: old for k, (old, _) in diffs.items()},
                      "ignored": {k: new for k, (_, new) in diffs.items()}}
    target = iterations
    if target is None and asked is not None and (policy.explicit is None or "iterations" in policy.explicit):
        target = asked.iterations
    extension = None
    if target is not None and target != saved.iterations:
        trained = trained_iterations(run_dir)
        if target < trained:
            raise ConfigError(f"{run_dir} has already trained {trained} iterations; --iterations {target} cannot "
                              "undo them (use a new --out folder for a shorter run)")
        extension = {"from": saved.iterations, "to": target, "trained": trained}
        log.info("%s: iterations %d -> %d (%d trained)", run_dir, saved.iterations, target, trained)
        saved = dataclasses.replace(saved, iterations=target)
    return Resume(saved, extension, forced)


def record_resume(run_dir: str | Path, resume: Resume) -> None:
    """Append ``resume``'s extension and forced options to ``RUN/history.json`` (nothing when it has none)."""
    if resume.extension is None and resume.forced is None:
        return
    path = Path(run_dir) / HISTORY_FILE
    try:
        history = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        history = {}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if resume.extension is not None:
        history.setdefault("extensions", []).append({"time": now, **resume.extension})
    if resume.forced is not None:
        history.setdefault("forced", []).append({"time": now, **resume.forced})
    write_text(path, json.dumps(history, indent=2))
