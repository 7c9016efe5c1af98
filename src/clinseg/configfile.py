"""Configuration dataclasses from and to YAML: one reader, one builder, one writer with clear errors.

Training, pretraining and study files are all "a YAML mapping of a dataclass's fields"; the same mistakes
(a missing file, invalid YAML, a key given twice, a list instead of a mapping, a misspelt option) get the
same messages. PyYAML keeps the last of duplicate keys in silence, so a ``batch_size`` set twice (copied and
edited) would lose the first value without a word: :func:`load_yaml` refuses it, naming the file, the key
and its line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text

T = TypeVar("T")

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (``<<`` merges may still be
    overridden: that is what they are for)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # an unhashable key: the SafeLoader reports it
                continue
        return super().construct_mapping(node, deep)


def load_yaml(text: str, source: str | Path) -> Any:
    """Parse YAML ``text`` read from ``source`` safely; invalid YAML or a duplicate key raise
    :class:`ConfigError` naming ``source``.

    Examples
    --------
    >>> load_yaml("lr: 0.1\\nseed: 2", "a.yaml")
    {'lr': 0.1, 'seed': 2}
    >>> load_yaml("lr: 0.1\\nlr: 0.2", "a.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinseg.errors.ConfigError: a.yaml: key 'lr' appears twice in one mapping (again on line 2; ...)
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
    except _DuplicateKey as exc:
        raise ConfigError(f"{source}: key {exc.key!r} appears twice in one mapping (again on line {exc.line}; "
                          "the first value would be ignored)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML ({exc})") from exc


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is an empty mapping); :class:`ConfigError` otherwise
    (missing file, invalid YAML, a key given twice in one mapping, not a mapping)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    values = load_yaml(text, path) or {}
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
