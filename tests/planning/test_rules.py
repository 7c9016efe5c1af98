"""The planning rules: target spacing, topology, patch fitting, normalisation and mirroring by modality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data.dataset import load_dataset
from clinseg.planning.fingerprint import channel_modality, fingerprint_dataset
from clinseg.planning.plan import Plan, load_plan, save_plan
from clinseg.planning.rules import DeviceBudget, divisors, fit_patch, make_plan, target_spacing, topology
from tests._synthetic import write_dataset


def test_target_spacing_is_the_median_or_the_10th_percentile_of_a_coarse_axis() -> None:
    spacings = np.array([[1.0, 1.0, 2.0], [0.8, 0.8, 3.0], [1.2, 1.2, 2.5]])
    assert target_spacing(spacings, np.array([[40, 100, 100]] * 3)) == (1.0, 1.0, 2.5)
    # 5 mm slices, 0.9 mm in plane, few slices: nnU-Net's anisotropy rule takes the 10th percentile in z
    thick = np.array([[0.9, 0.9, 5.0], [0.9, 0.9, 6.0], [0.9, 0.9, 4.0], [0.9, 0.9, 5.5]])
    z = target_spacing(thick, np.array([[30, 300, 300]] * 4))[2]
    assert z == pytest.approx(np.percentile([5.0, 6.0, 4.0, 5.5], 10))


def test_topology_does_not_pool_the_coarse_axis_until_it_catches_up() -> None:
    kernels, strides = topology([16, 128, 128], [4.0, 1.0, 1.0])
    # z (4 mm) is pooled only once y and x have reached 4 mm: after two in-plane poolings
    assert strides[1] == [1, 2, 2] and strides[2] == [1, 2, 2] and strides[3] == [2, 2, 2]
    assert kernels[0] == [1, 3, 3] and kernels[1] == [1, 3, 3] and kernels[2] == [3, 3, 3]
    assert kernels[-1] == [3, 3, 3]
    isotropic = topology([64, 64, 64], [1.0, 1.0, 1.0])[1]
    assert isotropic[0] == [1, 1, 1] and all(s == [2, 2, 2] for s in isotropic[1:]) and len(isotropic) == 5


@pytest.mark.parametrize("voxels", [32**3, 64**3, 80**3])
def test_fit_patch_respects_the_budget_and_the_divisors(voxels: int) -> None:
    spacing = [2.5, 3.9, 3.9]
    patch = fit_patch([112, 67, 115], spacing, voxels)
    assert np.prod(patch) <= voxels
    assert all(p % d == 0 for p, d in zip(patch, divisors(topology(patch, spacing)[1])))
    mm = np.array(patch) * spacing
    assert mm.max() / mm.min() < 2.1  # about as long in mm along every axis


def test_fit_patch_never_exceeds_a_small_body_box_by_more_than_a_divisor() -> None:
    patch = fit_patch([20, 24, 24], [1.0, 1.0, 1.0], 64**3)
    assert all(p <= s + 8 for p, s in zip(patch, [20, 24, 24]))


def test_channel_modality_by_name() -> None:
    assert [channel_modality(n) for n in ("CT", "ct", "planning CT", "CT_HU", "T1", "FLAIR", "ACT1")] == \
        ["CT", "CT", "CT", "CT", "MR", "MR", "MR"]


def _plan(root: Path) -> tuple[Plan, object]:
    ds = load_dataset(root)
    fp = fingerprint_dataset(ds, "hash", workers=1)
    return make_plan(fp, ds.spec, DeviceBudget.for_device("cpu")), fp


def test_ct_plan_clips_to_foreground_percentiles_and_mirrors_left_right_with_pairs(tmp_path: Path) -> None:
    plan, fp = _plan(write_dataset(tmp_path / "ct", spacings=[(1.0, 1.0, 2.0), (0.8, 0.8, 2.0), (1.2, 1.2, 3.0)]))
    assert plan.spacing == [1.0, 1.0, 2.0]  # the median per axis
    norm = plan.normalization[0]
    assert norm.scheme == "ct" and norm.clip is not None
    assert norm.clip[0] >= 20 and norm.clip[1] <= 60  # the structures lie in soft tissue (40 HU +- noise)
    assert plan.lr_axis == 2 and plan.mirror_axes == [2]
    assert plan.lateral_pairs == [["Eye_L", "Eye_R"]]
    assert set(plan.largest_component) == {"Organ", "Eye_L", "Eye_R"}
    assert fp.structures["Organ"].cases == 3 and fp.structures["Organ"].volume_ml > 0
    assert np.allclose(plan.spacing_range, [[0.8, 0.8, 2.0], [1.2, 1.2, 3.0]])
    assert plan.model == "dynunet" and len(plan.model_kwargs["features"]) == len(plan.model_kwargs["strides"])


def test_mr_plan_normalises_each_case_inside_its_body(tmp_path: Path) -> None:
    plan, _ = _plan(write_dataset(tmp_path / "mr", modality="T1"))
    assert [n.scheme for n in plan.normalization] == ["mr"]


def test_an_unpaired_lateral_structure_forbids_left_right_mirroring(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ct")
    raw = json.loads((root / "dataset.json").read_text())
    raw["labels"] = ["Organ", "Eye_L"]
    (root / "dataset.json").write_text(json.dumps(raw))
    for case in (root / "structuresTr").iterdir():
        (case / "Eye_R.nii.gz").unlink()
    for case in (root / "structuresTs").iterdir():
        (case / "Eye_R.nii.gz").unlink()
    plan, _ = _plan(root)
    assert plan.mirror_axes == [] and plan.lateral_pairs == []


def test_plan_round_trips_through_json_and_overrides(tmp_path: Path) -> None:
    plan, _ = _plan(write_dataset(tmp_path / "ct"))
    save_plan(plan, tmp_path / "plan.json")
    again = load_plan(tmp_path / "plan.json")
    assert again == plan
    changed = plan.with_overrides({"spacing": [2.0, 2.0, 2.0], "crop_to_body": None})
    assert changed.spacing == [2.0, 2.0, 2.0] and changed.crop_to_body is True


def test_clinseg_plan_writes_the_plan_beside_the_dataset(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from clinseg.cli.main import app

    root = write_dataset(tmp_path / "ds")
    result = CliRunner().invoke(app, ["plan", str(root), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    plan = load_plan(tmp_path / "ds_plan.json")
    assert plan.normalization[0].scheme == "ct" and plan.patch_size and "target spacing" in result.output
    assert not (root / "plan.json").exists()  # the dataset is never written to
