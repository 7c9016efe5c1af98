"""One Ctrl-C stops the whole study: the running cell checkpoints and stops, no further cell starts, and
``clinseg study run`` exits with 130, with local worker processes and in this process alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinseg.studies.execute import execute_run
from clinseg.studies.executors import run_in_process
from clinseg.studies.plan import load_and_prepare
from tests.studies._helpers import TINY_BASE

#: Long enough that the first cell is still training when the signal comes (tiny volumes: ~100 it/s).
ENDLESS = {**TINY_BASE, "iterations": 1_000_000, "val_every": 1_000_000, "checkpoint_every": 100_000}


def _start(spec: Path, study: Path, executor: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", _AS_FROM_A_TERMINAL, "study", "run", str(spec), "--out", str(study), *executor]
    env = {**os.environ, "CLINSEG_PROGRESS": "0"}
    with log.open("w") as out:  # its own session: the test signals the study's group, as a terminal does
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


#: ``clinseg`` with Ctrl-C's usual action (KeyboardInterrupt), as a command typed in a terminal has. A test
#: runner started in the background (``nohup ... &``, some CI runners) passes SIGINT on ignored, and Python then
#: leaves it ignored: the study would rightly not stop, and the test would fail for the runner's sake.
_AS_FROM_A_TERMINAL = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                       "from clinseg.cli.main import app; app()")


def _wait_for_training(proc: subprocess.Popen, metrics: Path, log: Path) -> None:
    deadline = time.monotonic() + 180
    while not (metrics.is_file() and metrics.stat().st_size > 0):
        if proc.poll() is not None:
            pytest.fail(f"the study ended before training (code {proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the first cell never started training:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize(("executor", "target"), [
    (["--workers", "1"], "group"),      # Ctrl-C in a terminal: the study and its workers get SIGINT
    (["--workers", "1"], "study"),      # a scheduler signalling the study's process only
    (["--in-process"], "group"),
])
def test_one_ctrl_c_stops_the_whole_study(write_spec, tmp_path: Path, executor: list[str], target: str) -> None:
    spec, study, log = write_spec(base=ENDLESS), tmp_path / "S", tmp_path / "study.log"
    first = study / "runs" / "baseline" / "concentrated-M1-r0"
    proc = _start(spec, study, executor, log)
    _wait_for_training(proc, first / "metrics.jsonl", log)
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"one Ctrl-C did not stop the study within 60 s:\n{log.read_text()}")
    output = log.read_text()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert not (study / "runs" / "baseline" / "distributed-M1-r0").exists(), "the next cell started"
    assert (first / "checkpoints" / "last.pt").is_file()  # saved on the way out: the cell resumes from here
    assert not (first / "done.json").exists() and not (first / "failed.json").exists()
    size = (first / "metrics.jsonl").stat().st_size
    time.sleep(1.5)
    assert (first / "metrics.jsonl").stat().st_size == size, "a worker is still training"


def test_in_process_executor_runs_cells_in_order_and_counts_them(write_spec, tmp_path: Path) -> None:
    bad = {"name": "bad", "config": {"patch_size": [6, 6, 6]}}  # fails when it trains
    plan = load_and_prepare(write_spec(arms=["baseline", bad], modes=["concentrated"]), tmp_path / "S")
    state = run_in_process(plan, plan.runs, threads=1)
    assert (state.total, state.done, [o.key.arm for o in state.failed], state.skipped) == (2, 1, ["bad"], 0)
    assert [plan.status(k) for k in plan.runs] == ["done", "failed"]
    assert execute_run(plan.study_dir, plan.runs[0]).status == "skipped"


@pytest.mark.slow
def test_a_worker_stops_when_the_study_process_is_killed(write_spec, tmp_path: Path) -> None:
    spec, study, log = write_spec(base=ENDLESS), tmp_path / "S", tmp_path / "study.log"
    first = study / "runs" / "baseline" / "concentrated-M1-r0"
    proc = _start(spec, study, ["--workers", "1"], log)
    _wait_for_training(proc, first / "metrics.jsonl", log)
    proc.kill()  # SIGKILL: the study cannot pass anything on; its worker (another session) notices
    proc.wait()
    deadline = time.monotonic() + 60
    while not (first / "checkpoints" / "last.pt").is_file():
        assert time.monotonic() < deadline, f"the orphaned worker did not stop:\n{log.read_text()}"
        time.sleep(0.2)
    size = (first / "metrics.jsonl").stat().st_size
    time.sleep(1.5)
    assert (first / "metrics.jsonl").stat().st_size == size, "the orphaned worker is still training"
    assert not (first / "done.json").exists()
