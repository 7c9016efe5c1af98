"""Anatomical relations between structures, declared in ``dataset.json`` (seed 001 §4.2.1.2, §4.2.2).

Clinical delineations are partial: a case may have the eye but not the lens. Relations between structures
say what a delineation implies about an undelineated one — the lens lies inside the eye, so outside a
delineated eye the lens is known to be absent. They also say which structures are the left and right
halves of one organ, which the OAR method of seed 001 trains as one entity and separates afterwards.

``dataset.json`` form (all three keys optional)::

    "relations": {
      "inside":    {"Lens_L": "Eye_L", "Lens_R": "Eye_R", "Hippocampus_L": ["Brain"]},
      "outside":   [["Eye_L", "Brain"], ["Eye_R", "Brain"]],
      "bilateral": {"Eye": ["Eye_L", "Eye_R"], "Lens": ["Lens_L", "Lens_R"]}
    }

``inside`` maps an inner structure to its container(s); ``outside`` lists pairs that never overlap;
``bilateral`` names an organ and its (left, right) structures. Names must be declared structures.

Example
-------
>>> rel = parse_relations({"inside": {"Lens_L": "Eye_L", "Lens_R": "Eye_R"},
...                        "bilateral": {"Eye": ["Eye_L", "Eye_R"], "Lens": ["Lens_L", "Lens_R"]}},
...                       ("Eye_L", "Eye_R", "Lens_L", "Lens_R"), "dataset.json")
>>> rel.merged().inside
(('Lens', 'Eye'),)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clinseg.errors import DatasetError

__all__ = ["Relations", "parse_relations"]


@dataclass(frozen=True)
class Relations:
    """Containment, exclusion and left/right pairing between structures.

    Attributes
    ----------
    inside : ``(inner, outer)`` pairs: every voxel of ``inner`` belongs to ``outer``.
    outside : ``(a, b)`` pairs: ``a`` and ``b`` never share a voxel.
    bilateral : organ name -> ``(left, right)`` structure names.
    """

    inside: tuple[tuple[str, str], ...] = ()
    outside: tuple[tuple[str, str], ...] = ()
    bilateral: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def containers(self, name: str) -> tuple[str, ...]:
        """Structures that contain ``name``."""
        return tuple(outer for inner, outer in self.inside if inner == name)

    def contents(self, name: str) -> tuple[str, ...]:
        """Structures that ``name`` contains."""
        return tuple(inner for inner, outer in self.inside if outer == name)

    def exclusions(self, name: str) -> tuple[str, ...]:
        """Structures that never overlap ``name``."""
        return tuple(b if a == name else a for a, b in self.outside if name in (a, b))

    def entity_of(self, name: str) -> str:
        """The organ a structure belongs to (itself unless it is one side of a bilateral organ)."""
        for organ, sides in self.bilateral.items():
            if name in sides:
                return organ
        return name

    def entities(self, structures: Sequence[str]) -> tuple[str, ...]:
        """``structures`` with each bilateral pair replaced by its organ, in first-appearance order."""
        out: list[str] = []
        for name in structures:
            entity = self.entity_of(name)
            if entity not in out:
                out.append(entity)
        return tuple(out)

    def members(self, entity: str) -> tuple[str, ...]:
        """The structures of an organ: its two sides, or the entity itself."""
        return tuple(self.bilateral.get(entity, (entity,)))

    def merged(self) -> Relations:
        """The relations between organs, bilateral pairs merged.

        A relation between two organs holds when it is declared for every side of the first: ``Lens_L``
        inside ``Eye_L`` and ``Lens_R`` inside ``Eye_R`` give ``Lens`` inside ``Eye``; declaring only the
        left side gives nothing, since the merged statement would then be a guess.
        """
        def lift(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
            out: list[tuple[str, str]] = []
            for a, b in pairs:
                ea, eb = self.entity_of(a), self.entity_of(b)
                if ea == eb or (ea, eb) in out:
                    continue
                every_side = all(any((m, o) in pairs for o in self.members(eb)) for m in self.members(ea))
                if every_side:
                    out.append((ea, eb))
            return tuple(out)

        return Relations(lift(self.inside), lift(self.outside), {})

    def to_json(self) -> dict:
        """The ``dataset.json`` form (inverse of :func:`parse_relations`)."""
        inside: dict[str, list[str]] = {}
        for inner, outer in self.inside:
            inside.setdefault(inner, []).append(outer)
        return {"inside": inside, "outside": [list(p) for p in self.outside],
                "bilateral": {k: list(v) for k, v in self.bilateral.items()}}


def parse_relations(raw: object, structures: Sequence[str], where: str) -> Relations:
    """Read the ``relations`` block of a dataset.json (``where`` names the file in error messages)."""
    if raw is None:
        return Relations()
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where}: 'relations' must be an object with keys inside/outside/bilateral")
    unknown_keys = set(raw) - {"inside", "outside", "bilateral"}
    if unknown_keys:
        raise DatasetError(f"{where}: unknown relation kind(s) {sorted(unknown_keys)} (known: inside, outside, "
                           "bilateral)")
    known = set(structures)

    def check(name: object, what: str) -> str:
        if not isinstance(name, str) or name not in known:
            raise DatasetError(f"{where}: relations.{what} names {name!r}, which is not a declared structure "
                               f"({', '.join(structures)})")
        return name

    inside: list[tuple[str, str]] = []
    raw_inside = raw.get("inside", {})
    if not isinstance(raw_inside, Mapping):
        raise DatasetError(f"{where}: relations.inside must map an inner structure to its container(s)")
    for inner, outers in raw_inside.items():
        for outer in [outers] if isinstance(outers, str) else list(outers or []):
            pair = (check(inner, "inside"), check(outer, "inside"))
            if pair[0] == pair[1]:
                raise DatasetError(f"{where}: relations.inside puts {inner!r} inside itself")
            inside.append(pair)

    outside: list[tuple[str, str]] = []
    raw_outside = raw.get("outside", [])
    if not isinstance(raw_outside, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw_outside):
        raise DatasetError(f"{where}: relations.outside must be a list of [a, b] pairs")
    for a, b in raw_outside:
        pair = (check(a, "outside"), check(b, "outside"))
        if pair[0] == pair[1]:
            raise DatasetError(f"{where}: relations.outside excludes {a!r} from itself")
        if pair in inside or pair[::-1] in inside:
            raise DatasetError(f"{where}: {a!r} and {b!r} are declared both inside and outside each other")
        outside.append(pair)

    bilateral: dict[str, tuple[str, str]] = {}
    raw_bilateral = raw.get("bilateral", {})
    if not isinstance(raw_bilateral, Mapping):
        raise DatasetError(f"{where}: relations.bilateral must map an organ name to [left, right]")
    used: set[str] = set()
    for organ, sides in raw_bilateral.items():
        if not isinstance(sides, list) or len(sides) != 2:
            raise DatasetError(f"{where}: relations.bilateral[{organ!r}] must be [left, right], got {sides!r}")
        left, right = check(sides[0], "bilateral"), check(sides[1], "bilateral")
        if left == right or {left, right} & used:
            raise DatasetError(f"{where}: relations.bilateral[{organ!r}] reuses a structure ({left}, {right})")
        if str(organ) in known and str(organ) not in (left, right):
            raise DatasetError(f"{where}: relations.bilateral organ {organ!r} is also a structure name")
        used |= {left, right}
        bilateral[str(organ)] = (left, right)
    return Relations(tuple(inside), tuple(outside), bilateral)
