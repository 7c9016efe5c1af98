"""Turning probabilities into masks, and grouping an input folder into cases."""

from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import DatasetError
from clinseg.inference.predictor import (
    Predictor,
    find_cases,
    label_map_values,
    probabilities_to_masks,
    write_case,
)
from clinseg.io import Geometry, read_image, write_image
from clinseg.training.config import TrainConfig


def test_sigmoid_threshold_per_class() -> None:
    probs = np.array([0.2, 0.6], np.float16).reshape(2, 1, 1, 1) * np.ones((2, 1, 1, 2), np.float16)
    assert probabilities_to_masks(probs, "sigmoid", 0.5)[:, 0, 0, 0].tolist() == [0, 1]
    assert probabilities_to_masks(probs, "sigmoid", [0.1, 0.7])[:, 0, 0, 0].tolist() == [1, 0]


def test_softmax_argmax_without_background() -> None:
    probs = np.zeros((3, 1, 1, 3), np.float32)
    probs[0, ..., 0] = 1  # background
    probs[1, ..., 1] = 1
    probs[2, ..., 2] = 1
    masks = probabilities_to_masks(probs, "softmax")
    assert masks.shape == (2, 1, 1, 3)
    assert masks[0, 0, 0].tolist() == [0, 1, 0] and masks[1, 0, 0].tolist() == [0, 0, 1]


def test_find_cases_groups_channels_and_reports_missing(tmp_path: Path) -> None:
    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    for name in ("a_0000", "a_0001", "b_0000"):
        write_image(np.zeros((2, 2, 2), np.float32), geom, tmp_path / f"{name}.nii.gz")
    with pytest.raises(DatasetError, match=r"a_0001.nii.gz: channel 1 of case 'a', but the run reads 1 channel\(s\)"):
        find_cases(tmp_path, 1)  # an extra channel is an error, not silently ignored (issue 18)
    (tmp_path / "a_0001.nii.gz").rename(tmp_path / "c_0000.nii.gz")
    assert list(find_cases(tmp_path, 1)) == ["a", "b", "c"]
    write_image(np.zeros((2, 2, 2), np.float32), geom, tmp_path / "a_0001.nii.gz")
    with pytest.raises(DatasetError, match=r"case 'b' lacks channel\(s\) \[1\] of 2"):
        find_cases(tmp_path, 2)
    with pytest.raises(DatasetError, match="input not found"):
        find_cases(tmp_path / "nope", 1)


def test_label_map_holds_the_dataset_label_values(tmp_path: Path) -> None:
    masks = np.zeros((2, 2, 2, 2), np.uint8)
    masks[0, 0, 0, 0] = masks[1, 1, 1, 1] = 1
    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    write_case(tmp_path, "c", masks, ["necrosis", "enhancing"], geom, [1, 4])
    labels = read_image(tmp_path / "c.nii.gz").array
    assert labels[0, 0, 0] == 1 and labels[1, 1, 1] == 4 and int(labels.sum()) == 5
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["enhancing.nii.gz", "necrosis.nii.gz"]
    write_case(tmp_path, "d", masks, ["a", "b"], geom)  # overlapping classes: masks only
    assert not (tmp_path / "d.nii.gz").exists()


def test_label_map_values_follow_the_run() -> None:
    def predictor(mode: str, values: tuple[int, ...] | None) -> Predictor:
        import torch

        return Predictor(torch.nn.Identity(), TrainConfig(label_mode=mode), ("x", "y"), ("T1",),
                         torch.device("cpu"), values)

    assert label_map_values(predictor("multiclass", (2, 5))) == (2, 5)
    assert label_map_values(predictor("multiclass", None)) == (1, 2)  # runs from before run.json had values
    assert label_map_values(predictor("multilabel", (2, 5))) is None


# --- Issue 18: names become paths (item 2); case folders' permissions and killed predictions' leftovers (8) ---


@pytest.mark.parametrize(("case", "structure", "message"), [
    ("c", "../../../../x", r"structure name '\.\./\.\./\.\./\.\./x' contains '/'"),
    ("c", "/tmp/x", r"structure name '/tmp/x' contains '/'"),
    ("../c", "A", r"case id '\.\./c' contains '/'"),
    ("..", "A", r"case id '\.\.' starts with '\.'"),
])
def test_write_case_refuses_names_that_are_not_file_names(tmp_path: Path, case: str, structure: str,
                                                          message: str) -> None:
    out = tmp_path / "a" / "b" / "out"
    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    with pytest.raises(DatasetError, match=message) as info:
        write_case(out, case, np.ones((1, 2, 2, 2), np.uint8), [structure], geom, [1])
    assert str(info.value).startswith(f"{out}: ")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # refused before anything was written


def test_case_folders_get_normal_permissions(tmp_path: Path) -> None:
    import os
    import stat

    geom = Geometry((1.0, 1.0, 1.0), shape=(2, 2, 2))
    old = os.umask(0o022)
    try:
        write_case(tmp_path, "c", np.ones((1, 2, 2, 2), np.uint8), ["A"], geom)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o755  # 0o777 & ~umask, not mkdtemp's 0o700
    assert stat.S_IMODE((tmp_path / "c" / "A.nii.gz").stat().st_mode) == 0o644


def _tiny_run(make_dataset, tmp_path: Path) -> tuple[Path, Path]:
    from clinseg.training.run import train
    from tests.training.test_run import TINY

    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=1)
    return root, run


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True, check=True)
    return int(process.stdout)


def test_predict_removes_what_a_killed_prediction_left(make_dataset, tmp_path: Path) -> None:
    import os
    import time

    from clinseg.inference.predictor import predict_folder

    root, run = _tiny_run(make_dataset, tmp_path)
    out = tmp_path / "pred"
    # what 'kill -9' during write_case leaves: a hidden case folder of a process that is gone, a label map's
    # temporary file, and (from older versions, without a process id) a folder untouched for two hours
    dead = [out / f".test_0.{_dead_pid()}.abcd_123", out / f".test_9.{_dead_pid()}.k2j4h5g6.nii.gz",
            out / ".test_1.q1w2e3r4"]
    dead[0].mkdir(parents=True)
    (dead[0] / "A.nii.gz").write_bytes(b"half")
    dead[1].write_bytes(b"half")
    dead[2].mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(dead[2], (two_hours_ago, two_hours_ago))
    live = [out / f".test_2.{os.getppid()}.z9y8x7w6", out / ".test_3.r5t6y7u8", out / ".config"]
    for path in live:  # a live process's folder, a recent one without process id, and the user's own file
        path.mkdir()
    predict_folder(Predictor.from_run(run), root / "imagesTs", out)
    assert sorted(p.name for p in out.iterdir()) == sorted([".config", ".test_3.r5t6y7u8", live[0].name, "test_0"])


def test_predict_refuses_unsafe_structure_names_of_a_run(make_dataset, tmp_path: Path) -> None:
    """A run folder written before names were checked (or edited by hand) cannot write outside OUT."""
    import json

    from clinseg.inference.predictor import predict_folder

    root, run = _tiny_run(make_dataset, tmp_path)
    info = json.loads((run / "run.json").read_text())
    info["outputs"] = ["A", "../../../escaped"]
    (run / "run.json").write_text(json.dumps(info))
    out = tmp_path / "deep" / "pred"
    with pytest.raises(DatasetError, match=r"structure name '\.\./\.\./\.\./escaped' contains '/'"):
        predict_folder(Predictor.from_run(run), root / "imagesTs", out)
    assert not list(tmp_path.rglob("escaped*"))
