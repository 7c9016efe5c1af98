"""Run a study's pending runs: on local worker processes, or one Ray task per run on a cluster.

Both executors call :func:`clinseg.studies.execute.execute_run` with only the study folder and the run key,
in a fresh process, so a run behaves exactly like ``clinseg train`` + ``predict`` + ``evaluate`` and a
crash of one run never takes the others down. The study folder must be visible to every worker (a shared
file system for Ray clusters).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from clinseg.errors import ConfigError
from clinseg.progress import make_progress
from clinseg.studies.execute import RunOutcome, execute_run
from clinseg.studies.plan import RunKey, StudyPlan

log = logging.getLogger(__name__)


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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, cores // 4)
    return workers, max(1, cores // workers), None


def _gpu_initializer(queue: multiprocessing.Queue) -> None:  # pragma: no cover - needs several GPUs
    os.environ["CUDA_VISIBLE_DEVICES"] = str(queue.get())


def _report(progress_state: StudyProgress, outcome: RunOutcome) -> None:
    if outcome.status == "done":
        progress_state.done += 1
        log.info("run %s done in %.0f s", outcome.key.name, outcome.seconds)
    elif outcome.status == "failed":
        progress_state.failed.append(outcome)
        log.warning("run %s failed: %s", outcome.key.name, outcome.error)
    else:
        progress_state.skipped += 1


def run_local(plan: StudyPlan, keys: Iterable[RunKey], *, workers: int | None = None,
              threads: int | None = None, retry_failed: bool = False) -> StudyProgress:
    """Execute ``keys`` on ``workers`` local processes with ``threads`` CPU threads each (defaults:
    :func:`default_workers`). Two CPU-heavy jobs with all threads each slow each other down far more than
    twofold (oneDNN threads spin), so give each job its share when a machine is shared.

    Each process runs one run and exits (no state leaks between runs). Ctrl-C stops the workers; the
    interrupted runs resume from their checkpoints next time.
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
    context = multiprocessing.get_context("spawn")
    initializer, initargs = None, ()
    if device == "cuda" and workers > 1:  # pragma: no cover - needs several GPUs
        queue = context.Queue()
        for gpu in range(workers):
            queue.put(gpu)
        initializer, initargs = _gpu_initializer, (queue,)
    study_dir = str(plan.study_dir.resolve())
    with make_progress() as progress, ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs,
        max_tasks_per_child=1,
    ) as pool:
        task = progress.add_task(f"study {plan.spec.name}", total=len(keys), status=state.line())
        futures: list[Future[RunOutcome]] = [
            pool.submit(execute_run, study_dir, key, device=device, threads=threads, retry_failed=retry_failed)
            for key in keys]
        try:
            waiting = list(futures)
            while waiting:
                finished = [f for f in waiting if f.done()]
                state.running = min(workers, len(waiting) - len(finished))
                for future in finished:
                    waiting.remove(future)
                    _report(state, future.result())
                    progress.advance(task)
                progress.update(task, status=state.line())
                if waiting and not finished:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise
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
        with make_progress() as progress:
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
