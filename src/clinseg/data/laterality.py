"""Left/right structure pairs, so that a left-right mirrored image gets its labels swapped.

Mirroring an image along the patient's left-right axis turns a left parotid into a right one. Augmentation
may mirror that axis only when every lateralised structure's label is swapped with its partner's. Pairs
come from the dataset's ``relations.bilateral`` or, failing that, from the names (TG-263 ``Parotid_L`` /
``Parotid_R``, OpenKBP ``LeftParotid`` / ``RightParotid``, ``Eye_Left``, ``L_Lens`` ...). A lateralised
structure without a partner (only ``Parotid_L``) forbids left-right mirroring.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from clinseg.data.relations import Relations

_PATTERNS = (
    re.compile(r"^(?P<side>left|right|lt|rt)[_\- ]?(?P<base>.+)$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)[_\- ]?(?P<side>left|right)$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)[_\- ](?P<side>l|r|lt|rt)$", re.IGNORECASE),
    re.compile(r"^(?P<side>l|r)[_\- ](?P<base>.+)$", re.IGNORECASE),
)


def side_of(name: str) -> tuple[str, str] | None:
    """``(base, "L" | "R")`` for a lateralised name, else ``None``.

    Examples
    --------
    >>> side_of("Parotid_L"), side_of("RightParotid"), side_of("Brainstem")
    (('parotid', 'L'), ('parotid', 'R'), None)
    """
    for pattern in _PATTERNS:
        match = pattern.match(name)
        if match:
            base = re.sub(r"[_\- ]", "", match["base"]).lower()
            if base:
                return base, "L" if match["side"][0].lower() == "l" else "R"
    return None


def lateral_pairs(structures: Sequence[str], relations: Relations | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """``(pairs, unpaired)``: the ``(left, right)`` structure pairs, and lateralised names without a partner.

    ``relations.bilateral`` is used when it declares pairs; otherwise the names are matched by
    :func:`side_of`.
    """
    if relations is not None and relations.bilateral:
        pairs = [tuple(p) for p in relations.bilateral.values()]
        paired = {n for p in pairs for n in p}
        unpaired = [n for n in structures if side_of(n) is not None and n not in paired]
        return pairs, unpaired  # type: ignore[return-value]
    sides: dict[str, dict[str, str]] = {}
    lateral = []
    for name in structures:
        found = side_of(name)
        if found is not None:
            lateral.append(name)
            sides.setdefault(found[0], {})[found[1]] = name
    pairs = [(s["L"], s["R"]) for s in sides.values() if "L" in s and "R" in s]
    paired = {n for p in pairs for n in p}
    return pairs, [n for n in lateral if n not in paired]


def swap_permutation(structures: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Index permutation of the structure axis that swaps every pair: ``target[perm]`` is the target of the
    left-right mirrored image."""
    index = {n: i for i, n in enumerate(structures)}
    perm = list(range(len(structures)))
    for left, right in pairs:
        if left in index and right in index:
            perm[index[left]], perm[index[right]] = index[right], index[left]
    return perm
