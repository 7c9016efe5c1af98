"""One run of a study in a process of its own: what :func:`clinseg.studies.executors.run_local` starts.

``python -m clinseg.studies._worker STUDY ARM MODE SIZE REPEAT [--threads N] [--device D] [--retry-failed]``
runs :func:`clinseg.studies.execute.execute_run` and exits; the run's ``done.json`` or ``failed.json`` is its
result. Exit codes: 0 (done, failed or skipped: see the run folder), 130 (interrupted by SIGINT/SIGTERM; the
run saved its checkpoint and stays pending).

The worker runs in a session of its own (the study passes Ctrl-C on), so it also stops, as on Ctrl-C, when the
study process that started it is gone: a study killed outright leaves no run training on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from clinseg.studies.execute import execute_run
from clinseg.studies.plan import RunKey

#: Seconds between two looks at whether the study process is still there.
_PARENT_POLL_S = 1.0


def _stop_when_orphaned(parent: int) -> None:
    """Send this process SIGINT once its parent (the study) is gone (it was re-parented)."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the study run, return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m clinseg.studies._worker", description=__doc__)
    parser.add_argument("study")
    parser.add_argument("arm")
    parser.add_argument("mode")
    parser.add_argument("size", type=int)
    parser.add_argument("repeat", type=int)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--retry-failed", action="store_true")
    args = parser.parse_args(argv)
    key = RunKey(args.arm, args.mode, args.size, args.repeat)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    try:
        execute_run(args.study, key, device=args.device, threads=args.threads, retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
