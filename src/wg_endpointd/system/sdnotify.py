"""sd_notify(3) with the standard library: what the daemon tells systemd.

Follows systemd's src/libsystemd/sd-daemon/sd-daemon.c: `$NOTIFY_SOCKET` names an
AF_UNIX datagram socket, a path ("/run/systemd/notify") or, with a leading "@", a name
in the abstract namespace; a message is one datagram of newline-separated
`KEY=VALUE` lines. `$WATCHDOG_USEC` asks for `WATCHDOG=1` at least that often, and
when `$WATCHDOG_PID` is set only that process is asked (sd_watchdog_enabled).

The three variables are taken out of the environment when read (sd_notify's
unset_environment), so that no child (`wg`, `ip`, a hook) speaks for the daemon.
Without `$NOTIFY_SOCKET` every call does nothing. Sending never raises: a lost
datagram is logged once and the daemon goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

USEC_INFINITY = (1 << 64) - 1  # systemd's "not set"
SUN_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path) on Linux


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def parse_address(value: str) -> str | bytes | None:
    """The socket address `$NOTIFY_SOCKET` names, or None when it is not AF_UNIX.

    A leading "@" is the abstract namespace (a NUL byte in its place). systemd
    also accepts "vsock:..." for virtual machines; a daemon on a host never gets one.
    """
    if value.startswith("@") and len(value) > 1:
        raw = b"\0" + os.fsencode(value[1:])
        return raw if len(raw) <= SUN_PATH_MAX else None
    if value.startswith("/"):
        return value if len(os.fsencode(value)) < SUN_PATH_MAX else None  # and its NUL
    return None


def watchdog_usec(usec: str | None, pid: str | None, own_pid: int) -> int | None:
    """The watchdog period asked of this process, or None (sd_watchdog_enabled's rules)."""
    if usec is None or not usec.isdigit():
        return None
    value = int(usec)
    if value <= 0 or value >= USEC_INFINITY:
        return None
    if pid is not None and (not pid.isdigit() or int(pid) != own_pid):
        return None  # asked of another process (or garbled): not for us
    return value


class Notifier:
    """Sends sd_notify messages; a no-op without an address."""

    def __init__(self, address: str | bytes | None = None, watchdog: int | None = None,
                 clock_usec: Callable[[], int] = monotonic_usec) -> None:
        self.address = address
        self.watchdog = watchdog  # microseconds, as systemd gave it
        self.clock_usec = clock_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None,
                     pid: int | None = None) -> Notifier:
        """Read and remove NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID."""
        env = os.environ if environ is None else environ
        name = env.pop("NOTIFY_SOCKET", "")
        usec, wpid = env.pop("WATCHDOG_USEC", None), env.pop("WATCHDOG_PID", None)
        address = parse_address(name) if name else None
        if name and address is None:
            log.warning("NOTIFY_SOCKET=%s is not a Unix socket this daemon can use; "
                        "systemd will not hear from it", name)
        period = watchdog_usec(usec, wpid, os.getpid() if pid is None else pid)
        return cls(address, period if address is not None else None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two WATCHDOG=1: half the period, as sd_watchdog_enabled(3) advises."""
        return None if self.watchdog is None else self.watchdog / 2e6

    def send(self, *fields: str) -> bool:
        """Send one message of `fields` ("READY=1", "STATUS=..."); True when it went out."""
        if self.address is None or not fields:
            return False
        data = "\n".join(f.replace("\n", " ") for f in fields).encode() + b"\n"
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot tell systemd %s: %s", fields[0], exc.strerror or exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *_status(status))

    def reloading(self, status: str = "") -> bool:
        # MONOTONIC_USEC lets Type=notify-reload (systemd 253) match the reload it asked
        # for; older systemd and Type=notify ignore it (sd_notify(3)).
        return self.send("RELOADING=1", f"MONOTONIC_USEC={self.clock_usec()}", *_status(status))

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *_status(status))

    def status(self, status: str) -> bool:
        return self.send(*_status(status))

    def ping(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str) -> tuple[str, ...]:
    return (f"STATUS={text}",) if text else ()
