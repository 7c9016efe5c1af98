"""Resuming a run folder: the options asked for must match the saved configuration.

``clinseg train DATASET --out RUN`` on an existing run resumes it with its saved ``config.yaml``. Options
given again that differ from the saved ones (``--model``, ``--seed``, ``--preset``, a ``--config`` file …)
would otherwise be ignored in silence, so they are refused with both values named; ``--force`` resumes
anyway with the saved configuration (recorded in ``RUN/history.json``). Only the options the caller set are
compared: a plain ``clinseg train DATASET --out RUN`` resumes whatever the run was trained with.

The iteration target is the exception: a larger ``--iterations`` extends a finished run (or moves the end of
an unfinished one), recorded in ``RUN/history.json``; fewer iterations than were already trained is refused.

The same rules hold for every kind of run folder with a ``config.yaml`` of a configuration dataclass and a
``checkpoints/last.pt``: ``clinseg pretrain`` passes its own loader (``load=``) to :func:`plan_resume`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text
from clinseg.training.checkpoint import load_checkpoint
from clinseg.training.config import load_config

log = logging.getLogger(__name__)


class RunConfig(Protocol):
    """What resuming needs of a run's configuration: a dataclass with an ``iterations`` target
    (:class:`TrainConfig`, :class:`~clinseg.pretraining.config.PretrainConfig`)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    iterations: int


C = TypeVar("C", bound=RunConfig)

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
    explicit : the configuration fields the user set (``clinseg train`` passes those of ``--config``,
        ``--preset``, ``--model`` …); only these are compared with the saved configuration. ``None``: every
        field of the configuration passed to ``train`` (a library caller passes the configuration it means).
    force : resume even when compared fields differ, keeping the saved configuration.
    """

    explicit: frozenset[str] | None = None
    force: bool = False


@dataclass(frozen=True)
class Resume(Generic[C]):
    """What resuming a run folder does: the configuration to train with and what to record."""

    config: C
    extension: dict[str, Any] | None = None
    forced: dict[str, Any] | None = None


def _plain(value: Any) -> Any:
    """A value as YAML/JSON reads it back (tuples as lists, sections as mappings), so saved and asked values
    compare equal."""
    def convert(obj: Any) -> Any:
        return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else list(obj)

    return json.loads(json.dumps(value, default=convert))


def changed_options(saved: C, asked: C, fields: frozenset[str] | None) -> dict[str, tuple[Any, Any]]:
    """``field -> (saved value, asked value)`` for the compared ``fields`` (``None``: all) of two instances of
    one configuration dataclass that differ (:data:`EXECUTION_FIELDS` never count)."""
    names = [f.name for f in dataclasses.fields(saved)
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


def plan_resume(run_dir: str | Path, asked: C | None, policy: ResumePolicy | None = None,
                iterations: int | None = None,
                load: Callable[[Path], C] = load_config) -> Resume[C] | None:  # type: ignore[assignment]
    """How to resume the run in ``run_dir`` (``None`` when it holds none yet); refuses what cannot be.

    Parameters
    ----------
    run_dir : the run folder.
    asked : the resolved configuration asked for (``None``: resume as saved).
    policy : which fields to compare, and whether to force (default: compare every field of ``asked``).
    iterations : the iteration target asked for explicitly (``--iterations``); ``asked.iterations`` counts
        too when ``policy.explicit`` is ``None`` or names ``iterations``.
    load : reads ``RUN/config.yaml`` into the run's configuration dataclass (default: a training run's
        :class:`TrainConfig`); the dataclass needs an ``iterations`` field.

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
    saved = load(config_path)
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


def record_resume(run_dir: str | Path, resume: Resume[Any]) -> None:
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
