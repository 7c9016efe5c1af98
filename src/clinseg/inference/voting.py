"""Hierarchical voting of several models' brain-tumour label maps (seed 001, Sec. 2.2.4 and Fig. 2.7).

Classes are the seed's: 0 background, 1 non-enhancing core (necrosis), 2 oedema, 3 enhancing core. With
``v_c`` the number of models that give a voxel class ``c``:

* ``P_tumour = (v1 + v2 + v3) / (v0 + v1 + v2 + v3)``,
* ``P_core = (v1 + v3) / (v1 + v2 + v3)`` (among the votes for the whole tumour),
* ``P_enhancing = v3 / (v1 + v3)`` (among the votes for the tumour core),

and the class is decided top-down: tumour if ``P_tumour >= T_tumour`` (else 0); within tumour, core if
``P_core >= T_core`` (else oedema, 2); within core, enhancing (3) if ``P_enhancing >= T_enhancing`` (else 1).

Conventions, read from the seed:

* *Non-strict* ``>=``. The text says "above a chosen threshold" (line 860) but lets ``0 < T_R <= 1``
  (line 865) and calls a high ``T_R`` "a large proportion of models have to vote" for the region: ``T_R = 1``
  (unanimity) is only meaningful with ``>=``, and ``T_R = 0`` is only excluded because with ``>=`` it would
  make every voxel tumour. So a proportion equal to the threshold (a tie such as 1 of 2 models at 0.5) selects
  the region. Proportions within 1e-9 of the threshold count as equal (float rounding of ``k / n``).
* ``0 / 0``: ``P_core`` is undefined only without tumour votes and ``P_enhancing`` only without core votes;
  then the parent proportion is 0, below any allowed threshold, so the undefined proportion is never used.
  :func:`vote_proportions` reports it as 0.
* Thresholds: the seed uses ``T_tumour = 0.4, T_core = 0.3, T_enhancing = 0.4`` for its ensembles
  (line 1127-1128, preset ``"seed001"``); the default here is 0.5 each (preset ``"half"``).

Folders: a prediction folder holds ``<case>.nii.gz`` label maps and/or ``<case>/<structure>.nii.gz`` masks
(:func:`clinseg.inference.predictor.write_case`). The label map is used when present, its values read as the
classes above (the predictor writes structure ``n`` as ``n + 1``, which is the class when the dataset
declares necrosis 1, oedema 2, enhancing 3). Without a label map it is rebuilt from the masks, a voxel taking
the label value of its structure (the highest one where masks overlap, as the predictor's label map does).
The result is written in the same layout, so ``clinseg evaluate`` reads it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.predictor import write_case
from clinseg.io.image import Geometry, read_image
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Structure name -> class value written for the voted classes when no dataset names them.
DEFAULT_CLASSES: dict[str, int] = {"necrosis": 1, "oedema": 2, "enhancing": 3}

#: Named ``(T_tumour, T_core, T_enhancing)``; ``"seed001"`` is the seed's choice (lines 1127-1128).
THRESHOLD_PRESETS: dict[str, tuple[float, float, float]] = {
    "half": (0.5, 0.5, 0.5),
    "seed001": (0.4, 0.3, 0.4),
}

_EPS = 1e-9
_ENDING = ".nii.gz"


def vote_proportions(label_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P_tumour, P_core, P_enhancing)`` per voxel, each ``(*spatial)`` float64; ``0 / 0`` is reported as 0.

    Parameters
    ----------
    label_maps : ``(K, *spatial)`` integer label maps of ``K >= 1`` models, values in {0, 1, 2, 3}.

    Examples
    --------
    >>> maps = np.array([[0], [2], [1], [3]])           # 4 models, 1 voxel: v = (1, 1, 1, 1)
    >>> [p.tolist() for p in vote_proportions(maps)]    # 3/4, 2/3, 1/2
    [[0.75], [0.6666666666666666], [0.5]]
    """
    maps = _check_maps(label_maps)
    v1, v2, v3 = (np.count_nonzero(maps == c, axis=0) for c in (1, 2, 3))
    tumour, core = v1 + v2 + v3, v1 + v3
    p_tumour = tumour / maps.shape[0]
    p_core = np.divide(core, tumour, out=np.zeros(tumour.shape), where=tumour > 0)
    p_enhancing = np.divide(v3, core, out=np.zeros(core.shape), where=core > 0)
    return p_tumour, p_core, p_enhancing


def hierarchical_vote(label_maps: np.ndarray, thresholds: Sequence[float] = (0.5, 0.5, 0.5)) -> np.ndarray:
    """Fuse ``K`` label maps into one by the seed's decision tree (module docstring).

    Parameters
    ----------
    label_maps : ``(K, *spatial)`` integer label maps (e.g. ``(K, Z, Y, X)``), values in {0, 1, 2, 3}. Not
        modified.
    thresholds : ``(T_tumour, T_core, T_enhancing)``, each in ``(0, 1]``.

    Returns
    -------
    np.ndarray
        ``(*spatial)`` uint8 label map, values in {0, 1, 2, 3}.

    Examples
    --------
    >>> maps = np.array([[0, 2, 3], [1, 2, 1], [0, 0, 3]])   # 3 models, 3 voxels
    >>> hierarchical_vote(maps, (0.5, 0.5, 0.5)).tolist()      # 1/3 tumour; 2/3 tumour, no core; 3/3 core, 2/3 enh.
    [0, 2, 3]
    """
    t_tumour, t_core, t_enhancing = check_thresholds(thresholds)
    p_tumour, p_core, p_enhancing = vote_proportions(label_maps)
    tumour = p_tumour >= t_tumour - _EPS
    core = tumour & (p_core >= t_core - _EPS)
    enhancing = core & (p_enhancing >= t_enhancing - _EPS)
    out = np.zeros(p_tumour.shape, dtype=np.uint8)
    out[tumour] = 2
    out[core] = 1
    out[enhancing] = 3
    return out


def check_thresholds(thresholds: Sequence[float] | str) -> tuple[float, float, float]:
    """Validate ``(T_tumour, T_core, T_enhancing)``, given as numbers, ``"0.4,0.3,0.4"`` or a preset name.

    Raises :class:`ConfigError` unless there are three numbers in ``(0, 1]`` (seed 001 line 865).
    """
    if isinstance(thresholds, str):
        text = thresholds.strip()
        if text in THRESHOLD_PRESETS:
            return THRESHOLD_PRESETS[text]
        parts: Sequence[object] = [p.strip() for p in text.split(",")]
    else:
        parts = list(thresholds)
    try:
        values = tuple(float(p) for p in parts)  # type: ignore[arg-type]
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(f"voting thresholds must be three numbers T_tumour,T_core,T_enhancing (e.g. 0.4,0.3,0.4) "
                          f"or a preset {sorted(THRESHOLD_PRESETS)}, got {thresholds!r}")
    bad = [t for t in values if not (math.isfinite(t) and 0.0 < t <= 1.0)]
    if bad:
        raise ConfigError(f"voting thresholds must be in (0, 1], got {list(values)}")
    return values  # type: ignore[return-value]


def voting_classes(label_values: Mapping[str, int] | None = None, where: str = "dataset.json") -> dict[str, int]:
    """Structure name -> class value of the voted classes: ``label_values`` checked, or :data:`DEFAULT_CLASSES`.

    Raises :class:`DatasetError` unless ``label_values`` declares exactly the values 1, 2, 3.
    """
    if label_values is None:
        return dict(DEFAULT_CLASSES)
    if sorted(label_values.values()) != [1, 2, 3]:
        declared = ", ".join(f"{n}={v}" for n, v in label_values.items())
        raise DatasetError(f"{where}: voting needs exactly the labels 1 (non-enhancing core), 2 (oedema) and "
                           f"3 (enhancing core); declared: {declared}")
    return dict(sorted(label_values.items(), key=lambda item: item[1]))


def list_cases(pred_dir: Path) -> set[str]:
    """Case ids of a prediction folder: ``<case>.nii.gz`` files and ``<case>/`` folders (hidden ones skipped)."""
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder not found")
    cases = set()
    for entry in pred_dir.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            cases.add(entry.name)
        elif entry.name.endswith(_ENDING):
            cases.add(entry.name[: -len(_ENDING)])
    return cases


def read_label_map(pred_dir: Path, case: str, classes: Mapping[str, int]) -> tuple[np.ndarray, Geometry]:
    """One model's ``(Z, Y, X)`` uint8 label map of ``case`` and its geometry (label map, else rebuilt from masks).

    Raises :class:`DatasetError` naming the file when a needed mask is missing, geometries differ or a label
    map holds a value outside {0, 1, 2, 3}.
    """
    path = pred_dir / f"{case}{_ENDING}"
    if path.is_file():
        image = read_image(path)
        values = np.unique(image.array)
        if not np.isin(values, (0, 1, 2, 3)).all():
            raise DatasetError(f"{path}: label values {values.tolist()} outside 0..3 (0 background, 1 non-enhancing "
                               "core, 2 oedema, 3 enhancing)")
        return image.array.astype(np.uint8), image.geometry
    labels: np.ndarray | None = None
    geometry: Geometry | None = None
    for name, value in sorted(classes.items(), key=lambda item: item[1]):
        mask_path = pred_dir / case / f"{name}{_ENDING}"
        if not mask_path.is_file():
            raise DatasetError(f"{mask_path}: missing (no {path.name} label map to read instead)")
        image = read_image(mask_path)
        if geometry is None or labels is None:
            geometry, labels = image.geometry, np.zeros(image.array.shape, dtype=np.uint8)
        elif problems := geometry.mismatch(image.geometry):
            raise DatasetError(f"{mask_path}: geometry differs from the other masks of {case!r}: {'; '.join(problems)}")
        labels[image.array > 0] = value
    assert labels is not None and geometry is not None
    return labels, geometry


def vote_folders(
    pred_dirs: Sequence[str | Path],
    out_dir: str | Path,
    thresholds: Sequence[float] | str = (0.5, 0.5, 0.5),
    label_values: Mapping[str, int] | None = None,
) -> list[str]:
    """Vote every case of several prediction folders into ``out_dir``; returns the case ids.

    Parameters
    ----------
    pred_dirs : one folder per model, each with the same cases (``<case>.nii.gz`` or ``<case>/<name>.nii.gz``).
    out_dir : written as ``OUT/<case>.nii.gz`` plus ``OUT/<case>/<name>.nii.gz`` per class (each case folder
        appears only once complete); must not be one of ``pred_dirs``.
    thresholds : ``(T_tumour, T_core, T_enhancing)`` or a string accepted by :func:`check_thresholds`.
    label_values : structure name -> value (a dataset's ``label_values``): names of the masks read when a
        folder has no label map, and of the masks written; :data:`DEFAULT_CLASSES` when omitted.

    Raises
    ------
    DatasetError
        When a folder is missing, the folders hold different cases, a case's geometry differs between
        folders, or an input is unreadable or invalid (the message names the file).
    ConfigError
        For invalid thresholds.
    """
    values = check_thresholds(thresholds)
    classes = voting_classes(label_values)
    dirs = [Path(p) for p in pred_dirs]
    out = Path(out_dir)
    if not dirs:
        raise DatasetError("voting needs at least one prediction folder")
    if any(out.resolve() == d.resolve() for d in dirs):
        raise DatasetError(f"{out}: the output folder must differ from the prediction folders")
    cases = list_cases(dirs[0])
    for folder in dirs[1:]:
        other = list_cases(folder)
        if other != cases:
            only_first, only_other = sorted(cases - other), sorted(other - cases)
            raise DatasetError(f"{folder}: cases differ from {dirs[0]}: missing {only_first[:5]}, extra "
                               f"{only_other[:5]}")
    if not cases:
        raise DatasetError(f"{dirs[0]}: no predictions (<case>.nii.gz or <case>/) to vote on")
    names = list(classes)
    for case in track(sorted(cases), "voting"):
        maps, geometry = [], None
        for folder in dirs:
            labels, geom = read_label_map(folder, case, classes)
            if geometry is None:
                geometry = geom
            elif problems := geometry.mismatch(geom):
                raise DatasetError(f"{folder / case}: geometry differs from {dirs[0] / case}: {'; '.join(problems)}")
            maps.append(labels)
        assert geometry is not None
        fused = hierarchical_vote(np.stack(maps), values)
        masks = np.stack([fused == classes[name] for name in names]).astype(np.uint8)
        write_case(out, case, masks, names, geometry, [classes[name] for name in names])
    log.info("voted %d case(s) of %d model(s) into %s", len(cases), len(dirs), out)
    return sorted(cases)


def _check_maps(label_maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(label_maps)
    if maps.ndim < 2 or maps.shape[0] < 1:
        raise ValueError(f"label_maps must be (K, *spatial) with K >= 1 models, got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.integer):
        raise ValueError(f"label_maps must hold integer labels, got dtype {maps.dtype}")
    if not np.isin(maps, (0, 1, 2, 3)).all():
        raise ValueError(f"label_maps values must be in {{0, 1, 2, 3}}, got {np.unique(maps).tolist()}")
    return maps
