"""The network registry: architectures are registered by name and built through one factory.

Adding a network is one new module plus one decorator (the timm pattern)::

    @register_model("mynet")
    def mynet(in_channels: int, out_channels: int, width: int = 8) -> nn.Module:
        ...

    net = create_model("mynet", in_channels=1, out_channels=3, width=4)

Every registered builder returns an ``nn.Module`` that maps ``(B, in_channels, Z, Y, X)`` to logits
``(B, out_channels, Z, Y, X)`` with the same spatial size, and that carries two integer attributes:
``out_channels`` and ``size_divisor`` (each spatial input size must be a multiple of it; three ints, one per
axis ``(Z, Y, X)``, for networks that are not cubic, see :func:`size_divisors`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from clinseg.errors import ConfigError
from clinseg.registry import Registry

ModelBuilder = Callable[..., nn.Module]
_B = TypeVar("_B", bound=ModelBuilder)

MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str) -> Callable[[_B], _B]:
    """Decorator that registers a model builder under ``name``.

    Parameters
    ----------
    name : registry key, lower case by convention (``"resfcn3d"``).

    Returns
    -------
    The decorator; it returns the builder unchanged, so the builder stays callable directly.

    Raises
    ------
    ValueError
        When ``name`` is already taken (two modules registering the same name is a programming error).
    """
    return MODELS.register(name)  # type: ignore[return-value]


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return MODELS.names()


def create_model(name: str, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``.

    Parameters
    ----------
    name : a name from :func:`list_models`.
    in_channels : number of input image channels ``C`` of ``(B, C, Z, Y, X)``.
    out_channels : number of output logit channels, one per class for sigmoid (multi-label) outputs.
    **kwargs : architecture options passed to the builder (widths, depth, norm, ...).

    Returns
    -------
    The network, in training mode, with attributes ``out_channels`` and ``size_divisor``.

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones), non-positive channel counts, or an option
        the builder does not accept.

    Examples
    --------
    >>> net = create_model("unet3d", in_channels=1, out_channels=2, features=(4, 8))
    >>> net.size_divisor
    2
    """
    builder = MODELS.get(name)
    for label, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model {name!r}: {label} must be a positive integer, got {value!r}")
    try:
        inspect.signature(builder).bind(in_channels, out_channels, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: invalid options {sorted(kwargs)}: {exc}") from exc
    model = builder(in_channels, out_channels, **kwargs)
    if not isinstance(getattr(model, "out_channels", None), int):
        raise TypeError(f"model {name!r} does not set the integer attribute 'out_channels'")
    size_divisors(model)  # raises TypeError when missing or malformed
    return model


def size_divisors(model: nn.Module) -> tuple[int, int, int]:
    """The model's ``size_divisor`` per axis ``(Z, Y, X)``: an int applies to all three axes, a slice-wise
    network gives three (1 along its slicing axis). Models without the attribute take any size."""
    value = getattr(model, "size_divisor", 1)
    values = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(values) != 3 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise TypeError(f"{type(model).__name__}.size_divisor must be a positive int or three, got {value!r}")
    return values  # type: ignore[return-value]


def describe_divisors(divisors: tuple[int, int, int]) -> str:
    """``"4"`` for a cubic divisor, ``"[1, 8, 8] (Z, Y, X)"`` otherwise: for error messages."""
    return str(divisors[0]) if len(set(divisors)) == 1 else f"{list(divisors)} (Z, Y, X)"
