"""Name-and-colour tables for label maps, so a prediction opens named and coloured in a viewer.

* **3D Slicer colour table** (``.ctbl``; Slicer's "Color table file" format): ``# Color table file`` header,
  then one line ``value name R G B A`` per label (0-255; spaces in names become ``_``, as Slicer requires).
  Load it with the label map (*Add Data*) and pick it as the label map's lookup table.
* **ITK-SNAP label description** (``.txt``): the ``# ITK-SnAP Label Description File`` header, then
  ``IDX R G B A VIS MSH "LABEL"`` per label (A from 0 to 1); *Segmentation > Import Label Descriptions*.

Both start with the background (value 0, transparent), as both viewers write them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from clinseg.errors import ImageReadError
from clinseg.io.atomic import write_text

#: One label: value, name, RGB colour (0-255).
Label = tuple[int, str, tuple[int, int, int]]

_ITKSNAP_HEADER = """################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    MSH:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
"""


def labels_of(names: Sequence[str], values: Sequence[int], colours: Sequence[tuple[int, int, int]]) -> list[Label]:
    """``[(value, name, colour), …]`` in label-value order, checked (values 1 … 65535, distinct)."""
    if not len(names) == len(values) == len(colours):
        raise ValueError(f"{len(names)} names, {len(values)} values and {len(colours)} colours")
    if len(set(values)) != len(values) or any(not 0 < int(v) < 65536 for v in values):
        raise ValueError(f"label values must be distinct, from 1 to 65535: {list(values)}")
    return sorted(((int(v), str(n), tuple(int(c) for c in rgb)) for n, v, rgb in zip(names, values, colours)),  # type: ignore[misc]
                  key=lambda label: label[0])


def write_slicer_colour_table(path: str | os.PathLike[str], labels: Sequence[Label]) -> None:
    """Write a 3D Slicer colour table (``.ctbl``) for ``labels`` (:func:`labels_of`); atomic."""
    lines = [f"# Color table file {Path(path).name}", f"# {len(labels) + 1} values", "0 Background 0 0 0 0"]
    lines += [f"{value} {_slicer_name(name)} {r} {g} {b} 255" for value, name, (r, g, b) in labels]
    write_text(path, "\n".join(lines) + "\n")


def write_itksnap_labels(path: str | os.PathLike[str], labels: Sequence[Label]) -> None:
    """Write an ITK-SNAP label description file for ``labels`` (:func:`labels_of`); atomic."""
    rows = [f'{0:>5} {0:>5} {0:>4} {0:>4} {0:>8} {0:>2} {0:>2}    "Clear Label"']
    rows += [f'{value:>5} {r:>5} {g:>4} {b:>4} {1:>8} {1:>2} {1:>2}    "{_quoted(name)}"'
             for value, name, (r, g, b) in labels]
    write_text(path, _ITKSNAP_HEADER + "\n".join(rows) + "\n")


def _slicer_name(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip())


def _quoted(name: str) -> str:
    return name.replace('"', "'")


def read_colour_table(path: str | os.PathLike[str]) -> list[Label]:
    """The labels (background left out) of a Slicer colour table or an ITK-SNAP label description file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read the colour table ({exc.strerror or exc})") from exc
    out: list[Label] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        quoted = re.fullmatch(r'(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+\d+\s+\d+\s+"(.*)"', line)
        plain = re.fullmatch(r"(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+\d+.*)?", line)
        if quoted:
            value, rgb, name = int(quoted[1]), (int(quoted[2]), int(quoted[3]), int(quoted[4])), quoted[5]
        elif plain:
            value, rgb, name = int(plain[1]), (int(plain[3]), int(plain[4]), int(plain[5])), plain[2]
        else:
            raise ImageReadError(f"{path}: line {number} is neither 'value name R G B A' nor an ITK-SNAP label")
        if value:
            out.append((value, name, rgb))
    return out
