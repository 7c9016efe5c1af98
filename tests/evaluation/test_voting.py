"""Hierarchical voting (seed 001 Sec. 2.2.4): hand-made votes, ties, 0/0 cases, folders and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.evaluate import evaluate_predictions
from clinseg.inference.voting import (
    check_thresholds,
    hierarchical_vote,
    vote_folders,
    vote_proportions,
)
from clinseg.io import Geometry, read_image, write_image

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), origin=(5.0, 0.0, 0.0), shape=(1, 2, 3))


def _votes(*columns: list[int]) -> np.ndarray:
    """``(K, V)`` label maps from one list of K model votes per voxel."""
    return np.array(columns).T


def test_proportions_by_hand_with_undefined_ratios_as_zero() -> None:
    maps = _votes([0, 1, 2, 3], [0, 0, 0, 0], [2, 2, 0, 0], [3, 3, 1, 2])
    p_tumour, p_core, p_enh = vote_proportions(maps)
    assert p_tumour.tolist() == [3 / 4, 0.0, 2 / 4, 1.0]
    assert p_core.tolist() == [2 / 3, 0.0, 0.0, 3 / 4]  # voxel 1: 0/0, voxel 2: 0/2
    assert p_enh.tolist() == [1 / 2, 0.0, 0.0, 2 / 3]  # voxels 1 and 2: 0/0


def test_three_level_decision() -> None:
    maps = _votes(
        [0, 0, 0, 1],  # P_tumour 1/4 < 0.5 -> background
        [0, 0, 2, 2],  # P_tumour 2/4 = T (tie counts) -> tumour; P_core 0/2 -> oedema
        [0, 2, 1, 1],  # tumour 3/4; core 2/3 -> core; P_enh 0/2 -> non-enhancing (1)
        [0, 2, 3, 1],  # tumour 3/4; core 2/3; P_enh 1/2 = T (tie) -> enhancing
        [3, 3, 2, 2],  # tumour 1; core 2/4 = T -> core; P_enh 2/2 -> enhancing
        [2, 2, 2, 3],  # tumour 1; core 1/4 -> oedema, although one model says enhancing
        [0, 0, 0, 0],  # no tumour vote: P_core and P_enh are 0/0 and never consulted
        [2, 2, 2, 2],  # no core vote: P_enh is 0/0 and never consulted
    )
    assert hierarchical_vote(maps, (0.5, 0.5, 0.5)).tolist() == [0, 2, 1, 3, 3, 2, 0, 2]
    # stricter thresholds turn the ties the other way
    assert hierarchical_vote(maps, (0.75, 0.6, 0.6)).tolist() == [0, 0, 1, 1, 2, 2, 0, 2]
    # unanimity: T = 1 is allowed and means every model
    assert hierarchical_vote(maps, (1.0, 1.0, 1.0)).tolist() == [0, 0, 0, 0, 2, 2, 0, 2]


def test_seed_thresholds_and_two_model_tie() -> None:
    five = _votes([0, 0, 0, 2, 1])  # P_tumour 2/5, P_core 1/2, P_enh 0/1
    assert hierarchical_vote(five, "seed001").tolist() == [1]
    assert hierarchical_vote(five, "half").tolist() == [0]
    assert hierarchical_vote(_votes([1, 2]), (0.5, 0.5, 0.5)).tolist() == [1]  # 1 of 2 for core is enough
    assert hierarchical_vote(_votes([3, 3, 3], [1, 1, 1]), (0.5, 0.5, 0.5)).tolist() == [3, 1]  # unanimous


def test_thresholds_and_maps_are_validated() -> None:
    assert check_thresholds("0.4, 0.3, 0.4") == (0.4, 0.3, 0.4) == check_thresholds("seed001")
    for bad in ("0,0.5,0.5", "0.5,1.2,0.5", "0.5,0.5", "a,b,c", (0.5, float("nan"), 0.5)):
        with pytest.raises(ConfigError, match="voting thresholds"):
            check_thresholds(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"values must be in \{0, 1, 2, 3\}"):
        hierarchical_vote(np.array([[0, 4]]))
    with pytest.raises(ValueError, match="integer labels"):
        hierarchical_vote(np.array([[0.0, 1.0]]))


# --- folders ------------------------------------------------------------------------------------------------

MODEL_MAPS = [  # three models, one case of 6 voxels
    np.array([[[0, 1, 2], [3, 3, 2]]], np.uint8),
    np.array([[[0, 1, 2], [3, 1, 0]]], np.uint8),
    np.array([[[2, 3, 0], [3, 1, 0]]], np.uint8),
]
EXPECTED = np.array([[[0, 1, 2], [3, 1, 0]]], np.uint8)  # at T = 0.5 each
NAMES = {"necrosis": 1, "oedema": 2, "enhancing": 3}


def _write(folder: Path, case: str, labels: np.ndarray, label_map: bool = True, masks: bool = True,
           names: dict[str, int] = NAMES, geometry: Geometry = GEOM) -> None:
    if label_map:
        write_image(labels, geometry, folder / f"{case}.nii.gz")
    if masks:
        for name, value in names.items():
            write_image(labels == value, geometry, folder / case / f"{name}.nii.gz")


def test_vote_folders_mixes_label_maps_and_masks(tmp_path: Path) -> None:
    dirs = [tmp_path / f"m{k}" for k in range(3)]
    _write(dirs[0], "c0", MODEL_MAPS[0], masks=False)  # label map only
    _write(dirs[1], "c0", MODEL_MAPS[1], label_map=False)  # masks only: rebuilt
    _write(dirs[2], "c0", MODEL_MAPS[2])
    assert hierarchical_vote(np.stack(MODEL_MAPS)).tolist() == EXPECTED.tolist()
    assert vote_folders(dirs, tmp_path / "out") == ["c0"]
    voted = read_image(tmp_path / "out" / "c0.nii.gz")
    assert voted.array.tolist() == EXPECTED.tolist() and not voted.geometry.mismatch(GEOM)
    for name, value in NAMES.items():
        assert read_image(tmp_path / "out" / "c0" / f"{name}.nii.gz").array.tolist() == (EXPECTED == value).tolist()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left


def test_vote_folders_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "c0", MODEL_MAPS[0])
    _write(b, "c1", MODEL_MAPS[1])
    with pytest.raises(DatasetError, match=r"cases differ .* missing \['c0'\], extra \['c1'\]"):
        vote_folders([a, b], tmp_path / "out")
    _write(b, "c0", MODEL_MAPS[1], geometry=Geometry(spacing=(1.0, 1.0, 3.0), shape=GEOM.shape))
    (b / "c1.nii.gz").unlink()
    for mask in (b / "c1").iterdir():
        mask.unlink()
    (b / "c1").rmdir()
    with pytest.raises(DatasetError, match=r"b/c0: geometry differs from .*a/c0: spacing"):
        vote_folders([a, b], tmp_path / "out")
    _write(b, "c0", MODEL_MAPS[1], label_map=False)
    (b / "c0.nii.gz").unlink()
    (b / "c0" / "oedema.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"c0/oedema\.nii\.gz: missing \(no c0\.nii\.gz label map"):
        vote_folders([a, b], tmp_path / "out")
    write_image(np.full(GEOM.shape, 4, np.uint8), GEOM, b / "c0.nii.gz")
    with pytest.raises(DatasetError, match=r"c0\.nii\.gz: label values \[4\] outside 0\.\.3"):
        vote_folders([a, b], tmp_path / "out")
    with pytest.raises(DatasetError, match="must differ from the prediction folders"):
        vote_folders([a, b], a)
    assert not (tmp_path / "out").exists()


def test_vote_cli_writes_what_evaluate_reads(tmp_path: Path) -> None:
    names = {"ncr": 1, "ed": 2, "et": 3}
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "T1"}, "labels": {"background": 0, **names}, "label_mode": "multiclass"}))
    write_image(np.zeros(GEOM.shape, np.float32), GEOM, ds / "imagesTs" / "c0_0000.nii.gz")
    write_image(EXPECTED, GEOM, ds / "labelsTs" / "c0.nii.gz")
    dirs = [tmp_path / f"m{k}" for k in range(3)]
    for folder, labels in zip(dirs, MODEL_MAPS):
        _write(folder, "c0", labels, label_map=False, names=names)  # masks named by the dataset
    out = tmp_path / "voted"
    result = CliRunner().invoke(app, ["vote", *map(str, dirs), "--out", str(out), "--thresholds", "0.5,0.5,0.5",
                                      "--labels", str(ds)])
    assert result.exit_code == 0, result.output
    assert "voted 1 case(s) of 3 model(s)" in result.output
    assert sorted(p.name for p in (out / "c0").iterdir()) == ["ed.nii.gz", "et.nii.gz", "ncr.nii.gz"]
    metrics = evaluate_predictions(out, ds, regions="brats")
    assert metrics.dice.tolist() == [1.0, 1.0, 1.0]
    bad = CliRunner().invoke(app, ["vote", *map(str, dirs), "--out", str(out), "--thresholds", "0,1,1"])
    assert bad.exit_code == 1 and "voting thresholds must be in (0, 1]" in bad.output
