"""Checks of the option mappings a study spec hands to registered callables (arm methods, training methods,
networks, losses, samplers), so that a misspelt option is refused before the study starts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from clinseg.errors import ConfigError

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check_keywords(func: Callable[..., Any], what: str, positional: int, options: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` unless ``func`` accepts ``positional`` positional arguments and ``options``
    as keywords (what a later call ``func(*args, **options)`` needs; no value is checked).

    Parameters
    ----------
    func : the registered callable.
    what : what it is, for the message (``"model 'unet3d'"``).
    positional : how many positional arguments the caller passes before the options.
    options : the option mapping from the spec.

    Examples
    --------
    >>> def net(in_channels, out_channels, *, width=8): ...
    >>> check_keywords(net, "model 'net'", 2, {"width": 4})
    >>> check_keywords(net, "model 'net'", 2, {"depth": 4})
    Traceback (most recent call last):
    ...
    clinseg.errors.ConfigError: model 'net' takes no option(s) ['depth']; it takes ['width']
    """
    signature = inspect.signature(func)
    try:
        signature.bind(*([None] * positional), **options)
    except TypeError as exc:
        params = list(signature.parameters.values())
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            named = [p.name for p in params[positional:] if p.kind in _NAMED]
            unknown = sorted(set(options) - set(named))
            if unknown:
                raise ConfigError(f"{what} takes no option(s) {unknown}; it takes {named or 'none'}") from None
        raise ConfigError(f"{what}: {exc}") from None


def mapping_option(options: dict[str, Any], key: str) -> dict[str, Any]:
    """``options[key]`` as a mapping (absent or null: empty); :class:`ConfigError` for anything else."""
    value = options.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a mapping of options, got {value!r}")
    return dict(value)


def earlier_arms(options: dict[str, Any], key: str, arm: str, earlier: Sequence[str], *,
                 one: bool = False) -> list[str]:
    """The arm names under ``options[key]`` (a list; one name when ``one``), each an arm listed before
    ``arm``: an arm reads the finished runs of those arms (and their names become paths)."""
    value = options.get(key)
    if one:
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' must be one arm name, got {value!r}")
        names = [value]
    else:
        if not isinstance(value or [], list):
            raise ConfigError(f"'{key}' must be a list of arm names, got {value!r}")
        names = [str(v) for v in value or []]
    unknown = [n for n in names if n not in earlier]
    if unknown:
        listed = f"arms listed before it: {', '.join(map(repr, earlier))}" if earlier else "it is the first arm"
        raise ConfigError(f"'{key}' names {unknown}, not an arm listed before {arm!r} ({listed})")
    return names
