"""One rule for every name that becomes part of a file path.

Structure names (``dataset.json`` labels, RTSTRUCT ROI names), case ids, channel names and study arm names
all end up as file or folder names (``OUT/<case>/<structure>.nii.gz``, ``STUDY/runs/<arm>/...``). A name
such as ``../../x`` or ``/tmp/x`` would write outside the output folder, so every such name is checked
where it is read, with one error naming the file it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from clinseg.errors import DatasetError

#: The longest name accepted (file systems allow 255 bytes per component; endings and prefixes need room).
MAX_NAME_LENGTH = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORBIDDEN = set('/\\:*?"<>|')
#: Device names Windows reserves in every folder, whatever the case and ending (``nul.nii.gz`` is ``NUL``).
WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))})


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be used as one path component, or ``None`` when it can.

    A safe name is a non-empty string of at most :data:`MAX_NAME_LENGTH` characters, with no path separator
    (``/``, ``\\``), none of ``:*?"<>|`` (not portable to Windows), no control character, no leading or
    trailing space, not starting with ``.`` (``.``, ``..`` and hidden files), and not a device name that
    Windows reserves (:data:`WINDOWS_RESERVED`: ``CON``, ``nul.txt``, ``Com1.nii.gz`` … name a device there,
    not a file, whatever the case and the ending).

    Examples
    --------
    >>> name_problem("Parotid_L") is None
    True
    >>> name_problem("../../x")
    "contains '/'"
    >>> name_problem("aux.nii.gz")
    "is a device name on Windows ('AUX')"
    """
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    bad = sorted({c for c in name if c in _FORBIDDEN})
    if bad:
        return f"contains {bad[0]!r}"
    if _CONTROL.search(name):
        return "contains a control character"
    if name != name.strip():
        return "starts or ends with a space"
    if name.startswith("."):
        return "starts with '.'"
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    if stem in WINDOWS_RESERVED:
        return f"is a device name on Windows ({stem!r})"
    return None


def check_name(name: object, what: str, source: str | Path) -> str:
    """Return ``name`` when it is a safe path component, else raise :class:`DatasetError` naming ``source``.

    Parameters
    ----------
    name : the name read from ``source``.
    what : what the name is, for the message (``"structure name"``, ``"case id"``, ``"arm name"`` …).
    source : the file (or option) the name was read from.
    """
    problem = name_problem(name)
    if problem is not None:
        raise DatasetError(f"{source}: {what} {name!r} {problem}; names become file names, so they may not "
                           "hold path separators, control characters or a leading '.', nor be a "
                           "Windows device name (CON, NUL, COM1 …)")
    return name  # type: ignore[return-value]


def check_names(names: Iterable[object], what: str, source: str | Path) -> None:
    """:func:`check_name` for each of ``names``."""
    for name in names:
        check_name(name, what, source)
