"""Run a helper program with a timeout that kills it *and* its children.

`subprocess.run(timeout=…)` kills only the direct child; a `wg` or `ip` that
forked and hangs would leave its children behind. The child gets its own
process group here, and the whole group is killed on timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

_lock = threading.Lock()
_started: dict[str, int] = {}  # program name -> processes started by this process


def started() -> dict[str, int]:
    """Processes `run` started since this process began, by program name (metrics)."""
    with _lock:
        return dict(_started)


def run(argv: Sequence[str], *, timeout: float, input: str | None = None,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Like `subprocess.run(argv, capture_output=True, text=True, timeout=…)`.

    Raises subprocess.TimeoutExpired after killing the process group, and
    OSError (FileNotFoundError, PermissionError…) when the program cannot start.
    """
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None else
                            subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)
    name = os.path.basename(str(argv[0]))
    with _lock:
        _started[name] = _started.get(name, 0) + 1
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:  # TimeoutExpired, or a signal handler raising
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=2)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        proc.kill()
