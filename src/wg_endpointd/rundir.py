"""The run directory: pid file, hotplug interface list and state file, written atomically."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterable
from typing import Any

DEFAULT_RUN_DIR = "/var/run/wg-endpointd"
PID_FILE, HOTPLUG_LIST, STATE_FILE = "wg-endpointd.pid", "hotplug.list", "state.json"
LOCK_FILE = "wg-endpointd.lock"


class Busy(Exception):
    """Another process holds the run directory's lock."""

    def __init__(self, pid: int | None, mode: str) -> None:
        super().__init__(f"pid {pid}" if pid else "another process")
        self.pid, self.mode = pid, mode


def run_dir() -> str:
    return os.environ.get("WG_ENDPOINTD_RUN_DIR") or DEFAULT_RUN_DIR


class RunDir:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or run_dir()

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write(self, name: str, text: str) -> None:
        """Write via a temporary file and rename, so readers never see half a file."""
        os.makedirs(self.path, mode=0o755, exist_ok=True)
        tmp = self._file(f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._file(name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def check(self) -> None:
        """Raise OSError with a plain message when the directory cannot be used."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OSError(errno.ENOTDIR, "not a directory")
        os.makedirs(self.path, mode=0o755, exist_ok=True)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "not writable")

    def acquire(self, mode: str) -> int:
        """Take the run directory's lock for `mode` ("run" or "once"); returns the fd to keep.

        Raises Busy naming the holder, or OSError when the directory is unusable.
        The lock goes away with the process, however it ends.
        """
        self.check()
        fd = os.open(self._file(LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse_holder(os.pread(fd, 64, 0))
            os.close(fd)
            raise Busy(*(holder or (None, "unknown"))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {mode}\n".encode(), 0)
        return fd

    def holder(self) -> tuple[int | None, str] | None:
        """Who holds the lock now, without taking it; None when nobody does."""
        try:
            fd = os.open(self._file(LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse_holder(os.pread(fd, 64, 0)) or (None, "unknown")
        finally:
            os.close(fd)  # closing also drops a shared lock we got
        return None

    def write_pid(self, pid: int) -> None:
        self.write(PID_FILE, f"{pid}\n")

    def remove_pid(self, pid: int) -> None:
        """Remove the pid file if it is ours."""
        if self.read_pid() == pid:
            os.unlink(self._file(PID_FILE))

    def read_pid(self) -> int | None:
        try:
            with open(self._file(PID_FILE)) as f:
                text = f.read().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def daemon_running(self) -> int | None:
        """The daemon's pid while a daemon holds the lock (a reused pid in a stale pid
        file does not count)."""
        held = self.holder()
        if held is None or held[1] != "run":
            return None
        return held[0] or self.read_pid()

    def write_hotplug_list(self, names: Iterable[str]) -> None:
        self.write(HOTPLUG_LIST, "".join(f"{n}\n" for n in names))

    def write_state(self, state: dict[str, Any]) -> None:
        self.write(STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def read_state(self) -> dict[str, Any]:
        """Raises OSError when missing, ValueError when corrupt."""
        with open(self._file(STATE_FILE)) as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("peers"), list):
            raise ValueError("unexpected structure")
        return data


def _parse_holder(data: bytes) -> tuple[int | None, str] | None:
    words = data.decode("ascii", "replace").split()
    if len(words) != 2 or not words[0].isdigit():
        return None
    return int(words[0]), words[1]
