"""Run a study's pending runs: on local worker processes, in this process, or one Ray task per run.

Every executor calls :func:`clinseg.studies.execute.execute_run` with only the study folder and the run key,
so a run behaves exactly like ``clinseg train`` + ``predict`` + ``evaluate``. The local executor starts one
process per run (``python -m clinseg.studies._worker``), so a crash of one run never takes the others down.
The study folder must be visible to every worker (a shared file system for Ray clusters).

One Ctrl-C stops the whole study: no further run starts, each running run saves its checkpoint after the
current iteration and stops, and ``KeyboardInterrupt`` reaches the caller (``clinseg study run`` exits with
130). The interrupted runs resume from their checkpoints next time. Local workers run in a session (and
process group) of their own, so that the terminal's Ctrl-C reaches the study alone, which passes exactly one SIGINT on to each
worker (a second signal would interrupt a run inside an iteration); a second Ctrl-C does just that.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from clinseg.cores import available_cores
from clinseg.errors import ConfigError
from clinseg.progress import make_progress
from clinseg.studies.execute import RunOutcome, execute_run
from clinseg.studies.plan import RunKey, StudyPlan

log = logging.getLogger(__name__)

#: Seconds the workers get to stop after a second Ctrl-C before they are killed.
_KILL_AFTER_S = 10.0


@dataclass
class StudyProgress:
    """Counts shown in the live progress line and returned at the end."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: list[RunOutcome] = field(default_factory=list)
    running: int = 0

    def line(self) -> str:
        return (f"[green]done {self.done}[/] · running {self.running} · "
                f"[red]failed {len(self.failed)}[/] · skipped {self.skipped}")


def pending_runs(plan: StudyPlan, retry_failed: bool = False) -> list[RunKey]:
    """Runs that still have to execute (interrupted ones included; failed ones only when retried)."""
    wanted = {"pending", "failed"} if retry_failed else {"pending"}
    return [key for key in plan.runs if plan.status(key) in wanted]


def default_workers() -> tuple[int, int, str | None]:
    """``(workers, threads per worker, device)`` sized to this machine.

    One worker per GPU when CUDA is present; on the CPU one worker per 4 cores (at least one), so that
    each run keeps enough threads for oneDNN.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count(), max(os.cpu_count() or 1, 1) // torch.cuda.device_count(), "cuda"
    cores = available_cores()
    workers = max(1, cores // 4)
    return workers, max(1, cores // workers), None


def _report(progress_state: StudyProgress, outcome: RunOutcome) -> None:
    if outcome.status == "done":
        progress_state.done += 1
        log.info("run %s done in %.0f s", outcome.key.name, outcome.seconds)
    elif outcome.status == "failed":
        progress_state.failed.append(outcome)
        log.warning("run %s failed: %s", outcome.key.name, outcome.error)
    else:
        progress_state.skipped += 1


def _to_skip(plan: StudyPlan, key: RunKey, retry_failed: bool) -> bool:
    status = plan.status(key)
    return status == "done" or (status == "failed" and not retry_failed)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the study runs, SIGTERM stops it as Ctrl-C does (its workers, in their own process groups,
    would otherwise run on)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Worker:
    """One running run: its key, its process and the GPU it holds (None: no GPU assigned)."""

    key: RunKey
    process: subprocess.Popen
    gpu: int | None = None


def _start_worker(plan: StudyPlan, key: RunKey, device: str | None, threads: int, retry_failed: bool,
                  gpu: int | None) -> _Worker:
    command = [sys.executable, "-m", "clinseg.studies._worker", str(plan.study_dir.resolve()), key.arm, key.mode,
               str(key.size), str(key.repeat), "--threads", str(threads)]
    command += ["--device", device] if device else []
    command += ["--retry-failed"] if retry_failed else []
    env = dict(os.environ)
    if gpu is not None:  # pragma: no cover - needs several GPUs
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    # a session of its own: the terminal's Ctrl-C reaches the study only (module docstring)
    return _Worker(key, subprocess.Popen(command, env=env, start_new_session=True), gpu)


def _worker_outcome(plan: StudyPlan, worker: _Worker) -> RunOutcome:
    """What a finished worker left: ``done.json`` or ``failed.json``; neither means it died (killed, out of
    memory) and the run stays pending."""
    run_dir = plan.run_dir(worker.key)
    for status in ("done", "failed"):
        path = run_dir / f"{status}.json"
        if path.is_file():
            record = json.loads(path.read_text(encoding="utf-8"))
            return RunOutcome(worker.key, status, float(record.get("seconds", 0.0)), str(record.get("error", "")))
    return RunOutcome(worker.key, "failed", 0.0, f"the worker process ended with code "
                      f"{worker.process.returncode} and no result (killed? out of memory?); the run stays pending")


def _stop_workers(workers: list[_Worker]) -> None:
    """Pass one SIGINT to each running worker and wait until they have stopped (their runs save a checkpoint
    after the current iteration); on a second Ctrl-C interrupt them at once, and kill what still runs."""
    if not workers:
        return
    log.warning("stopping: %d running run(s) save a checkpoint and stop (Ctrl-C again stops them at once)",
                len(workers))
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGINT)
    try:
        for worker in workers:
            worker.process.wait()
    except KeyboardInterrupt:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + _KILL_AFTER_S
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def run_local(plan: StudyPlan, keys: Iterable[RunKey], *, workers: int | None = None,
              threads: int | None = None, retry_failed: bool = False) -> StudyProgress:
    """Execute ``keys`` on ``workers`` local processes with ``threads`` CPU threads each (defaults:
    :func:`default_workers`). Two CPU-heavy jobs with all threads each slow each other down far more than
    twofold (oneDNN threads spin), so give each job its share when a machine is shared.

    Each process runs one run and exits (no state leaks between runs); with several GPUs each process sees
    one. Ctrl-C (or SIGTERM) starts no further run, stops the running ones after their current iteration
    (they resume from their checkpoints next time) and raises ``KeyboardInterrupt``.
    """
    keys = list(keys)
    auto_workers, auto_threads, device = default_workers()
    workers = workers or auto_workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if threads is None:
        threads = auto_threads if workers == auto_workers else max(1, (os.cpu_count() or 1) // workers)
    state = StudyProgress(total=len(keys))
    if not keys:
        return state
    queue = deque(keys)
    gpus = list(range(workers)) if device == "cuda" and workers > 1 else None
    running: list[_Worker] = []
    with make_progress() as progress, _sigterm_as_interrupt():
        task = progress.add_task(f"study {plan.spec.name}", total=len(keys), status=state.line())
        try:
            while queue or running:
                while queue and len(running) < workers:
                    key = queue.popleft()
                    if _to_skip(plan, key, retry_failed):
                        _report(state, RunOutcome(key, "skipped"))
                        progress.advance(task)
                        continue
                    gpu = gpus.pop(0) if gpus else None
                    running.append(_start_worker(plan, key, device, threads, retry_failed, gpu))
                for worker in [w for w in running if w.process.poll() is not None]:
                    running.remove(worker)
                    if gpus is not None and worker.gpu is not None:
                        gpus.append(worker.gpu)
                    _report(state, _worker_outcome(plan, worker))
                    progress.advance(task)
                state.running = len(running)
                progress.update(task, status=state.line())
                if running:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            _stop_workers(running)
            raise
    return state


def run_in_process(plan: StudyPlan, keys: Iterable[RunKey], *, threads: int | None = None,
                   device: str | None = None, retry_failed: bool = False) -> StudyProgress:
    """Execute ``keys`` one after another in this process: no worker start-up, and a debugger or profiler
    sees the runs. Ctrl-C stops the running run after its current iteration (it saves a checkpoint) and
    raises ``KeyboardInterrupt``: no further run starts."""
    keys = list(keys)
    state = StudyProgress(total=len(keys))
    for number, key in enumerate(keys, 1):
        log.info("run %s (%d of %d)", key.name, number, len(keys))
        state.running = 1
        _report(state, execute_run(plan.study_dir, key, device=device, threads=threads, retry_failed=retry_failed))
    state.running = 0
    return state


def run_ray(plan: StudyPlan, keys: Iterable[RunKey], address: str, *, retry_failed: bool = False,
            num_cpus: int | None = None) -> StudyProgress:
    """Execute ``keys`` as one Ray task each on the cluster at ``address``.

    ``address`` is a Ray address (``ray://host:10001``, ``host:6379``), ``auto`` (the cluster this machine
    belongs to) or ``local`` (start a private Ray instance on this machine, e.g. to try the setup). Each task
    declares the study's ``resources`` (``cpus``, ``gpus``); Ray places it and sets the visible GPUs.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'clinseg[ray]'") from None
    keys = list(keys)
    state = StudyProgress(total=len(keys))
    if not keys:
        return state
    cpus = float(plan.spec.resources.get("cpus", 1))
    gpus = float(plan.spec.resources.get("gpus", 0))
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(execute_run)
        study_dir = str(plan.study_dir.resolve())
        pending = {remote.remote(study_dir, key, threads=max(1, int(cpus)), retry_failed=retry_failed): key
                   for key in keys}
        with make_progress() as progress, _cancel_on_interrupt(ray, pending):
            task = progress.add_task(f"study {plan.spec.name} (ray)", total=len(keys), status=state.line())
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a worker died (e.g. out of memory)
                        outcome = RunOutcome(key, "failed", 0.0, f"Ray task failed: {exc}")
                    _report(state, outcome)
                    progress.advance(task)
                state.running = min(len(pending), max(1, int(ray.cluster_resources().get("CPU", 1) // cpus)))
                progress.update(task, status=state.line())
    finally:
        if started_here:
            ray.shutdown()
    return state


@contextmanager
def _cancel_on_interrupt(ray: Any, pending: dict[Any, RunKey]) -> Iterator[None]:
    """On Ctrl-C, cancel the Ray tasks not finished: queued ones never start, running ones get
    ``KeyboardInterrupt`` (their runs save a checkpoint)."""
    try:
        yield
    except KeyboardInterrupt:
        for ref in list(pending):
            ray.cancel(ref)
        raise
