"""The CLI's error path (issue 18): each problem is one 'error:' line and exit code 1, never a traceback."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.io import read_image, write_image
from clinseg.training.checkpoint import load_checkpoint

runner = CliRunner()
TINY = {"model": "resfcn3d", "model_kwargs": {"features": [4, 4, 4], "blocks": 1}, "patch_size": [8, 8, 8],
        "batch_size": 2, "val_cases": 1, "val_every": 2, "threads": 1}


def one_error(args: list[str]) -> str:
    """Run the CLI expecting exit code 1 with a single error line and no traceback; return that line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.output.count("error:") == 1, result.output
    return errors[0]


def ok(args: list[str]) -> str:
    """Run the CLI expecting success; return its output with runs of white space as one space (rich wraps)."""
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_out_that_cannot_be_a_folder(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root, run, pred = make_dataset(), tmp_path / "run", tmp_path / "pred"
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    train = ["train", str(root), "--config", str(tiny_config), "-n", "1", "--out"]
    assert one_error([*train, str(afile)]) == (
        f"error: {afile}: exists and is not a folder (the run folder must be a folder)")
    assert one_error([*train, str(afile / "sub")]) == (
        f"error: {afile / 'sub'}: cannot create the run folder: part of the path is a file, not a folder")
    assert one_error([*train, "/proc/clinseg-x"]).startswith("error: /proc/clinseg-x: cannot create the run folder (")
    ok([*train, str(run)])

    predict = ["predict", str(run), str(root / "imagesTs")]
    assert one_error([*predict, str(afile)]) == (
        f"error: {afile}: exists and is not a folder (the output folder must be a folder)")
    assert "part of the path is a file" in one_error([*predict, str(afile / "sub")])
    assert one_error([*predict, "/proc/clinseg-x"]).startswith("error: /proc/clinseg-x: cannot create the output")
    assert "probability folder must be a folder" in one_error([*predict, str(pred), "--save-probabilities",
                                                               str(afile)])
    ok([*predict, str(pred)])

    evaluate = ["evaluate", str(pred), str(root), "--out"]
    assert one_error([*evaluate, str(afile)]) == (
        f"error: {afile}: exists and is not a folder (the output folder must be a folder)")
    assert "part of the path is a file" in one_error([*evaluate, str(afile / "sub")])
    assert one_error([*evaluate, "/proc/clinseg-x"]).startswith("error: /proc/clinseg-x: cannot create the output")

    # the last line of defence: an OSError no command turned into a clinseg error, naming the file
    (run / "report.html").mkdir()
    line = one_error(["report", str(run)])
    assert line.endswith(f"-> {run / 'report.html'}: Is a directory")


def test_truncated_checkpoints(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    ok(["train", str(root), "--out", str(run), "--config", str(tiny_config), "-n", "2"])
    for name in ("last.pt", "best.pt"):
        path = run / "checkpoints" / name
        path.write_bytes(path.read_bytes()[:6000])  # torch.load: OSError [Errno 22] Invalid argument
    line = one_error(["train", str(root), "--out", str(run), "-n", "3"])
    assert line.startswith(f"error: {run / 'checkpoints' / 'last.pt'}: corrupt or unsafe checkpoint: truncated or "
                           "damaged (OSError: Invalid argument)")
    line = one_error(["predict", str(run), str(root / "imagesTs"), str(tmp_path / "pred")])
    assert line.startswith(f"error: {run / 'checkpoints' / 'best.pt'}: corrupt or unsafe checkpoint: truncated")
    assert "weights_only" not in line


def test_disk_full_during_a_checkpoint_save(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    """The real CLI in a process whose files may not exceed 10 kB: torch.save fails inside the zip writer."""
    root, run = make_dataset(), tmp_path / "run"
    ok(["train", str(root), "--out", str(run), "--config", str(tiny_config), "-n", "1", "--val-cases", "0"])
    before = (run / "checkpoints" / "last.pt").read_bytes()

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail (EFBIG) as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))

    command = [sys.executable, "-c", "from clinseg.cli.main import app; app(prog_name='clinseg')",
               "train", str(root), "--out", str(run), "-n", "3"]
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=small_files, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    last = run / "checkpoints" / "last.pt"
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {last}: could not write the checkpoint (is the disk full or over quota? RuntimeError: [enforce fail")
    assert errors[0].endswith("the previous last.pt is kept intact (run the same command again to resume from it)")
    assert last.read_bytes() == before and load_checkpoint(last)["state"].iteration == 1
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]
    assert "trained 3 iterations" in ok(["train", str(root), "--out", str(run), "-n", "3"])


def test_resume_refuses_changed_options(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    ok(["train", str(root), "--out", str(run), "--config", str(tiny_config), "-n", "2"])
    assert "trained 2 iterations" in ok(["train", str(root), "--out", str(run)])  # plain: resumes
    ok(["train", str(root), "--out", str(run), "--config", str(tiny_config)])  # the same options again
    assert one_error(["train", str(root), "--out", str(run), "--model", "unet3d", "--seed", "1"]) == (
        f"error: {run} was trained with model=resfcn3d, seed=0; you asked for model=unet3d, seed=1: use a new "
        "--out folder, or --force to resume it with its saved configuration")
    line = one_error(["train", str(root), "--out", str(run), "--preset", "cpu-demo"])
    assert "you asked for model=unet3d, patch_size=[32, 32, 32], batch_size=4" in line
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**TINY, "lr": 0.05}))  # the saved lr is AdamW's default, 0.001
    assert "trained with lr=0.001; you asked for lr=0.05" in one_error(
        ["train", str(root), "--out", str(run), "--config", str(other)])
    assert one_error(["train", str(root), "--out", str(run), "-n", "1"]) == (
        f"error: {run} has already trained 2 iterations; --iterations 1 cannot undo them (use a new --out folder "
        "for a shorter run)")
    assert yaml.safe_load((run / "config.yaml").read_text())["iterations"] == 2
    assert "trained 3 iterations" in ok(["train", str(root), "--out", str(run), "--seed", "1", "--force", "-n", "3"])
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["seed"] == 0 and saved["iterations"] == 3
    history = json.loads((run / "history.json").read_text())
    assert history["forced"][0]["ignored"] == {"seed": 1} and history["extensions"][0]["to"] == 3


def test_dataset_problems_refuse_training_unless_skipped(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root = make_dataset()
    (root / "structuresTr" / "case_2" / "B.nii.gz").rename(root / "structuresTr" / "case_2" / "B_x.nii.gz")
    result = runner.invoke(app, ["train", str(root), "--out", str(tmp_path / "run"), "--config", str(tiny_config),
                                 "-n", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("found 1 error(s); training refused (fix them, or go on anyway with --skip-validation):"
            in " ".join(result.output.split()))
    assert "B_x.nii.gz: unknown structure 'B_x'" in result.output
    output = ok(["train", str(root), "--out", str(tmp_path / "run"), "--config", str(tiny_config), "-n", "1",
                 "--skip-validation"])
    assert "trained 1 iterations" in output


def test_val_cases_0_summary_has_no_minus_infinity(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    output = ok(["train", str(make_dataset()), "--out", str(tmp_path / "run"), "--config", str(tiny_config),
                 "-n", "1", "--val-cases", "0"])
    assert "-inf" not in output
    assert "trained 1 iterations; no validation score (no validation cases: best.pt holds the final weights)" in output


def test_unsafe_names_and_duplicate_keys_are_one_line(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root = make_dataset()
    path = root / "dataset.json"
    spec = json.loads(path.read_text())
    path.write_text(json.dumps({**spec, "labels": {"A": 1, "../../../../x": 2}}))
    for args in (["validate", str(root)], ["train", str(root), "--out", str(tmp_path / "run")]):
        assert one_error(args).startswith(f"error: {path}: structure name '../../../../x' contains '/'")
    path.write_text(json.dumps(spec)[:-2] + ', "case_0": {}}}')
    assert one_error(["validate", str(root)]) == (
        f"error: {path}: key 'case_0' appears twice in one JSON object (the first would be ignored)")


def test_extra_channel_for_predict_is_one_line(make_dataset, tiny_config: Path, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    ok(["train", str(root), "--out", str(run), "--config", str(tiny_config), "-n", "1"])
    image = read_image(root / "imagesTs" / "test_0_0000.nii.gz")
    extra = root / "imagesTs" / "test_0_0001.nii.gz"
    write_image(image.array, image.geometry, extra)
    assert one_error(["predict", str(run), str(root / "imagesTs"), str(tmp_path / "pred")]) == (
        f"error: {extra}: channel 1 of case 'test_0', but the run reads 1 channel(s) (_0000)")
