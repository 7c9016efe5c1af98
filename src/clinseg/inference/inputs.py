"""What ``clinseg predict`` reads: one image file, a folder of images, or case folders with ``--channels``.

The rules, in the order they apply (``docs/predict.md`` shows examples):

* **One file** (``ct.nii.gz``): one case, named after the file without its ending (and without a
  ``_0000`` channel suffix). A run that reads several channels needs ``--channels``.
* **A folder, one-channel run**: every image file is a case, whatever its name (``ct.nii.gz``,
  ``patient7.nrrd``, TotalSegmentator's habit). nnU-Net's ``<case>_0000`` is channel 0 of ``<case>``; a
  ``<case>_0001`` … beside a ``<case>_0000`` is a channel the run does not read: an error naming the file,
  never silently ignored.
* **A folder, multi-channel run**: nnU-Net's ``<case>_<XXXX>`` files, every channel ``0 … N-1`` present.
* **``--channels``** (any run): one file-name ending per channel the run reads, in its order
  (``t1.nii.gz,t2.nii.gz``) or by the run's channel names (``T1=t1.nii.gz,T2=t2.nii.gz``). A file belongs to
  the channel whose ending its name has (the longest one when several match); its case is the rest of the
  name (``p7_t1.nii.gz`` -> ``p7``), or, when nothing is left, the folder that holds it (``p7/t1.nii.gz``
  -> ``p7``; the input folder itself for ``t1.nii.gz``). The input folder and its direct subfolders are
  searched, so a folder of case folders (``IN/<case>/t1.nii.gz``) is read as it is; other files are ignored.

Hidden files (``.name``) and Slicer segmentations (``.seg.nrrd``) are never inputs. Case ids become file
names and are checked with :func:`clinseg.names.check_name`. Every problem is a
:class:`~clinseg.errors.DatasetError` (or :class:`~clinseg.errors.ConfigError` for a bad ``--channels``)
naming the file or folder.

Examples
--------
>>> parse_channels("T2=t2.nii.gz,T1=t1.nii.gz", ("T1", "T2"))
('t1.nii.gz', 't2.nii.gz')
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from clinseg.errors import ConfigError, DatasetError
from clinseg.io.image import SUPPORTED_ENDINGS, has_supported_ending, strip_ending
from clinseg.names import check_name

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_SEPARATORS = "_-. "


def parse_channels(text: str, channel_names: Sequence[str], option: str = "--channels") -> tuple[str, ...]:
    """One file-name ending per channel of the run, from ``E1,E2`` (run order) or ``NAME=E,...`` (by name).

    Parameters
    ----------
    text : the option's value, comma-separated.
    channel_names : the run's channel names, in the run's order (``fingerprint.json``).
    option : the option's name, for messages.
    """
    entries = [e.strip() for e in str(text).split(",") if e.strip()]
    named = [e for e in entries if "=" in e]
    if named and len(named) != len(entries):
        raise ConfigError(f"{option}: give every channel as NAME=ENDING or none of them, got {text!r}")
    if named:
        by_name: dict[str, str] = {}
        for entry in entries:
            name, ending = (part.strip() for part in entry.split("=", 1))
            if name not in channel_names:
                raise ConfigError(f"{option}: {name!r} is not a channel of this run ({', '.join(channel_names)})")
            if name in by_name:
                raise ConfigError(f"{option}: channel {name!r} given twice")
            by_name[name] = ending
        missing = [n for n in channel_names if n not in by_name]
        if missing:
            raise ConfigError(f"{option}: no ending for channel(s) {', '.join(missing)} of this run")
        endings = [by_name[n] for n in channel_names]
    else:
        endings = entries
        if len(endings) != len(channel_names):
            raise ConfigError(f"{option}: this run reads {len(channel_names)} channel(s) ({', '.join(channel_names)}), "
                              f"got {len(endings)} ending(s) in {text!r}")
    for ending in endings:
        if not ending or "/" in ending or "\\" in ending:
            raise ConfigError(f"{option}: {ending!r} is not a file-name ending (e.g. t1.nii.gz)")
    if len({e.lower() for e in endings}) != len(endings):
        raise ConfigError(f"{option}: two channels have the same ending in {text!r}")
    return tuple(endings)


def find_cases(inputs: str | Path, num_channels: int, channels: Sequence[str] | None = None
               ) -> dict[str, list[Path]]:
    """The cases of a prediction input: ``{case id: [file of channel 0, 1, …]}``, sorted by case id.

    Parameters
    ----------
    inputs : an image file or a folder (see the module docstring for the rules).
    num_channels : how many image channels the run reads.
    channels : one file-name ending per channel (:func:`parse_channels`), or ``None`` for the file-name rules.
    """
    path = Path(inputs)
    if not path.exists():
        raise DatasetError(f"{path}: input not found (neither an image file nor an input folder)")
    if channels is not None:
        if len(channels) != num_channels:
            raise ConfigError(f"--channels: this run reads {num_channels} channel(s), got {len(channels)} ending(s)")
        if not path.is_dir():
            raise ConfigError(f"{path}: --channels reads a folder (the case's, or one of case folders), "
                              "not a file")
        return _by_endings(path, channels)
    if path.is_file():
        return _one_file(path, num_channels)
    return _by_names(path, num_channels)


def _is_input(path: Path) -> bool:
    name = path.name
    return (not name.startswith(".") and path.is_file() and has_supported_ending(name)
            and not name.lower().endswith(".seg.nrrd"))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_input(p))


def _one_file(path: Path, num_channels: int) -> dict[str, list[Path]]:
    if not _is_input(path):
        raise DatasetError(f"{path}: not an image file clinseg reads ({', '.join(SUPPORTED_ENDINGS)})")
    if num_channels != 1:
        raise DatasetError(f"{path}: this run reads {num_channels} channels; give a folder of <case>_0000 … "
                           "files, or the case's folder with --channels")
    stem = strip_ending(path.name)
    match = _CHANNEL_RE.match(stem)
    case = match["case"] if match and int(match["channel"]) == 0 else stem
    return {check_name(case, "case id", path): [path]}


def _by_names(folder: Path, num_channels: int) -> dict[str, list[Path]]:
    """nnU-Net's ``<case>_<XXXX>`` names; for a one-channel run any name (see the module docstring)."""
    files = _images(folder)
    if not files:
        hint = (" (case folders? name the file of each channel with --channels, e.g. --channels ct.nii.gz)"
                if any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()) else "")
        raise DatasetError(f"{folder}: no images found (expected image files such as ct.nii.gz or "
                           f"<case>_0000.nii.gz){hint}")
    matches = {f: _CHANNEL_RE.match(strip_ending(f.name)) for f in files}
    with_channel_0 = {m["case"] for m in matches.values() if m and int(m["channel"]) == 0}
    cases: dict[str, dict[int, Path]] = defaultdict(dict)
    for path, match in matches.items():
        if match and (num_channels > 1 or match["case"] in with_channel_0):
            case, channel = match["case"], int(match["channel"])
        elif num_channels == 1:
            case, channel = strip_ending(path.name), 0
        else:
            raise DatasetError(f"{path}: image name must be <case>_<4-digit channel> (e.g. case_0000.nii.gz) for "
                               f"a run of {num_channels} channels, or name each channel's file with --channels")
        check_name(case, "case id", path)
        if channel >= num_channels:
            raise DatasetError(f"{path}: channel {channel} of case {case!r}, but the run reads {num_channels} "
                               f"channel(s) (_0000{'' if num_channels == 1 else f' to _{num_channels - 1:04d}'})")
        if channel in cases[case]:
            raise DatasetError(f"{path}: second file for case {case!r} channel {channel} (also "
                               f"{cases[case][channel].name})")
        cases[case][channel] = path
    return _complete(folder, cases, num_channels, lambda c: f"channel(s) {c}")


def _by_endings(folder: Path, endings: Sequence[str]) -> dict[str, list[Path]]:
    """Files named by ``--channels`` endings in ``folder`` and its direct subfolders."""
    lowered = [e.lower() for e in endings]
    candidates = _images(folder)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        candidates += _images(sub)
    cases: dict[str, dict[int, Path]] = defaultdict(dict)
    for path in candidates:
        name = path.name.lower()
        hits = [k for k, e in enumerate(lowered) if name.endswith(e)]
        if not hits:
            continue
        channel = max(hits, key=lambda k: len(lowered[k]))
        case = path.name[: len(path.name) - len(endings[channel])].rstrip(_SEPARATORS) or path.parent.name
        check_name(case, "case id", path)
        if channel in cases[case]:
            raise DatasetError(f"{path}: second file for case {case!r} channel {endings[channel]!r} (also "
                               f"{cases[case][channel]})")
        cases[case][channel] = path
    if not cases:
        raise DatasetError(f"{folder}: no file ending with {' or '.join(endings)} here or in its subfolders "
                           "(--channels)")
    return _complete(folder, cases, len(endings), lambda c: ", ".join(repr(endings[k]) for k in c))


def _complete(folder: Path, cases: dict[str, dict[int, Path]], num_channels: int,
              describe: Callable[[list[int]], str]) -> dict[str, list[Path]]:
    result = {}
    for case, files in sorted(cases.items()):
        missing = [c for c in range(num_channels) if c not in files]
        if missing:
            raise DatasetError(f"{folder}: case {case!r} lacks {describe(missing)} of {num_channels}")
        result[case] = [files[c] for c in range(num_channels)]
    return result
