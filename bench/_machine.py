"""The machine a benchmark ran on, as the reports state it: CPU model, cores and the vector extensions that
decide convolution speed (AVX2, AVX-512, native bf16, AMX)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_flags() -> str:
    """The CPU model, the cores and the vector extensions that matter for convolutions."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(wanted) or 'none of avx2/avx512'}"
