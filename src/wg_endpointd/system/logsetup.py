"""Process set-up shared by the command line and the daemon: log handlers, and no TLS.

Under systemd, when `$JOURNAL_STREAM` names stderr's file (systemd.exec(5): the
"DEVICE:INODE" of a stream connected to journald), every line goes to stderr with
the `<N>` syslog prefix journald reads (sd-daemon.h: SD_ERR "<3>", SD_WARNING
"<4>", SD_INFO "<6>", SD_DEBUG "<7>") and no level name: journald stores the
priority and adds the time itself.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

# sd-daemon.h's priorities by logging level, highest first; below info: SD_DEBUG.
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
              (logging.INFO, 6))


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def priority(levelno: int) -> int:
    """The syslog priority journald gets for a logging level."""
    return next((prio for floor, prio in PRIORITIES if levelno >= floor), 7)


def journal_stream(stream: TextIO | None = None,
                   environ: Mapping[str, str] | None = None) -> bool:
    """True when `$JOURNAL_STREAM` names `stream`'s file (default stderr)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((sys.stderr if stream is None else stream).fileno())
    except (OSError, ValueError, AttributeError):  # closed, or no file (a test's capture)
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class JournalFormatter(logging.Formatter):
    """`<N>` before every line of a record, its traceback's too."""

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def stderr_line(text: str, level: int = logging.ERROR) -> None:
    """A line printed outside logging ("wg-endpointd: error: ..."), prefixed for journald."""
    prefix = f"<{priority(level)}>" if journal_stream() else ""
    print(f"{prefix}{text}", file=sys.stderr)


def setup_logging(level: str, daemon: bool = False) -> None:
    """Log lines to stderr; for the daemon off a terminal, info and debug go to stdout.

    procd hands a service's stdout to logd at priority info and its stderr at
    err (procd service/instance.c, instance_stdio with LOG_INFO / LOG_ERR), so
    this split gives `logread` the right priority for every line. Under journald
    (`$JOURNAL_STREAM`, any command) every line goes to stderr with its priority.
    """
    fmt = logging.Formatter("%(levelname)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if journal_stream():
        fmt = JournalFormatter()
    elif daemon and not sys.stderr.isatty():
        low = logging.StreamHandler(sys.stdout)
        low.addFilter(_Below(logging.WARNING))
        handlers[0].setLevel(logging.WARNING)
        handlers.append(low)
    for handler in handlers:
        handler.setFormatter(fmt)
    root = logging.getLogger("wg_endpointd")
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    root.propagate = False


def without_tls() -> None:
    """Keep asyncio (pulled in by icmplib) from loading OpenSSL: nothing here speaks TLS,
    and on a router that is megabytes of RAM. Only for processes that probe."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
