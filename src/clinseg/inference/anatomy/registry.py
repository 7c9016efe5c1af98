"""Anatomy rules registered by name and run in a fixed order (seed 001 §4.2.2).

A rule is a function of the case's working state (:class:`~clinseg.inference.anatomy._case.AnatomyCase`)
that replaces some of its masks. A new rule is a new function plus a registration; the pipeline runs the
registered rules sorted by ``order`` and skips those listed in ``AnatomySettings.disabled`` (running their
``when_disabled`` step instead, if they have one)::

    @register_rule("eyes", order=30)
    def eyes_rule(case: AnatomyCase) -> None: ...

Built-in rules, in order: ``brain_holes`` (10), ``sides`` (20), ``eyes`` (30), ``lenses`` (40),
``chiasm`` (50), ``optic_nerves`` (60).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clinseg.registry import Registry

if TYPE_CHECKING:
    from clinseg.inference.anatomy._case import AnatomyCase

__all__ = ["AnatomyRule", "RuleSpec", "get_rule", "list_rules", "register_rule"]

#: What a rule is: it reads and replaces masks of the case's working state, returns nothing.
AnatomyRule = Callable[["AnatomyCase"], None]


@dataclass(frozen=True)
class RuleSpec:
    """A registered rule: its name, its place in the pipeline and what to do when it is switched off."""

    name: str
    order: int
    apply: AnatomyRule
    when_disabled: AnatomyRule | None = None


_RULES: Registry[AnatomyRule] = Registry("anatomy rule")
_SPECS: dict[str, RuleSpec] = {}


def register_rule(
    name: str, *, order: int, when_disabled: AnatomyRule | None = None
) -> Callable[[AnatomyRule], AnatomyRule]:
    """Decorator registering an anatomy rule under ``name``, run at position ``order`` (ascending).

    Parameters
    ----------
    name : the rule's name, as listed in ``AnatomySettings.disabled``.
    order : position in the pipeline; two rules cannot share one.
    when_disabled : optional step run instead of the rule when it is disabled (``sides`` still has to split
        bilateral organs into left and right structures).

    Raises
    ------
    ValueError
        When another function is registered under ``name`` or another rule holds ``order``.
    """

    def decorator(rule: AnatomyRule) -> AnatomyRule:
        taken = [spec.name for spec in _SPECS.values() if spec.order == order and spec.name != name]
        if taken:
            raise ValueError(f"anatomy rule order {order} is already taken by {taken[0]!r}")
        _RULES.register(name)(rule)
        _SPECS[name] = RuleSpec(name, order, rule, when_disabled)
        return rule

    return decorator


def get_rule(name: str) -> RuleSpec:
    """The rule registered as ``name``; :class:`~clinseg.errors.ConfigError` listing the known names otherwise."""
    _RULES.get(name)
    return _SPECS[name]


def list_rules() -> list[str]:
    """Names of the registered rules in the order the pipeline runs them."""
    return sorted(_SPECS, key=lambda name: _SPECS[name].order)
