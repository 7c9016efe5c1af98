"""Keep the calling thread's alternate signal stack as it was around foreign code that swaps it.

OpenVINO's CPU plugin (2026.4) installs a signal stack of its own on the thread that compiles a model and, when
the compiled model is destroyed, puts back the stack it found and unmaps its own. Two models destroyed in the
order they were made therefore leave the thread on the first model's stack, already unmapped. Nothing shows
until the next signal with a handler arrives on that thread — Ctrl-C, or the SIGCHLD that torch's DataLoader
watches — when the kernel cannot write the signal frame and kills the process with SIGSEGV (faulthandler, which
needs the same stack, cannot even report it). This is how our CI died "after the browser tests".

:func:`kept_signal_stack` records the thread's signal stack (``sigaltstack``) and sets it back afterwards, so a
compile or a destruction leaves the thread as it found it. Linux and macOS; a no-op where the C library has no
``sigaltstack``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):
    """``stack_t`` of ``<signal.h>``: ``ss_sp``, ``ss_flags``, ``ss_size``."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _sigaltstack() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.sigaltstack
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.POINTER(_StackT), ctypes.POINTER(_StackT)]
    function.restype = ctypes.c_int
    return function


_SIGALTSTACK = _sigaltstack()
_SS_ONSTACK = 1  # the thread is running on the stack now: it cannot be changed (never the case between calls)


def current() -> tuple[int, int, int] | None:
    """The calling thread's signal stack as ``(address, flags, size)``, or None where it cannot be read."""
    if _SIGALTSTACK is None:
        return None
    stack = _StackT()
    if _SIGALTSTACK(None, ctypes.byref(stack)) != 0:
        return None
    return int(stack.ss_sp or 0), int(stack.ss_flags), int(stack.ss_size)


@contextmanager
def kept_signal_stack() -> Iterator[None]:
    """Run the block, then give the calling thread back the signal stack it had before the block."""
    before = _StackT()
    readable = _SIGALTSTACK is not None and _SIGALTSTACK(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        if readable and not before.ss_flags & _SS_ONSTACK:
            _SIGALTSTACK(ctypes.byref(before), None)
