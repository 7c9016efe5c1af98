"""One network for several tasks (seed 004): the union dataset, task-balanced batches, masking of the
classes a task cannot contain, and a two-task training through the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import load_dataset
from clinseg.data.loading import load_case
from clinseg.data.task_sampler import BACKGROUND, TaskBalancedSampler, task_counts
from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.predictor import Predictor
from clinseg.io import Geometry, read_image, write_image
from clinseg.losses import masked_bce
from clinseg.training.config import TrainConfig
from clinseg.training.label_view import validation_view
from clinseg.training.multitask import (
    multitask_config,
    read_tasks,
    task_of,
    union_classes,
    write_union,
)


def _task(root: Path, name: str, spacing: float, labels: dict[str, int], label_map: bool, cases: int = 3) -> Path:
    """A tiny one-channel dataset: 12³ volumes of ``spacing`` mm, a block per class (masks or a label map)."""
    geom = Geometry((spacing,) * 3, shape=(12, 12, 12))
    spec = {"name": name, "channel_names": {"0": "img"}, "labels": labels, "label_mode": "multilabel"}
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(len(name))
    for split, prefix, n in (("Tr", "c", cases), ("Ts", "t", 1)):
        for i in range(n):
            case = f"{prefix}{i}"
            write_image(rng.uniform(1, 2, geom.shape).astype(np.float32), geom, root / f"images{split}" / f"{case}_0000.nii.gz")
            lm = np.zeros(geom.shape, np.uint8)
            for k, (cls, value) in enumerate(labels.items()):
                lm[2 + 4 * k: 5 + 4 * k, 3:9, 3:9] = value
                if not label_map:
                    write_image((lm == value).astype(np.uint8), geom, root / f"structures{split}" / case / f"{cls}.nii.gz")
            if label_map:
                write_image(lm, geom, root / f"labels{split}" / f"{case}.nii.gz")
    return root


@pytest.fixture
def tasks(tmp_path: Path) -> list[Path]:
    return [_task(tmp_path / "Brain", "Brain", 1.0, {"wm": 1, "gm": 2}, label_map=True),
            _task(tmp_path / "Breast", "Breast", 1.5, {"muscle": 1}, label_map=False),
            _task(tmp_path / "Heart", "Heart", 0.5, {"artery": 1, "gm": 2}, label_map=False)]


def test_union_label_mapping(tasks: list[Path], tmp_path: Path) -> None:
    written = write_union(tasks, tmp_path / "run" / "tasks")
    assert [t.name for t in written] == ["Brain", "Breast", "Heart"]
    assert union_classes(t.classes for t in written) == ("wm", "gm", "muscle", "artery")  # 'gm' shared by Brain and Heart
    union = load_dataset(tmp_path / "run" / "tasks")
    assert union.spec.structures == ("wm", "gm", "muscle", "artery")
    ids = [r.case_id for r in union.train]
    assert len(ids) == 9 and task_of(ids[0]) == "Brain" and "Breast__c1" in ids
    record = union.case("Heart__c0")
    assert record.annotated == {"artery", "gm", "muscle", "wm"}  # muscle and wm: known absent from a heart scan
    # a label map is turned into masks (label values collide between tasks): wm = value 1 of Brain
    brain = load_case(union.case("Brain__c2"), union.spec, normalization="none")
    reference = read_image(tasks[0] / "labelsTr" / "c2.nii.gz").array
    assert np.array_equal(brain.target[0], reference == 1) and np.array_equal(brain.target[1], reference == 2)
    assert brain.annotated.tolist() == [True, True, True, True] and not brain.target[2:].any()
    assert brain.geometry.spacing == (1.0, 1.0, 1.0)
    heart = load_case(record, union.spec, normalization="none")
    assert heart.geometry.spacing == (0.5, 0.5, 0.5)  # each task keeps its own grid
    assert read_tasks(tmp_path / "run") == written
    assert write_union(tasks, tmp_path / "run" / "tasks") == written  # reused on resume
    with pytest.raises(DatasetError, match="other datasets"):
        write_union(tasks[:2], tmp_path / "run" / "tasks")
    with pytest.raises(ConfigError, match="foreign classes 'absent', not 'unknown'"):
        write_union(tasks, tmp_path / "run" / "tasks", foreign="unknown")
    with pytest.raises(ConfigError, match="foreign classes must be one of"):
        write_union(tasks, tmp_path / "other" / "tasks", foreign="ignore")


def test_task_balanced_counts(tasks: list[Path], tmp_path: Path) -> None:
    assert task_counts(10, 3, 0) == [4, 3, 3] and task_counts(9, 3, 2) == [3, 3, 3]
    write_union(tasks, tmp_path / "run" / "tasks", foreign="unknown")
    union = load_dataset(tmp_path / "run" / "tasks")
    cases = [load_case(r, union.spec, normalization="none") for r in union.train]
    sampler = TaskBalancedSampler(cases, [task_of(c.case_id) for c in cases], (4, 4, 4), np.random.default_rng(0))
    assert sampler.classes == [[BACKGROUND, 0, 1], [BACKGROUND, 2], [BACKGROUND, 1, 3]]
    per_task: Counter[str] = Counter()
    for _ in range(50):
        locations = sampler.locations(9)
        counts = Counter(task_of(cases[c].case_id) for c, _ in locations)
        assert sorted(counts.values()) == [3, 3, 3]
        per_task.update(counts)
    batch = sampler.batch(6)
    assert batch.image.shape == (6, 1, 4, 4, 4) and batch.target.shape == (6, 4, 4, 4, 4)
    tasks_in_batch = [task for task in ("Brain", "Breast", "Heart") for _ in range(2)]
    expected = {"Brain": [1, 1, 0, 0], "Breast": [0, 0, 1, 0], "Heart": [0, 1, 0, 1]}
    assert [list(map(int, a)) for a in batch.annotated] == [expected[t] for t in tasks_in_batch]


@pytest.mark.parametrize("foreign", ["unknown", "absent"])
def test_classes_a_task_cannot_contain(foreign: str, tasks: list[Path], tmp_path: Path) -> None:
    write_union(tasks, tmp_path / "run" / "tasks", foreign=foreign)
    union = load_dataset(tmp_path / "run" / "tasks")
    case = load_case(union.case("Breast__c0"), union.spec, normalization="none")
    logits = torch.randn(1, 4, 12, 12, 12, requires_grad=True)
    masked_bce(logits, torch.from_numpy(case.target[None]), torch.from_numpy(case.annotated[None])).backward()
    grad = logits.grad.abs().flatten(2).sum(dim=2)[0]
    assert grad[2] > 0
    if foreign == "unknown":  # masked: only 'muscle' is learnt from a breast scan
        assert grad[[0, 1, 3]].sum() == 0
    else:  # the seed's shared background: wm, gm and artery are learnt absent from a breast scan
        assert (grad[[0, 1, 3]] > 0).all() and not case.target[[0, 1, 3]].any()
    # validation scores a breast scan on muscle only: an empty wm/gm/artery prediction would score Dice 1
    assert validation_view([case], TrainConfig(), union.spec)[0].annotated.tolist() == [False, False, True, False]


def test_validation_per_task_and_incompatible_datasets(tasks: list[Path], tmp_path: Path) -> None:
    written = write_union(tasks, tmp_path / "run" / "tasks")
    cfg = multitask_config(TrainConfig(val_cases=1, seed=3), tmp_path / "run" / "tasks", written)
    assert sorted(task_of(c) for c in cfg.val_ids) == ["Brain", "Breast", "Heart"]
    assert cfg.sampler == "task-balanced"
    four = _task(tmp_path / "Multi", "Multi", 1.0, {"x": 1}, label_map=False)
    spec = json.loads((four / "dataset.json").read_text())
    spec["channel_names"] = {"0": "a", "1": "b"}
    (four / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(DatasetError, match="same number of image channels"):
        write_union([tasks[0], four], tmp_path / "other" / "tasks")


def test_two_task_training_and_prediction(tasks: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text("model: unet3d\nmodel_kwargs: {features: [4, 8]}\npatch_size: [8, 8, 8]\nbatch_size: 4\n"
                      "val_cases: 1\nval_every: 2\ncheckpoint_every: 2\nthreads: 1\ndevice: cpu\n")
    result = CliRunner().invoke(app, ["train", str(tasks[0]), str(tasks[1]), "--out", str(run), "-c", str(config),
                                      "-n", "2"])
    assert result.exit_code == 0, result.output
    predictor = Predictor.from_run(run)
    assert predictor.structures == ("wm", "gm", "muscle")
    split = json.loads((run / "split.json").read_text())
    assert sorted(task_of(c) for c in split["validation"]) == ["Brain", "Breast"]
    out = tmp_path / "pred"
    probs = tmp_path / "probs"
    result = CliRunner().invoke(app, ["predict", str(run), str(tasks[1] / "imagesTs"), str(out),
                                      "--save-probabilities", str(probs)])
    assert result.exit_code == 0, result.output
    p_muscle = read_image(probs / "t0" / "muscle.nii.gz").array
    assert p_muscle.dtype == np.float32 and 0 <= p_muscle.min() <= p_muscle.max() <= 1
    assert np.array_equal(read_image(out / "t0" / "muscle.nii.gz").array > 0, p_muscle >= 0.5)
    assert sorted(p.name for p in (out / "t0").iterdir()) == ["gm.nii.gz", "muscle.nii.gz", "wm.nii.gz"]
    # evaluate per dataset: its own class scored, the other task's classes counted as cross-task confusion
    evaluation = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(out), str(tasks[1]), "--out", str(evaluation), "--confusion"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    metrics = pd.read_csv(evaluation / "metrics.csv")
    assert set(metrics["structure"]) == {"muscle"}
    foreign = sum(read_image(out / "t0" / f"{c}.nii.gz").array.astype(bool) for c in ("wm", "gm")) > 0
    confusion = pd.read_csv(evaluation / "confusion.csv")
    assert confusion["confusion_percent"].iloc[0] == pytest.approx(100 * foreign.mean())
    assert (evaluation / "confusion.png").is_file()
    # the binary task's operating point: the best Dice over a threshold sweep of the probability maps
    result = CliRunner().invoke(app, ["evaluate", str(out), str(tasks[1]), "--out", str(evaluation),
                                      "--operating-point", str(probs)])
    assert result.exit_code == 0, result.output
    points = pd.read_csv(evaluation / "operating_points.csv")
    reference = read_image(tasks[1] / "structuresTs" / "t0" / "muscle.nii.gz").array > 0
    best = max((2 * ((p_muscle >= t) & reference).sum() / ((p_muscle >= t).sum() + reference.sum()), -t)
               for t in np.round(np.arange(1, 100) / 100, 2))
    assert list(points["structure"]) == ["muscle"]
    assert points["dice"].iloc[0] == pytest.approx(best[0]) and points["threshold"].iloc[0] == pytest.approx(-best[1])
    assert (evaluation / "pr_muscle.png").is_file()


def test_triplanar_voxel_training_on_two_tasks(tasks: list[Path], tmp_path: Path) -> None:
    """--method triplanar: voxel samples with their three patches, balanced over tasks; whole-volume inference."""
    from clinseg.training.triplanar import TriplanarVoxelSampler

    write_union(tasks[:2], tmp_path / "u" / "tasks")
    union = load_dataset(tmp_path / "u" / "tasks")
    cases = [load_case(r, union.spec, normalization="none") for r in union.train]
    sampler = TriplanarVoxelSampler(cases, [task_of(c.case_id) for c in cases], 5, np.random.default_rng(1))
    batch = sampler.batch(6)
    assert batch.image.shape == (6, 1, 3, 1, 5, 5) and batch.target.shape == (6, 3, 1, 1, 1)
    from clinseg.models.triplanar import triplanar_patches

    sampler.voxels.rng = np.random.default_rng(1)  # the same draws again: the first sample's voxel
    case, (z, y, x) = sampler.voxels.locations(6)[0]
    assert np.array_equal(batch.image[0, 0], triplanar_patches(cases[case].image, (z, y, x), 5))
    assert np.array_equal(batch.target[0, :, 0, 0, 0], cases[case].target[:, z, y, x])

    run = tmp_path / "tri"
    config = tmp_path / "tri.yaml"
    config.write_text("model_kwargs: {patch: 5, layers: 2, features: 4, hidden: 8}\nval_cases: 1\nval_every: 2\n"
                      "checkpoint_every: 2\nthreads: 1\ndevice: cpu\n")
    result = CliRunner().invoke(app, ["train", str(tasks[0]), str(tasks[2]), "--out", str(run), "-c", str(config),
                                      "-n", "2", "--method", "triplanar"])
    assert result.exit_code == 0, result.output
    assert "of 210 voxels" in result.output
    predictor = Predictor.from_run(run)
    assert predictor.config.model == "triplanar" and predictor.config.patch_size == [12, 12, 12]
    masks = predictor.predict(np.ones((1, 12, 12, 12), np.float32))
    assert masks.shape == (3, 12, 12, 12)  # wm, gm, artery


def test_study_multitask_arm(tasks: list[Path], tmp_path: Path) -> None:
    """The study arm trains the study's subset jointly with the other datasets (budget per task) and records
    the cross-task confusion of its test predictions."""
    from clinseg.studies.arms import ARM_METHODS, ArmContext

    cfg = TrainConfig(model="unet3d", model_kwargs={"features": [4, 8]}, patch_size=[8, 8, 8], batch_size=3,
                      iterations=1, val_every=1, checkpoint_every=1, threads=1, device="cpu",
                      subset={"c0": ["muscle"], "c1": ["muscle"]}, val_ids=["c2"], val_cases=1)
    run = tmp_path / "study" / "runs" / "joint" / "patients-M2-r0"
    context = ArmContext(tasks[1], tasks[1] / "imagesTs", run, run / "predictions", cfg,
                         {"with": ["Brain", "Heart"]}, largest_component=False, study_dir=tmp_path / "study",
                         arm="joint")
    ARM_METHODS.get("multitask")(context)
    split = json.loads((run / "split.json").read_text())
    assert [c for c in split["train"] if c.startswith("Breast")] == ["Breast__c0", "Breast__c1"]
    assert "Breast__c2" in split["validation"] and {task_of(c) for c in split["validation"]} == {
        "Brain", "Breast", "Heart"}
    saved = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert saved["iteration"] == 3  # 1 iteration per task, 3 tasks
    measures = json.loads((run / "measures.json").read_text())
    assert measures["tasks"] == ["Breast", "Brain", "Heart"] and len(measures["cross_task_confusion_percent"]) == 1
    assert sorted(p.name for p in (run / "predictions" / "t0").iterdir()) == [
        "artery.nii.gz", "gm.nii.gz", "muscle.nii.gz", "wm.nii.gz"]
