"""Engines that run a network's forward pass on batches of windows: torch itself, or an ONNX export of the
network run by ONNX Runtime or OpenVINO (optional packages: ``pip install 'clinseg[cpu]'``).

A backend maps windows ``(B, C, pz, py, px)`` float32 to logits ``(B, N, pz, py, px)``, returned on the
input's device: float32 for the exported engines, the autocast dtype for :class:`TorchBackend`. The sliding
window (:func:`clinseg.inference.sliding_window.predict_probabilities`) calls one per batch of windows, and
:func:`clinseg.inference.backend_choice.choose_backend` picks the fastest on this machine.

Export
------
:func:`export_onnx` traces the network in eval mode (TorchScript-based exporter, ONNX opset 17: no extra
package beyond ``onnx``, seconds for our networks; networks that return extra heads in training return
only the logits in eval mode). The graph has a **fixed window shape and a dynamic batch**: a trace records
Python decisions on sizes as constants, so it is only sure to be right for the shape it was traced on, and
the sliding window only ever feeds that shape; a static shape also lets the runtimes plan their
convolution layouts once. The batch stays dynamic because the last batch of a row of windows is often
smaller. The exported engines run in float32 (the CPUs we target have no native bf16).

Example
-------
>>> net = torch.nn.Conv3d(1, 2, 3, padding=1).eval()
>>> path = export_onnx(net, 1, (8, 8, 8), tmp / "net.onnx")      # doctest: +SKIP
>>> OnnxRuntimeBackend(path)(torch.zeros(3, 1, 8, 8, 8)).shape     # doctest: +SKIP
torch.Size([3, 2, 8, 8, 8])
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from clinseg.errors import CheckpointError, ConfigError
from clinseg.inference import vendor_telemetry
from clinseg.inference.signal_stack import kept_signal_stack
from clinseg.io.atomic import write_bytes
from clinseg.registry import Registry
from clinseg.training.device import cpu_has_fast_bf16

# Once, before this module's exporter or engines can load ONNX Runtime or OpenVINO.
vendor_telemetry.disable()

logger = logging.getLogger(__name__)

#: ONNX operator set of the exports (ONNX Runtime >= 1.12 and OpenVINO >= 2022.1 read it).
OPSET = 17


class Backend(Protocol):
    """Runs the network: windows ``(B, C, pz, py, px)`` float32 -> logits ``(B, N, pz, py, px)``."""

    name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


#: The engines that run an ONNX export, by name: each is built from the export's path and a thread count,
#: and lists in ``packages`` what it needs installed (``onnx`` writes the export).
ONNX_ENGINES: Registry[Callable[[Path, int | None], Backend]] = Registry("inference backend")


def backend_names() -> list[str]:
    """Every backend name a user can ask for: ``torch`` and the exported engines."""
    return ["torch", *ONNX_ENGINES.names()]


def installed_engines() -> list[str]:
    """The exported engines whose package is installed here (their runtime may still refuse to start)."""
    return [name for name in ONNX_ENGINES.names() if not _missing(name)]


def require_installed(name: str) -> None:
    """A :class:`ConfigError` saying how to install them when a package the engine ``name`` needs is missing."""
    missing = _missing(name)
    if missing:
        raise ConfigError(f"backend {name!r} is not available: {' and '.join(missing)} not installed "
                          f"(pip install 'clinseg[cpu]')")


def _missing(name: str) -> list[str]:
    """The packages engine ``name`` needs that are not installed (checked without importing them)."""
    packages = getattr(ONNX_ENGINES.get(name), "packages", ()) if name in ONNX_ENGINES else ()
    return [package for package in packages if importlib.util.find_spec(package) is None]


def check_backend_name(name: str) -> str:
    """``name`` when it is ``auto`` or a backend name; a :class:`ConfigError` listing them otherwise."""
    if name != "auto" and name not in backend_names():
        raise ConfigError(f"unknown backend {name!r}; use auto, {', '.join(backend_names())}")
    return name


def torch_autocast(device: torch.device, amp: bool) -> AbstractContextManager[object]:
    """bfloat16 autocast on CPUs with native bf16 kernels and on bf16-capable GPUs, float16 on older GPUs.

    CPUs without AVX512-BF16/AMX run fp32: there bf16 is emulated and ~12x *slower* (unet3d, 32³ windows,
    AVX2-only EPYC: 208 s in bf16 against 17 s in fp32 for one 80x96x96 volume).
    """
    if not amp:
        return nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and not cpu_has_fast_bf16():
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def set_memory_format(model: nn.Module, memory_format: torch.memory_format) -> bool:
    """Convert the model's 5D weights to ``memory_format`` in place; False when the model refuses it."""
    try:
        model.to(memory_format=memory_format)
    except RuntimeError:  # e.g. a 4D parameter cannot take the 3D channels-last layout
        logger.debug("model kept its memory format", exc_info=True)
        return False
    return True


@contextmanager
def prepared_model(model: nn.Module, device: torch.device, channels_last: bool = True) -> Iterator[bool]:
    """Run ``model`` on ``device`` in eval mode, on the CPU in the ``channels_last_3d`` layout (when asked and
    possible: oneDNN's fastest 3D convolutions); yields whether that layout is in effect, so that inputs are
    given the same one. The model's train/eval flag and layout are restored on exit; it stays on ``device``.
    """
    was_training = model.training
    model.to(device).eval()
    in_effect = channels_last and device.type == "cpu" and set_memory_format(model, torch.channels_last_3d)
    try:
        yield in_effect
    finally:
        model.train(was_training)
        if in_effect:
            set_memory_format(model, torch.contiguous_format)


class TorchBackend:
    """The network itself under :func:`torch.inference_mode`, autocast as :func:`torch_autocast` says.

    The caller puts the model in eval mode (and the inputs in its memory layout): :func:`prepared_model`.
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", amp: bool = True) -> None:
        self.model, self.device, self.amp = model, torch.device(device), amp

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch_autocast(self.device, self.amp):
            return self.model(x)


def export_onnx(model: nn.Module, in_channels: int, window: tuple[int, int, int], path: str | Path) -> Path:
    """Export ``model`` in eval mode to ONNX at ``path`` (written atomically): input ``windows``
    ``(batch, in_channels, *window)`` float32, output ``logits`` ``(batch, N, *window)``; only the batch is
    dynamic (see the module's docstring). The model's train/eval flag is restored.

    Raises
    ------
    CheckpointError
        The network cannot be exported (an operator ONNX lacks, an output that is not one tensor), naming
        ``path``.
    """
    path = Path(path)
    example = torch.randn((2, in_channels, *window), generator=torch.Generator().manual_seed(0))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    # torch >= 2.5 defaults to the torch.export-based exporter (needs onnxscript); the TorchScript one is enough
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes, once per export
            if not isinstance(model(example.to(device)), torch.Tensor):
                raise CheckpointError(f"{path}: the network returns more than one tensor in eval mode")
            torch.onnx.export(model, (example.to(device),), buffer, input_names=["windows"], output_names=["logits"],
                              dynamic_axes={"windows": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                              do_constant_folding=True, **legacy)  # type: ignore[arg-type]
    except CheckpointError:
        raise
    except Exception as exc:  # the exporter raises many kinds: one readable error
        raise CheckpointError(f"{path}: cannot export the network to ONNX ({type(exc).__name__}: {exc})") from exc
    finally:
        model.train(was_training)
    write_bytes(path, buffer.getvalue())
    return path


def build_engine(name: str, path: str | Path, threads: int | None = None) -> Backend:
    """The exported engine ``name`` on the ONNX file ``path``, with ``threads`` threads (None: torch's count).

    Raises
    ------
    ConfigError
        ``name`` is unknown, or its package is not installed (the message says how to install it).
    CheckpointError
        The runtime cannot load the file.
    """
    builder = ONNX_ENGINES.get(name)
    require_installed(name)
    return builder(Path(path), threads)


def _import(package: str, engine: str) -> ModuleType:
    """Import an optional runtime, or a :class:`ConfigError` saying how to install it (or why it fails)."""
    require_installed(engine)
    try:
        return importlib.import_module(package)
    except ImportError as exc:  # installed but broken (a missing shared library)
        raise ConfigError(f"backend {engine!r} is not available: importing {package} failed ({exc})") from exc


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 NumPy copy or view of ``x`` (on the CPU, default layout)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


@ONNX_ENGINES.register("onnxruntime")
class OnnxRuntimeBackend:
    """An ONNX export run by ONNX Runtime's CPU execution provider, all graph optimisations on."""

    name = "onnxruntime"
    packages = ("onnx", "onnxruntime")

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ort = _import("onnxruntime", self.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # the cores torch was given
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception classes
            raise CheckpointError(f"{path}: ONNX Runtime cannot load the exported network ({exc})") from exc
        self._input = self._session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self._session.run(None, {self._input: _as_numpy(x)})[0]
        return torch.from_numpy(out).to(x.device)


@ONNX_ENGINES.register("openvino")
class OpenVinoBackend:
    """An ONNX export run by OpenVINO's CPU plugin in float32 (``INFERENCE_PRECISION_HINT``: it would pick
    bf16 by itself on CPUs with AVX512-BF16/AMX, and no longer match torch's float32 outputs), its threads
    not pinned to cores (on a shared machine a pinned thread cannot move away from a busy neighbour)."""

    name = "openvino"
    packages = ("onnx", "openvino")

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ov = _import("openvino", self.name)
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                                  "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                  "ENABLE_CPU_PINNING": False}
        self._model: Any = None
        self._request: Any = None
        # OpenVINO's CPU plugin swaps this thread's signal stack when it compiles and when it is destroyed,
        # and leaves an unmapped one behind unless models die in reverse order: see signal_stack.
        with kept_signal_stack():
            try:
                self._model = ov.Core().compile_model(str(path), "CPU", config)
            except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
                raise CheckpointError(f"{path}: OpenVINO cannot load the exported network ({exc})") from exc
            self._request = self._model.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._request.infer({0: _as_numpy(x)})
        out = np.array(self._request.get_output_tensor(0).data, copy=True)  # the request reuses its buffer
        return torch.from_numpy(out).to(x.device)

    def close(self) -> None:
        """Release the compiled network now, leaving this thread's signal stack as it was."""
        with kept_signal_stack():
            self._request = None
            self._model = None

    def __del__(self) -> None:
        if getattr(self, "_model", None) is not None:
            self.close()


__all__ = [
    "ONNX_ENGINES",
    "OPSET",
    "Backend",
    "OnnxRuntimeBackend",
    "OpenVinoBackend",
    "TorchBackend",
    "backend_names",
    "build_engine",
    "check_backend_name",
    "export_onnx",
    "installed_engines",
    "prepared_model",
    "require_installed",
    "set_memory_format",
    "torch_autocast",
]
