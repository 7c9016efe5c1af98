"""Training method ``2d``: the schedule for missing MR sequences (seed 001 §2.3.3), end to end on tiny data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import DatasetError
from clinseg.io import Geometry, write_image
from clinseg.training.checkpoint import load_checkpoint
from clinseg.training.config import TrainConfig
from clinseg.training.modality import slice_patch, train_modality

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), shape=(8, 32, 32))
SEQUENCES = ("T1", "T2")
TINY = {
    "model": "modality2d",
    "model_kwargs": {"features": [4, 8], "subnet_features": [4, 8]},
    "patch_size": [1, 32, 32],
    "batch_size": 2,
    "val_cases": 1,
    "val_every": 2,
    "checkpoint_every": 2,
    "threads": 1,
    "device": "cpu",
}


def _brain_dataset(root: Path, missing: dict[str, str]) -> Path:
    """Five training cases and one test case, channels T1 and T2, a multiclass label map (tumour 1, oedema 2);
    ``missing`` maps a case to the sequence it lacks (an all-zero volume, declared in dataset.json)."""
    rng = np.random.default_rng(0)
    _, y, x = np.ogrid[:8, :32, :32]
    label = ((y - 16) ** 2 + (x - 16) ** 2 <= 64).astype(np.uint8) * 2
    label[(y - 16) ** 2 + (x - 16) ** 2 <= 16] = 1
    label = np.broadcast_to(label, GEOM.shape).copy()
    spec = {"name": "Brain", "channel_names": {str(i): s for i, s in enumerate(SEQUENCES)},
            "labels": {"background": 0, "tumour": 1, "oedema": 2}, "label_mode": "multiclass",
            "cases": {case: {"missing_channels": [seq]} for case, seq in missing.items()}}
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(spec))
    for split, cases in (("Tr", [f"case_{i}" for i in range(5)]), ("Ts", ["test_0"])):
        for case in cases:
            for c, seq in enumerate(SEQUENCES):
                image = (label * (c + 1) + rng.normal(size=GEOM.shape)).astype(np.float32)
                if missing.get(case) == seq:
                    image[:] = 0
                write_image(image, GEOM, root / f"images{split}" / f"{case}_{c:04d}.nii.gz")
            write_image(label, GEOM, root / f"labels{split}" / f"{case}.nii.gz")
    return root


def _cases(run: Path) -> set[str]:
    split = json.loads((run / "split.json").read_text())
    return set(split["train"]) | set(split["validation"])


def test_missing_sequences_pretrain_each_subnetwork_then_the_whole_network(tmp_path: Path) -> None:
    root = _brain_dataset(tmp_path / "ds", {"case_3": "T2", "case_4": "T1"})
    run = tmp_path / "run"
    states = train_modality(root, run, TrainConfig(**TINY), plane="axial", iterations=2)
    assert list(states) == ["subnet_T1", "subnet_T2", "full"]
    # Step 1: each subnetwork on the cases that have its sequence; step 2: the complete cases only.
    assert _cases(run / "subnet_T1") == {"case_0", "case_1", "case_2", "case_3"}
    assert _cases(run / "subnet_T2") == {"case_0", "case_1", "case_2", "case_4"}
    assert _cases(run) == {"case_0", "case_1", "case_2"}
    method = json.loads((run / "method.json").read_text())
    assert method["missing_sequences"] == {"case_3": ["T2"], "case_4": ["T1"]}
    assert [s["name"] for s in method["stages"]] == ["subnet_T1", "subnet_T2", "full"]

    # The whole network starts from the step-1 weights: subnetwork k's tensors under net.subnets.<k>.
    gathered = load_checkpoint(run / "subnets_init" / "checkpoints" / "best.pt")["model"]
    for k, seq in enumerate(SEQUENCES):
        for name, tensor in load_checkpoint(run / f"subnet_{seq}" / "checkpoints" / "best.pt")["model"].items():
            assert torch.equal(gathered[f"net.subnets.{k}." + name.removeprefix("net.")], tensor), name
    init = json.loads((run / "init.json").read_text())
    assert set(init["transferred"]) == set(gathered)
    assert any(n.startswith("net.subnets.0.") for n in init["transferred"])
    assert not any(n.startswith(("net.subnets.2.", "net.main.", "net.head.")) for n in init["transferred"])

    result = CliRunner().invoke(app, ["predict", str(run), str(root / "imagesTs"), str(tmp_path / "pred"),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pred" / "test_0.nii.gz").is_file()
    # A stage-1 subnetwork (trained on channel T2 alone) predicts from the full multi-sequence input.
    result = CliRunner().invoke(app, ["predict", str(run / "subnet_T2"), str(root / "imagesTs"),
                                      str(tmp_path / "pred_t2"), "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_complete_data_trains_the_whole_network_only_through_the_cli(tmp_path: Path) -> None:
    root = _brain_dataset(tmp_path / "ds", {})
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({**TINY, "patch_size": [32, 1, 32]}))  # a coronal patch: re-cut to sagittal
    result = CliRunner().invoke(app, ["train", str(root), "--out", str(run), "--method", "2d", "--plane",
                                      "sagittal", "--config", str(config), "--iterations", "1"])
    assert result.exit_code == 0, result.output
    assert not list(run.glob("subnet_*")) and _cases(run) == {f"case_{i}" for i in range(5)}
    saved = (run / "config.yaml").read_text()
    assert "plane: sagittal" in saved and "- 32\n- 32\n- 1\n" in saved


def test_slice_patch_is_one_voxel_thick_along_the_slicing_axis() -> None:
    assert slice_patch([], 0) == [1, 64, 64]
    assert slice_patch([1, 48, 40], 2) == [48, 40, 1]
    assert slice_patch([16, 24, 32], 1) == [16, 1, 32]


def test_other_methods_refuse_plane(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "r"), "--plane", "axial"])
    assert result.exit_code != 0 and "plane" in result.output


def test_a_study_subset_and_validation_follow_the_channel_selection(tmp_path: Path) -> None:
    """A study fixes the subset and the validation cases; a stage that reads T2 drops those lacking T2 and,
    when no validation case has T2, validates on another case outside the subset."""
    from clinseg.training.run import train

    root = _brain_dataset(tmp_path / "ds", {"case_1": "T2", "case_4": "T2"})
    cfg = TrainConfig(**{**TINY, "model": "modality2d_subnet", "model_kwargs": {"subnet_features": [4, 8]}},
                      channels=[1], val_ids=["case_4"], subset={"case_0": ["tumour", "oedema"],
                                                                 "case_1": ["tumour", "oedema"]})
    train(root, tmp_path / "t2", cfg, iterations=1)
    split = json.loads((tmp_path / "t2" / "split.json").read_text())
    assert split["train"] == ["case_0"]  # case_1 lacks T2
    assert len(split["validation"]) == 1 and split["validation"][0] in {"case_2", "case_3"}
    only_missing = dataclasses.replace(cfg, subset={"case_1": ["tumour"]})
    with pytest.raises(DatasetError, match="no case of the configured subset has channel"):
        train(root, tmp_path / "none", only_missing, iterations=1)
