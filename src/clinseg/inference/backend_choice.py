"""Which backend runs a network on this machine: calibrated once per network and machine, then cached.

:func:`choose_backend` with ``requested="auto"`` times a few forward passes of each available backend
(:mod:`clinseg.inference.backends`) on one batch of the run's windows and keeps the fastest whose logits
equal torch's float32 logits within :data:`LOGIT_ATOL` + :data:`LOGIT_RTOL` x the largest |logit|. Torch
(as the sliding window runs it: bf16 autocast only where the CPU has native bf16) is always a candidate and
is kept unless another engine is at least :data:`SWITCH_MARGIN` times faster, so timing noise does not
flip the choice. Only on the CPU: on a GPU torch runs.

Files
-----
In ``CACHE/backends/<weights>/`` (``CACHE`` = ``$CLINSEG_CACHE`` or ``~/.cache/clinseg``, as for the
preprocessed cases).
``<weights>`` is a hash of the network's architecture and weights: copies of a run share the folder, and a
checkpoint overwritten by more training gets a new one. The run folder itself is only read (predict's
inputs are never modified, and a run may sit on a read-only disk).

``backend.json``
    ``{key: record}``: one record per machine and window, ``key`` = a hash of the machine's fingerprint (CPU
    model and flags, threads, torch / ONNX Runtime / OpenVINO versions), the window, the batch and ``amp``.
    A record holds the choice, each backend's seconds per batch, its max |logit difference| to torch
    float32, and why a backend was left out. Another machine or thread count has another key: calibrated
    again, its record kept beside the others.
``<in_channels>x<pz>x<py>x<px>.onnx``
    The export for that window (:func:`clinseg.inference.backends.export_onnx`).

Every file is written atomically. A cache folder that cannot be written leaves ``auto`` on torch (a
warning says so); a forced engine then fails with a :class:`ConfigError` naming the folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from clinseg.data.cache import cache_root
from clinseg.errors import ClinsegError, ConfigError
from clinseg.inference.backends import (
    Backend,
    TorchBackend,
    build_engine,
    check_backend_name,
    export_onnx,
    installed_engines,
    prepared_model,
    require_installed,
)
from clinseg.io.atomic import write_text

logger = logging.getLogger(__name__)

#: Largest accepted |logit - torch float32 logit| on the calibration batch: LOGIT_ATOL + LOGIT_RTOL * the
#: batch's max |torch logit|. float32 engines sum in another order than torch: measured ~1e-4 x max|logit| on
#: random windows and up to 5e-4 x on a head phantom's (ONNX Runtime, resfcn3d, 128³; OpenVINO 2e-4 x); torch
#: itself moves by as much between memory layouts. bf16 moves logits by ~2.5e-2 x max|logit|: refused. A
#: logit moved by d moves a sigmoid probability by at most d / 4, so a mask differs from torch's only at
#: voxels whose probability lies that close to the threshold.
LOGIT_ATOL = 1e-3
LOGIT_RTOL = 1e-3
#: Another engine replaces torch only when at least this many times faster in the calibration.
SWITCH_MARGIN = 1.1
#: Timed forward passes per backend, in turns (after one untimed warm-up, whose output is the one compared).
REPEATS = 3
CACHE_FILE = "backend.json"
#: Records kept in backend.json (the most recent first).
_MAX_RECORDS = 16
#: Bumped when the calibration changes: older records are then ignored.
_VERSION = 1


@dataclass
class BackendChoice:
    """The backend that runs the network, and how it was chosen.

    Attributes
    ----------
    backend : the engine; call it on batches of windows (a :class:`TorchBackend` for torch).
    name : its name (``torch``, ``onnxruntime``, ``openvino``).
    calibrated : True when the backends were timed by this call (False: read from ``backend.json``, forced,
        or not on the CPU).
    seconds : per backend, the fastest forward pass of one batch, s (from the calibration, cached or not).
    max_abs_diff : per backend, max |logit difference| to torch float32 in the calibration.
    """

    backend: Backend
    name: str
    calibrated: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)


def choose_backend(model: nn.Module, in_channels: int, window: tuple[int, int, int], *, requested: str = "auto",
                   device: torch.device | str = "cpu", batch: int = 1, amp: bool = True,
                   cache_dir: str | Path | None = None) -> BackendChoice:
    """The backend to run ``model`` on windows ``(batch, in_channels, *window)``; see the module's docstring.

    Parameters
    ----------
    model : the network (logits in eval mode); left in its train/eval state and memory layout.
    in_channels, window : what one window is: ``(in_channels, pz, py, px)`` voxels.
    requested : ``auto`` (calibrate, or read the cached choice), ``torch``, or an engine forced by name.
    device : where the network runs; anything but the CPU always gets torch.
    batch : windows per forward pass, as the sliding window will batch them (the calibration's batch).
    amp : what the sliding window is given: torch runs bf16 where the CPU has native bf16.
    cache_dir : where the per-network folders are kept (default ``CACHE/backends``).

    Raises
    ------
    ConfigError
        An unknown name; an engine forced on a GPU, or not installed, or whose files cannot be written.
    CheckpointError
        A forced engine cannot export or load the network.
    """
    check_backend_name(requested)
    device = torch.device(device)
    torch_choice = BackendChoice(TorchBackend(model, device, amp), "torch")
    if device.type != "cpu":
        if requested not in ("auto", "torch"):
            raise ConfigError(f"backend {requested!r} runs on the CPU only; use device cpu, or backend torch")
        return torch_choice
    if requested == "torch":
        return torch_choice
    folder = Path(cache_dir or cache_root() / "backends") / weights_digest(model)[:16]
    if requested != "auto":
        require_installed(requested)  # before exporting anything
        try:
            path = _exported(model, in_channels, window, folder)
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot write the ONNX export ({exc.strerror or exc})") from exc
        return BackendChoice(build_engine(requested, path), requested)
    key = _cache_key(in_channels, window, batch, amp)
    record = _read_records(folder).get(key)
    if record is not None:
        choice = _from_record(record, model, in_channels, window, folder, torch_choice)
        if choice is not None:
            return choice
    return _calibrate(model, in_channels, window, folder, batch, amp, key, torch_choice)


def machine_fingerprint() -> dict[str, object]:
    """What makes a timing valid only here: CPU model and flags, threads, library versions."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:  # not Linux
        pass
    flags = " ".join(sorted(info.get("flags", "").split()))
    return {"cpu": info.get("model name") or platform.processor() or platform.machine(),
            "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16], "threads": torch.get_num_threads(),
            "torch": torch.__version__, **{package: _version(package) for package in ("onnxruntime", "openvino")}}


def weights_digest(model: nn.Module) -> str:
    """A hash of the network's architecture (its repr) and every parameter and buffer, bit for bit."""
    digest = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cache_key(in_channels: int, window: tuple[int, int, int], batch: int, amp: bool) -> str:
    what = {"version": _VERSION, "machine": machine_fingerprint(), "in_channels": in_channels,
            "window": list(window), "batch": batch, "amp": amp}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _exported(model: nn.Module, in_channels: int, window: tuple[int, int, int], folder: Path) -> Path:
    """``folder/<in_channels>x<window>.onnx``, exported now unless already there (``folder`` is the
    network's: its name is the weights' hash)."""
    path = folder / f"{in_channels}x{'x'.join(map(str, window))}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    export_onnx(model, in_channels, window, path)
    logger.debug("exported the network to %s in %.1f s", path, time.perf_counter() - start)
    return path


def _read_records(folder: Path) -> dict[str, dict]:
    """The records of ``folder/backend.json``; empty when missing or unreadable (then calibrated again)."""
    try:
        records = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _from_record(record: dict, model: nn.Module, in_channels: int, window: tuple[int, int, int], folder: Path,
                 torch_choice: BackendChoice) -> BackendChoice | None:
    """The cached choice, rebuilt; None when it cannot be (its engine was uninstalled: calibrate again)."""
    name = record.get("choice")
    seconds, diffs = dict(record.get("seconds", {})), dict(record.get("max_abs_diff", {}))
    if name == "torch":
        return BackendChoice(torch_choice.backend, "torch", False, seconds, diffs)
    try:
        backend = build_engine(str(name), _exported(model, in_channels, window, folder))
    except (ClinsegError, OSError) as exc:
        logger.info("cached backend %r unusable (%s): calibrating again", name, exc)
        return None
    return BackendChoice(backend, str(name), False, seconds, diffs)


def _calibrate(model: nn.Module, in_channels: int, window: tuple[int, int, int], folder: Path, batch: int,
               amp: bool, key: str, torch_choice: BackendChoice) -> BackendChoice:
    """Time torch and every engine that starts and passes the equality check on one batch, choose, record."""
    x = torch.randn((batch, in_channels, *window), generator=torch.Generator().manual_seed(0))
    left_out: dict[str, str] = {}
    path = None
    if installed_engines():
        try:
            path = _exported(model, in_channels, window, folder)
        except (ClinsegError, OSError) as exc:
            logger.warning("CPU backends not tried, torch runs the network: %s", exc)
            left_out = {name: f"export failed: {exc}" for name in installed_engines()}
    with prepared_model(model, torch.device("cpu")) as channels_last:
        torch_x = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
        logits = torch_choice.backend(torch_x)  # also the warm-up
        fp32 = logits if logits.dtype == torch.float32 else TorchBackend(model, "cpu", amp=False)(torch_x)
        reference = fp32.float()
        diffs = {"torch": float((logits.float() - reference).abs().max())}
        bound = LOGIT_ATOL + LOGIT_RTOL * float(reference.abs().max())
        runs: dict[str, tuple[Backend, torch.Tensor]] = {"torch": (torch_choice.backend, torch_x)}
        for name in installed_engines() if path is not None else []:
            try:
                engine = build_engine(name, path)
                diffs[name] = float((engine(x).float() - reference).abs().max())  # also the warm-up
            except Exception as exc:  # noqa: BLE001 - an engine that cannot run this network is left out
                left_out[name] = f"{type(exc).__name__}: {exc}"
                continue
            if diffs[name] <= bound:  # False for NaN too
                runs[name] = (engine, x)
            else:
                left_out[name] = f"max |logit diff| {diffs[name]:.3g} > {bound:.3g}"
        seconds = _time(runs)
    name = min(seconds, key=seconds.__getitem__)
    if name != "torch" and seconds[name] * SWITCH_MARGIN > seconds["torch"]:
        name = "torch"
    logger.info("the network runs on %s on this machine (s per batch of %d windows: %s)", name, batch,
                ", ".join(f"{n} {s:.3g}" for n, s in seconds.items()))
    record = {"choice": name, "seconds": seconds, "max_abs_diff": diffs, "left_out": left_out,
              "tolerance": {"atol": LOGIT_ATOL, "rtol": LOGIT_RTOL}, "batch": batch, "window": list(window),
              "machine": machine_fingerprint(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_record(folder, key, record)
    return BackendChoice(runs[name][0], name, True, seconds, diffs)


def _time(runs: dict[str, tuple[Backend, torch.Tensor]]) -> dict[str, float]:
    """Per backend, the fastest of :data:`REPEATS` calls on its input, taken in turns (torch, engine 1, ...,
    torch, ...) so that a neighbour's burst of load slows them alike rather than one of them."""
    seconds = dict.fromkeys(runs, math.inf)
    for _ in range(REPEATS):
        for name, (backend, x) in runs.items():
            start = time.perf_counter()
            backend(x)
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    return seconds


def _write_record(folder: Path, key: str, record: dict) -> None:
    """Put ``record`` first in ``folder/backend.json`` (atomically); a folder that cannot be written is logged."""
    records = {key: record, **{k: v for k, v in _read_records(folder).items() if k != key}}
    try:
        write_text(folder / CACHE_FILE, json.dumps(dict(list(records.items())[:_MAX_RECORDS]), indent=1))
    except OSError as exc:
        logger.warning("%s: cannot record the backend choice (%s); it is timed again next time",
                       folder / CACHE_FILE, exc.strerror or exc)


__all__ = ["LOGIT_ATOL", "LOGIT_RTOL", "SWITCH_MARGIN", "BackendChoice", "choose_backend", "machine_fingerprint",
           "weights_digest"]
