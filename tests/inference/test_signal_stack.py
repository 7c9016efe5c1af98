"""The thread's signal stack survives OpenVINO (issue 21's CPU engines; the CI's "segmentation fault after the
browser tests"): OpenVINO's CPU plugin swaps the signal stack of the thread that compiles or destroys a model,
and two models destroyed in the order they were made left an unmapped one behind, so the next handled signal
(Ctrl-C, torch's SIGCHLD) killed the process with SIGSEGV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clinseg.inference import signal_stack
from clinseg.inference.backends import installed_engines

SCRIPT = """
import os, signal, torch
from clinseg.inference.backends import build_engine, export_onnx
from clinseg.inference.signal_stack import current
before = current()
path = export_onnx(torch.nn.Conv3d(1, 2, 3, padding=1).eval(), 1, (8, 8, 8), {path!r})
first, second = build_engine("openvino", path, 1), build_engine("openvino", path, 1)
del first   # destroyed in the order they were made: the case that broke the stack
del second
assert current() == before, (current(), before)
signal.signal(signal.SIGUSR1, lambda *_: print("handled"))
os.kill(os.getpid(), signal.SIGUSR1)
print("alive")
"""


def test_kept_signal_stack_puts_back_what_the_block_changed() -> None:
    import ctypes

    before = signal_stack.current()
    if before is None:
        pytest.skip("this C library has no sigaltstack")
    buffer = ctypes.create_string_buffer(64 * 1024)
    with signal_stack.kept_signal_stack():
        mine = signal_stack._StackT(ctypes.cast(buffer, ctypes.c_void_p), 0, len(buffer))
        assert signal_stack._SIGALTSTACK(ctypes.byref(mine), None) == 0
        assert signal_stack.current() == (ctypes.addressof(buffer), 0, len(buffer))
    assert signal_stack.current() == before


@pytest.mark.skipif("openvino" not in installed_engines(), reason="openvino is not installed")
def test_a_signal_after_openvino_models_are_gone_is_handled(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(path=str(tmp_path / "net.onnx"))],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"code {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["handled", "alive"]
