"""Keep the optional CPU runtimes from reporting usage to their vendors.

ONNX Runtime (since 1.29, on Linux too) starts a 1DS uploader thread with its own HTTP client, writes a device
id and an event cache under ``~/.cache/Microsoft``, and sends process, model and session events; OpenVINO's
``import openvino`` sends a Google Analytics event through the ``openvino_telemetry`` package unless the user
opted out. A tool that segments patients' scans in a clinic must not do either behind the user's back, and a
background network thread in every process that ran ONNX Runtime is one more thing that can go wrong on a
machine without internet (our CI machines, hospital servers).

:func:`disable` turns both off for this process, with the vendors' own switches: the
``ORT_DISABLE_TELEMETRY=1`` environment variable ONNX Runtime reads before it initialises, and OpenVINO's
telemetry stub (``openvino.tools.ovc.telemetry_stub``), which OpenVINO uses by itself when
``openvino_telemetry`` cannot be imported. Values a user set are kept, and ``CLINSEG_VENDOR_TELEMETRY=1``
leaves both runtimes as they are.
"""

from __future__ import annotations

import os
import sys

#: Set to ``1`` to leave ONNX Runtime's and OpenVINO's telemetry as the vendors ship it.
ALLOW_ENV = "CLINSEG_VENDOR_TELEMETRY"


def disable() -> None:
    """Switch the runtimes' telemetry off for this process; call before ``onnxruntime``/``openvino`` load.

    Idempotent. Too late for a runtime already imported (ONNX Runtime reads its variable once), which is why
    :mod:`clinseg.inference.backends` calls it when it is imported, before either runtime can be.
    """
    if os.environ.get(ALLOW_ENV) == "1":
        return
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    # ``None`` in sys.modules makes ``import openvino_telemetry`` raise ImportError: OpenVINO then falls back to
    # its own no-op stub. Left alone when the package was already imported by someone who wants it.
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
