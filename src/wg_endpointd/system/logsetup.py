"""Process set-up shared by the command line and the daemon: log handlers, and no TLS."""

from __future__ import annotations

import logging
import sys


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def setup_logging(level: str, daemon: bool = False) -> None:
    """Log lines to stderr; for the daemon off a terminal, info and debug go to stdout.

    procd hands a service's stdout to logd at priority info and its stderr at
    err (procd service/instance.c, instance_stdio with LOG_INFO / LOG_ERR), so
    this split gives `logread` the right priority for every line.
    """
    fmt = logging.Formatter("%(levelname)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if daemon and not sys.stderr.isatty():
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
