"""One small registry class behind every extension point (networks, losses, phantoms, study arms).

A new method is a new module plus a registration (timm's pattern), never a new branch in an if/elif chain::

    ARMS = Registry("study arm method")

    @ARMS.register("segment")
    def segment(context): ...

    ARMS.get("segment")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from clinseg.errors import ConfigError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Name -> callable, with errors that list the known names.

    Parameters
    ----------
    kind : what is registered, for messages (``"model"``, ``"phantom"`` …).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a callable under ``name``; returns it unchanged.

        Registering the same function again (a module imported twice) is allowed; another function under a
        taken name raises :class:`ValueError`, a programming error.
        """

        def decorator(item: T) -> T:
            known = self._items.get(name)
            if known is not None and _identity(known) != _identity(item):
                raise ValueError(f"{self.kind} name {name!r} is already registered by {known.__module__}")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        """The callable registered as ``name``; :class:`ConfigError` listing the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def _identity(item: Callable) -> tuple[str | None, str | None]:
    return getattr(item, "__module__", None), getattr(item, "__qualname__", None)
