"""Writing the metrics file: a new temporary file in the same directory, then a rename,
so that node_exporter's textfile collector (or the lua collector on OpenWrt) reads a
whole file or the previous one. The temporary name ends in `.tmp`, which the textfile
collector does not read (prometheus/node_exporter collector/textfile.go reads `*.prom`).
A failure is logged once, and once more when writing works again."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable

log = logging.getLogger("wg_endpointd.runtime.daemon")

FILE_MODE = 0o644  # node_exporter usually runs as another user
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomic(path: str, text: str) -> None:
    """Replace `path` with `text` at once. Raises OSError; leaves no temporary file. What
    is not a regular file (a link, a device such as /dev/null) is refused and left alone."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        raise OSError(errno.EEXIST, "not a regular file, refused and left alone")
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, _FLAGS, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # whatever the umask
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class MetricsFile:
    def __init__(self, write: Callable[[str, str], None] = write_atomic) -> None:
        self._write = write
        self._error: tuple[str, str] | None = None

    def write(self, path: str, text: str) -> bool:
        """Write the file; False (logged when it starts failing) when it cannot be."""
        try:
            self._write(path, text)
        except OSError as exc:
            why = (path, exc.strerror or str(exc))
            if self._error != why:
                log.error("cannot write the metrics file %s: %s; still running", *why)
                self._error = why
            return False
        if self._error is not None:
            log.info("metrics file %s written again", path)
            self._error = None
        return True
