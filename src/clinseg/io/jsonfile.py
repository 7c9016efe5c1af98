"""Reading JSON that a user wrote (``dataset.json`` …): a key given twice in one object is an error.

Python's :func:`json.loads` keeps the last of duplicate keys silently, so a ``cases`` entry written twice
(copied and edited) would lose its first half without a word. :func:`loads_strict` refuses it, naming the
file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinseg.errors import ClinsegError, DatasetError


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: build the object, refusing a key seen twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def loads_strict(text: str, source: str | Path, error: Callable[[str], ClinsegError] = DatasetError) -> Any:
    """Parse JSON ``text`` read from ``source``; invalid JSON or a duplicate key raises ``error`` naming both.

    Examples
    --------
    >>> loads_strict('{"a": 1}', "x.json")
    {'a': 1}
    >>> loads_strict('{"a": 1, "a": 2}', "x.json")
    Traceback (most recent call last):
    ...
    clinseg.errors.DatasetError: x.json: key 'a' appears twice in one JSON object (the first would be ignored)
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise error(f"{source}: key {exc.key!r} appears twice in one JSON object (the first would be "
                    "ignored)") from None
    except json.JSONDecodeError as exc:
        raise error(f"{source}: invalid JSON ({exc})") from None


def read_json(path: str | Path, error: Callable[[str], ClinsegError] = DatasetError) -> Any:
    """Read and parse the JSON file ``path`` with :func:`loads_strict` (UTF-8; errors name the file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    return loads_strict(text, path, error)
