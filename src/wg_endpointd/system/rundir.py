"""The run directory: lock, pid file, hotplug interface list and state file.

Trusted only when it deserves it (docs/architecture.md, "Run directory
contract"): the directory must be a real directory, not a symbolic link, owned
by the daemon's user and not writable by group or others. Files in it are
opened without following symbolic links and only when they are regular files,
so a link, FIFO or device planted there is refused with one line and left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterable
from typing import Any

DEFAULT_RUN_DIR = "/var/run/wg-endpointd"
PID_FILE, HOTPLUG_LIST, STATE_FILE = "wg-endpointd.pid", "hotplug.list", "state.json"
LOCK_FILE = "wg-endpointd.lock"
FILES = (LOCK_FILE, PID_FILE, HOTPLUG_LIST, STATE_FILE)
DIR_MODE, FILE_MODE = 0o755, 0o644
# Never follow a link, never wait for a FIFO's other end, never adopt a tty.
_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class Busy(Exception):
    """Another process holds the run directory's lock."""

    def __init__(self, pid: int | None, mode: str) -> None:
        super().__init__(f"pid {pid}" if pid else "another process")
        self.pid, self.mode = pid, mode


class Unsafe(OSError):
    """The run directory, or a file in it, breaks the trust rules.

    `strerror` is the reason alone (callers put the directory before it);
    str() is the whole line.
    """

    def __init__(self, run_dir: str, reason: str) -> None:
        super().__init__(errno.EPERM, reason)
        self.run_dir = run_dir

    def __str__(self) -> str:
        return f"run directory {self.run_dir}: {self.strerror}"


def run_dir() -> str:
    return os.environ.get("WG_ENDPOINTD_RUN_DIR") or DEFAULT_RUN_DIR


def _token() -> str:
    """The unguessable part of a temporary file's name."""
    return os.urandom(6).hex()


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


class RunDir:
    def __init__(self, path: str | None = None) -> None:
        # No trailing slash: lstat("dir/") would follow a link named dir.
        self.path = (path or run_dir()).rstrip("/") or "/"

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _refuse(self, name: str, mode: int) -> Unsafe:
        return Unsafe(self.path, f"{name} is {_kind(mode)}, not a regular file: "
                                 "refused and left alone")

    def _check_file(self, name: str) -> None:
        """Refuse anything but a regular file at `name`; a missing file is fine."""
        try:
            st = os.lstat(self._file(name))
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode):
            raise self._refuse(name, st.st_mode)

    def _open(self, name: str, flags: int) -> int:
        """Open the regular file `name`; nothing else is ever opened (lstat first,
        then O_NOFOLLOW and fstat against a swap in between)."""
        self._check_file(name)
        try:
            fd = os.open(self._file(name), flags | _SAFE, FILE_MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._refuse(name, stat.S_IFLNK) from None
            raise
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise self._refuse(name, mode)
        return fd

    def _ensure(self) -> None:
        """Create the directory (0755, ours) if missing; refuse one that is not trusted."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path) or ".", DIR_MODE, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.path, DIR_MODE)
                os.chmod(self.path, DIR_MODE)  # whatever the umask
            st = os.lstat(self.path)
        if stat.S_ISLNK(st.st_mode):
            raise Unsafe(self.path, "a symbolic link, refused: name the real directory")
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        if st.st_uid != os.geteuid():
            raise Unsafe(self.path, f"owned by uid {st.st_uid}, not by this daemon's user "
                                    f"(uid {os.geteuid()}), refused")
        if st.st_mode & 0o022:
            raise Unsafe(self.path, f"writable by group or others (mode "
                                    f"{stat.S_IMODE(st.st_mode):o}), refused: chmod go-w it")

    def write(self, name: str, text: str) -> None:
        """Write via a new temporary file and rename, so readers never see half a file.

        The rename would replace a planted link or FIFO harmlessly, but it is
        refused instead: someone put it there.
        """
        self._ensure()
        self._check_file(name)
        tmp = self._file(f".{name}.{os.getpid()}.{_token()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE, FILE_MODE)
        except FileExistsError:
            raise Unsafe(self.path, f"{os.path.basename(tmp)} is in the way, "
                                    "refused and left alone") from None
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), FILE_MODE)  # whatever the umask
                f.write(text)
            os.replace(tmp, self._file(name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def check(self) -> None:
        """Raise OSError with a plain message when the directory cannot be used or trusted."""
        self._ensure()
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "not writable")
        for name in FILES:
            self._check_file(name)

    def acquire(self, mode: str) -> int:
        """Take the run directory's lock for `mode` ("run" or "once"); returns the fd to keep.

        Raises Busy naming the holder, or OSError when the directory is unusable.
        The lock goes away with the process, however it ends.
        """
        self.check()
        fd = self._open(LOCK_FILE, os.O_RDWR | os.O_CREAT)
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
            fd = self._open(LOCK_FILE, os.O_RDONLY)
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
        """Remove the pid file if it is ours (unlink removes a link, never its target)."""
        if self.read_pid() == pid:
            os.unlink(self._file(PID_FILE))

    def read_pid(self) -> int | None:
        try:
            with os.fdopen(self._open(PID_FILE, os.O_RDONLY)) as f:
                text = f.read(64).strip()
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
        """Raises OSError when missing or refused (Unsafe), ValueError when corrupt."""
        with os.fdopen(self._open(STATE_FILE, os.O_RDONLY)) as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("peers"), list):
            raise ValueError("unexpected structure")
        return data


def _parse_holder(data: bytes) -> tuple[int | None, str] | None:
    words = data.decode("ascii", "replace").split()
    if len(words) != 2 or not words[0].isdigit():
        return None
    return int(words[0]), words[1]
