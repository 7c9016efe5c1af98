"""Procedural datasets behind a registry: ``generate_phantom("head-oar", out, cases=16)``."""

from clinseg.phantoms import head_oar as _head_oar  # noqa: F401  (registers)
from clinseg.phantoms.registry import generate_phantom, list_phantoms, register_phantom

__all__ = ["generate_phantom", "list_phantoms", "register_phantom"]
