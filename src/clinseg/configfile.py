"""Configuration dataclasses from and to YAML: one reader, one builder, one writer with clear errors.

Training, pretraining and study files are all "a YAML mapping of a dataclass's fields"; the same mistakes
(a missing file, invalid YAML, a list instead of a mapping, a misspelt option) get the same messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text

T = TypeVar("T")


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is an empty mapping); :class:`ConfigError` otherwise."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of options")
    return values


def build_dataclass(cls: type[T], values: dict[str, Any], source: str) -> T:
    """``cls(**values)`` with unknown keys and wrong arguments reported as :class:`ConfigError` naming
    ``source`` and the known options."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown option(s) {unknown}; known: {', '.join(sorted(known))}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def write_dataclass(obj: Any, path: str | Path) -> None:
    """Write a dataclass instance's fields as YAML, atomically, in field order."""
    write_text(path, yaml.safe_dump(dataclasses.asdict(obj), sort_keys=False))
