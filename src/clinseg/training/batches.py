"""Training batches prepared ahead of the step, in worker processes, and reproducible per iteration.

Batch ``i`` of a run is a pure function of the run's seed and ``i``: the sampler's generator is reseeded
with ``(seed, i)`` before the batch is drawn. So batches can be made by any number of worker processes in
any order, an interrupted run resumes with exactly the batches it would have had, and the checkpoint needs
no sampler state.

On a 2-core machine the workers share the cores with the training step; one worker preparing the next
batches while the step runs is enough that the step never waits for data (the step is much longer than
a batch's sampling and augmentation). Workers run with one torch thread and ``fork``, so they share the
sampler's in-memory cases (when it has any) with the main process instead of copying them.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from clinseg.cores import available_cores
from clinseg.data.samplers import PatchBatch

log = logging.getLogger(__name__)


class Sampler(Protocol):
    """What a batch source needs: a generator to reseed and a ``batch`` method."""

    rng: np.random.Generator

    def batch(self, batch_size: int) -> PatchBatch: ...


def batch_at(sampler: Sampler, batch_size: int, seed: int, iteration: int) -> PatchBatch:
    """Batch number ``iteration`` (0-based) of a run with ``seed``: the sampler reseeded, then drawn."""
    sampler.rng = np.random.default_rng([int(seed), int(iteration)])
    return sampler.batch(batch_size)


def _to_tuple(batch: PatchBatch) -> tuple[Any, ...]:
    return batch.image, batch.target, batch.annotated, batch.image_labels


def _from_tuple(values: Any) -> PatchBatch:
    image, target, annotated, labels = (v.numpy() if isinstance(v, torch.Tensor) else v for v in values)
    return PatchBatch(image, target, annotated, labels)


class _Iterations(torch.utils.data.IterableDataset):
    """Worker ``w`` of ``W`` makes batches ``start + w``, ``start + w + W``, ...; the data loader hands them
    out round-robin, that is in iteration order."""

    def __init__(self, sampler: Sampler, batch_size: int, seed: int, start: int, stop: int | None) -> None:
        self.sampler, self.batch_size, self.seed, self.start, self.stop = sampler, batch_size, seed, start, stop

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        iterations = itertools.count(self.start + worker, workers) if self.stop is None else \
            range(self.start + worker, self.stop, workers)
        for iteration in iterations:
            yield _to_tuple(batch_at(self.sampler, self.batch_size, self.seed, iteration))


def _worker_init(_: int) -> None:
    """One torch thread; Ctrl-C and SIGTERM are left to the main process. A terminal's Ctrl-C reaches the
    whole process group: a worker that died of it would surface in the main process as a broken pipe
    (``EOFError``) instead of the clean stop after the current iteration that the main process asks for.
    Workers still end with the main process (the data loader watches its parent)."""
    torch.set_num_threads(1)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class BatchStream:
    """Batches ``start, start + 1, ... stop - 1`` of a run, made by ``workers`` background processes.

    Parameters
    ----------
    sampler : draws one batch (reseeded per iteration).
    batch_size : patches per batch.
    seed : the run's seed.
    start, stop : the iterations to make (resume at ``start``); ``stop=None``: until closed.
    workers : background processes; 0 makes each batch in the calling process when it is asked for.
    prefetch : batches each worker keeps ready.
    """

    def __init__(self, sampler: Sampler, batch_size: int, seed: int, start: int, stop: int | None = None,
                 workers: int = 1, prefetch: int = 2) -> None:
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed
        self.next_iteration = start
        self.stop = stop
        self.workers = workers
        self._iterator: Iterator[tuple[Any, ...]] | None = None
        if workers > 0 and (stop is None or stop > start):
            context = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
            loader = torch.utils.data.DataLoader(
                _Iterations(sampler, batch_size, seed, start, stop), batch_size=None, num_workers=workers,
                prefetch_factor=prefetch, worker_init_fn=_worker_init, multiprocessing_context=context,
                persistent_workers=False)
            self._iterator = iter(loader)

    def next(self) -> PatchBatch:
        """The batch of the next iteration."""
        if self.stop is not None and self.next_iteration >= self.stop:
            raise StopIteration(f"batches were made up to iteration {self.stop}")
        if self._iterator is not None:
            batch = _from_tuple(next(self._iterator))
        else:
            batch = batch_at(self.sampler, self.batch_size, self.seed, self.next_iteration)
        self.next_iteration += 1
        return batch

    def close(self) -> None:
        """Stop the workers (they also stop when the stream is garbage-collected)."""
        self._iterator = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamSource:
    """A :class:`BatchStream` seen as a patch source (``batch`` and ``rng``), for the loop and for wrappers
    that add to each batch in the main process (the interactive click simulation).

    ``rng`` is reseeded with ``(seed, iteration, 1)`` for every batch taken, so whatever a wrapper draws from
    it is reproducible per iteration too.
    """

    def __init__(self, stream: BatchStream, seed: int) -> None:
        self.stream = stream
        self.seed = seed
        self.rng = np.random.default_rng([seed, stream.next_iteration, 1])

    def batch(self, batch_size: int) -> PatchBatch:
        iteration = self.stream.next_iteration
        if batch_size != self.stream.batch_size:
            raise ValueError(f"the stream makes batches of {self.stream.batch_size}, asked for {batch_size}")
        self.rng = np.random.default_rng([self.seed, iteration, 1])
        return self.stream.next()


def default_workers() -> int:
    """Background batch workers for this machine: one per 4 cores, at least one (the step uses the rest)."""
    return max(1, available_cores() // 4)
