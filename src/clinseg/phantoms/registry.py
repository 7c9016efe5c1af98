"""Phantom registry: procedural datasets registered by name (``clinseg phantom NAME OUT``).

A new phantom is one sibling module with a generator decorated by :func:`register_phantom`. A generator
takes ``(out_dir, *, cases, test_cases, seed, spacing_mm, **options)``, writes a dataset folder in the
clinseg format (see ``docs/dataset-format.md``) and returns its path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinseg.errors import ConfigError

Generator = Callable[..., Path]
_PHANTOMS: dict[str, Generator] = {}


def register_phantom(name: str) -> Callable[[Generator], Generator]:
    """Register a dataset generator under ``name``."""

    def decorator(func: Generator) -> Generator:
        if name in _PHANTOMS:
            raise ValueError(f"phantom {name!r} is registered twice")
        _PHANTOMS[name] = func
        return func

    return decorator


def list_phantoms() -> list[str]:
    return sorted(_PHANTOMS)


def generate_phantom(name: str, out_dir: str | Path, **options: Any) -> Path:
    """Generate the phantom ``name`` into ``out_dir`` (unknown names raise :class:`ConfigError`)."""
    if name not in _PHANTOMS:
        raise ConfigError(f"unknown phantom {name!r}; known: {', '.join(list_phantoms())}")
    return _PHANTOMS[name](Path(out_dir), **options)
