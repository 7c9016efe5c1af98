"""Phantom registry: procedural datasets registered by name and built through one factory.

A new phantom (brain tumour, abdominal CT, bone CT …) is one sibling module whose generator is decorated
with :func:`register_phantom`; nothing else changes. A generator has the signature::

    generator(out_dir: Path, *, cases: int, test_cases: int, seed: int, spacing_mm: float, **options) -> Path

writes a dataset folder in the clinseg format (``dataset.json``, ``imagesTr``, ``structuresTr`` …) and
returns its path.

Examples
--------
>>> from clinseg.phantoms import generate_phantom, list_phantoms
>>> list_phantoms()                                               # doctest: +SKIP
['head-oar']
>>> generate_phantom("head-oar", "data/HeadOAR", cases=16)      # doctest: +SKIP
PosixPath('data/HeadOAR')
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from clinseg.errors import ConfigError
from clinseg.registry import Registry


class PhantomGenerator(Protocol):
    """What a registered generator looks like (keyword-only options after ``out_dir``)."""

    def __call__(
        self, out_dir: Path, *, cases: int, test_cases: int, seed: int, spacing_mm: float, **options: Any
    ) -> Path: ...


PHANTOMS: Registry[PhantomGenerator] = Registry("phantom")


def register_phantom(name: str) -> Callable[[PhantomGenerator], PhantomGenerator]:
    """Decorator registering a dataset generator under ``name`` (e.g. ``"head-oar"``).

    Raises
    ------
    ValueError
        When another function is already registered under ``name``.
    """
    return PHANTOMS.register(name)


def list_phantoms() -> list[str]:
    """Names of the registered phantoms, sorted."""
    return PHANTOMS.names()


def get_phantom(name: str) -> PhantomGenerator:
    """The generator registered under ``name``.

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the known ones.
    """
    return PHANTOMS.get(name)


def generate_phantom(name: str, out_dir: str | os.PathLike[str], **options: Any) -> Path:
    """Generate the phantom ``name`` into ``out_dir`` and return the dataset folder.

    Parameters
    ----------
    name : a registered phantom (see :func:`list_phantoms`).
    out_dir : the dataset folder to write.
    **options : ``cases``, ``test_cases``, ``seed``, ``spacing_mm`` and phantom-specific options; omitted
        ones take the generator's defaults.

    Raises
    ------
    ConfigError
        For an unknown phantom name or an option the generator does not accept.
    """
    generator = get_phantom(name)
    params = inspect.signature(generator).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(f"phantom {name!r} has no option(s) {', '.join(unknown)}; "
                              f"options: {', '.join(p for p in params if p != 'out_dir')}")
    return generator(Path(out_dir), **options)
