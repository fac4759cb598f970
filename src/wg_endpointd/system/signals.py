"""Signal handlers installed before anything else is imported or loaded.

procd may send SIGHUP (reload) or SIGTERM the instant after it starts the
daemon; without a handler Python's default action would kill it. Signals that
arrive before the daemon exists are remembered and handed to it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

HANDLED = (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
pending: list[int] = []


def _remember(signum: int, _frame: object = None) -> None:
    pending.append(signum)


def install_early() -> None:
    for signum in HANDLED:
        signal.signal(signum, _remember)


def hand_over(handler: Callable[[int, object], None]) -> None:
    """Route every handled signal to `handler`, replaying those that came early."""
    for signum in HANDLED:
        signal.signal(signum, handler)
    while pending:
        handler(pending.pop(0), None)
