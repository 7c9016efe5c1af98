"""Training end to end on a tiny dataset: checkpoints, exact resume after an interruption, safe loading."""

import json
from pathlib import Path

import pytest
import torch

from clinseg.errors import CheckpointError, ConfigError, DatasetError
from clinseg.training.checkpoint import load_checkpoint
from clinseg.training.config import TrainConfig
from clinseg.training.metrics_log import MetricsLog
from clinseg.training.run import train

TINY = dict(
    model="resfcn3d",
    model_kwargs={"features": [4, 4, 4], "blocks": 1},
    patch_size=[8, 8, 8],
    batch_size=2,
    val_cases=1,
    val_every=3,
    checkpoint_every=2,
    threads=1,
)


def _weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / f"{name}.pt")["model"]


def test_resume_after_interruption_gives_the_same_state(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    straight = tmp_path / "straight"
    state = train(root, straight, TrainConfig(**TINY), iterations=6)
    assert state.iteration == 6 and state.finished

    def interrupt(iteration: int) -> None:
        if iteration == 3:
            raise KeyboardInterrupt

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train(root, resumed, TrainConfig(**TINY), iterations=6, on_iteration=interrupt)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["state"].iteration == 3
    state2 = train(root, resumed, None, iterations=6)
    assert state2.iteration == 6
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["iteration"] for r in MetricsLog(resumed / "metrics.jsonl").read()] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in MetricsLog(resumed / "metrics.jsonl").read()] == [
        r["loss"] for r in MetricsLog(straight / "metrics.jsonl").read()
    ]
    for name in ("config.yaml", "fingerprint.json", "split.json", "checkpoints/best.pt"):
        assert (resumed / name).is_file()


def test_validation_is_logged_and_best_kept(make_dataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(make_dataset(), run, TrainConfig(**TINY), iterations=6)
    val = [r for r in MetricsLog(run / "metrics.jsonl").read() if "val_dice" in r]
    assert [r["iteration"] for r in val] == [3, 6]
    assert all(0.0 <= r["val_dice"] <= 1.0 for r in val)
    best = load_checkpoint(run / "checkpoints" / "best.pt")["state"]
    assert best.best_iteration in (3, 6)


def test_finished_run_is_not_retrained(make_dataset, tmp_path: Path) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=2)
    before = _weights(run)
    state = train(root, run, None)
    assert state.iteration == 2 and all(torch.equal(before[k], v) for k, v in _weights(run).items())


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt: corrupt or unsafe checkpoint"):
        load_checkpoint(path)


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # pragma: no cover - never executed
            return (print, ("pwned",))

    torch.save({"format": 1, "model": {}, "state": "{}", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="corrupt or unsafe"):
        load_checkpoint(tmp_path / "evil.pt")


def test_resume_refuses_other_data(make_dataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(make_dataset("a"), run, TrainConfig(**TINY), iterations=1)
    with pytest.raises(DatasetError, match="trained on other data"):
        train(make_dataset("b", cases=4), run, None, iterations=2)


def test_multiclass_mode_trains_and_predicts_label_map(make_dataset, tmp_path: Path) -> None:
    from clinseg.inference.predictor import Predictor, predict_folder

    root, run = make_dataset(), tmp_path / "run"
    state = train(root, run, TrainConfig(**TINY, label_mode="multiclass"), iterations=2)
    assert state.iteration == 2
    predictor = Predictor.from_run(run)
    assert predictor.activation == "softmax" and predictor.model.out_channels == 3
    predict_folder(predictor, root / "imagesTs", tmp_path / "pred")
    assert (tmp_path / "pred" / "test_0.nii.gz").is_file()
    assert (tmp_path / "pred" / "test_0" / "B.nii.gz").is_file()


def test_subset_restricts_cases_and_delineations(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=4)
    run = tmp_path / "sub"
    cfg = TrainConfig(**TINY, val_ids=["case_3"], subset={"case_0": ["B"], "case_2": ["A", "B"]})
    train(root, run, cfg, iterations=1)
    split = json.loads((run / "split.json").read_text())
    assert split == {"train": ["case_0", "case_2"], "validation": ["case_3"]}


def test_subset_errors_name_the_problem(make_dataset, tmp_path: Path) -> None:
    root = make_dataset(cases=4)
    with pytest.raises(ConfigError, match=r"subset keeps \['B'\] in case_1, which does not delineate them"):
        train(root, tmp_path / "a", TrainConfig(**TINY, val_ids=["case_3"], subset={"case_1": ["B"]}), iterations=1)
    with pytest.raises(ConfigError, match=r"subset case\(s\) \['case_3'\] are not training cases outside"):
        train(root, tmp_path / "b", TrainConfig(**TINY, val_ids=["case_3"], subset={"case_3": ["A"]}), iterations=1)
    with pytest.raises(ConfigError, match=r"validation case\(s\) \['test_0'\]"):
        train(root, tmp_path / "c", TrainConfig(**TINY, val_ids=["test_0"]), iterations=1)


# --- Issue 18 item 5: checkpoint problems are one clear error, never torch's traceback or advice ---


def _small_checkpoint(path: Path, iteration: int = 3) -> None:
    from clinseg.training.checkpoint import TrainState, save_checkpoint

    model = torch.nn.Conv3d(1, 8, 3)
    save_checkpoint(path, model, torch.optim.Adam(model.parameters()), TrainState(iteration=iteration))


@pytest.mark.parametrize(("keep", "torch_error"), [(100, RuntimeError), (6000, OSError), (-10, OSError)])
def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path, keep: int, torch_error: type) -> None:
    path = tmp_path / "last.pt"
    _small_checkpoint(path)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(torch_error):  # what torch itself raises (OSError: [Errno 22] Invalid argument)
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: corrupt or unsafe checkpoint: truncated or damaged ({torch_error.__name__}: ")
    assert "\n" not in message and len(message) < len(str(path)) + 250


def test_unsafe_checkpoint_message_does_not_advise_weights_only_false(tmp_path: Path) -> None:
    torch.save({"format": 1, "model": {}, "state": "{}", "path": Path("/x")}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "odd.pt")
    message = str(info.value)
    assert "weights_only" not in message and "trust" not in message
    assert message == (f"{tmp_path / 'odd.pt'}: corrupt or unsafe checkpoint: it holds Python objects other than "
                       "tensors (pathlib.PosixPath), which clinseg refuses to load (they could run code); not a "
                       "clinseg checkpoint, or tampered with")


_DISK_FULL = """
import resource, signal, sys
import torch
from clinseg.errors import CheckpointError
from clinseg.training.checkpoint import TrainState, save_checkpoint
path = sys.argv[1]
save_checkpoint(path, torch.nn.Conv3d(1, 8, 3), None, TrainState(iteration=1))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    save_checkpoint(path, torch.nn.Conv3d(1, 8, 3), None, TrainState(iteration=2))
except CheckpointError as exc:
    print(exc)
    sys.exit(3)
"""


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "checkpoints" / "last.pt"
    result = subprocess.run([sys.executable, "-c", _DISK_FULL, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr
    message = result.stdout.strip()
    assert message.startswith(f"{path}: could not write the checkpoint (is the disk full or over quota? "
                              "RuntimeError: [enforce fail at inline_container.cc")
    assert message.endswith("the previous last.pt is kept intact (run the same command again to resume from it)")
    assert load_checkpoint(path)["state"].iteration == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left


def test_ctrl_c_reaching_the_batch_workers_does_not_kill_them(make_dataset, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches every process of the group; the batch workers leave it to the main
    process (which stops cleanly after the iteration), instead of dying and breaking the batch pipe."""
    import multiprocessing
    import os
    import signal

    def ctrl_c_to_workers(iteration: int) -> None:
        if iteration == 2:
            workers = multiprocessing.active_children()
            assert workers, "the run should prepare its batches in a worker process"
            for worker in workers:
                os.kill(worker.pid, signal.SIGINT)

    state = train(make_dataset(), tmp_path / "run", TrainConfig(**{**TINY, "workers": 1}), iterations=6,
                  on_iteration=ctrl_c_to_workers)
    assert state.iteration == 6 and state.finished
