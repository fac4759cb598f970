"""Run one user hook: its own process group, a time limit, the tail of what it printed.

At the limit the hook's whole process group gets SIGTERM, and SIGKILL `grace` seconds
later if any member is left. stdout and stderr share one pipe; only the last TAIL bytes
are kept (the runner logs them at debug), so a chatty hook costs no memory. A hook that
leaves a child running in the background with the pipe open is not waited for: reading
stops shortly after the hook itself ends, and that child keeps running.

The wait uses a pidfd (Linux 5.3) next to the pipe, so nothing polls while a hook runs;
without one it looks every 50 ms.
"""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

TAIL = 2048
DRAIN = 0.2  # how long output is still read after the hook ended
_SLICE = 0.05  # without a pidfd


@dataclasses.dataclass(frozen=True, slots=True)
class HookResult:
    """How one hook ended. `returncode` as Popen gives it: negative for a signal."""

    returncode: int
    timed_out: bool = False
    output: bytes = b""
    seconds: float = 0.0


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when no member is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user; the others got it
        return True
    return True


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class _Tail:
    """Reads the hook's pipe without blocking, keeping the last TAIL bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.eof = False
        os.set_blocking(fd, False)

    def read(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.data += chunk
        del self.data[:-TAIL]


def run_hook(argv: Sequence[str], env: Mapping[str, str], timeout: float, *,
             grace: float = 2.0, on_start: Callable[[int], None] | None = None,
             clock: Callable[[], float] = time.monotonic) -> HookResult:
    """Run `argv` with exactly `env` in / with stdin from /dev/null, within `timeout`.

    `on_start` gets the process group id as soon as the hook runs (the runner's stop()
    signals it). Raises OSError when the program cannot be started.
    """
    start = clock()
    proc = subprocess.Popen(list(argv), env=dict(env), cwd="/", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True)
    assert proc.stdout is not None
    if on_start is not None:
        on_start(proc.pid)
    tail = _Tail(proc.stdout.fileno())
    pidfd = _pidfd(proc.pid)
    timed_out = False
    try:
        code = _wait(proc, tail, pidfd, start + timeout, clock)
        if code is None:
            timed_out = True
            code = _terminate(proc, tail, pidfd, grace, clock)
        _drain(tail, clock() + DRAIN, clock)
    finally:
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
    return HookResult(code, timed_out, bytes(tail.data), clock() - start)


def _wait(proc: subprocess.Popen[bytes], tail: _Tail, pidfd: int | None, deadline: float,
          clock: Callable[[], float]) -> int | None:
    """Read output until the hook exits (its return code) or the deadline (None)."""
    while True:
        code = proc.poll()
        if code is not None:
            return code
        left = deadline - clock()
        if left <= 0:
            return None
        fds = [] if tail.eof else [tail.fd]
        if pidfd is not None:
            fds.append(pidfd)
        else:
            left = min(left, _SLICE)
        ready, _, _ = select.select(fds, [], [], left)
        if tail.fd in ready:
            tail.read()


def _terminate(proc: subprocess.Popen[bytes], tail: _Tail, pidfd: int | None, grace: float,
               clock: Callable[[], float]) -> int:
    """SIGTERM to the group; SIGKILL after `grace` when a member is still there."""
    signal_group(proc.pid, signal.SIGTERM)
    code = _wait(proc, tail, pidfd, clock() + grace, clock)
    if code is None:
        signal_group(proc.pid, signal.SIGKILL)
        try:
            return proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # stuck in the kernel (D state): move on
            return -signal.SIGKILL
    # The hook is gone; its children got SIGTERM too. Give them the rest of the grace.
    end = clock() + grace
    while signal_group(proc.pid, 0) and clock() < end:
        time.sleep(_SLICE)
    signal_group(proc.pid, signal.SIGKILL)
    return code


def _drain(tail: _Tail, until: float, clock: Callable[[], float]) -> None:
    while not tail.eof:
        left = until - clock()
        if left <= 0:
            return
        ready, _, _ = select.select([tail.fd], [], [], left)
        if not ready:
            return
        tail.read()
