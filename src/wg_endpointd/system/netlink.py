"""Network changes from the kernel's rtnetlink, for hosts without hotplug.

One `AF_NETLINK`/`NETLINK_ROUTE` socket joined to the link, IPv4/IPv6 address and
IPv4/IPv6 route groups, read by one daemon thread that sleeps in `select` while nothing
happens (no timer, no wake-up). What each message means is decided in core/netchange.py;
here a burst of relevant ones (a DHCP renewal sends several) becomes one call of
`on_change(reason)`: after the first, wait until `quiet` seconds pass without another, or
`most` seconds after the first, whichever comes first. A full receive buffer (ENOBUFS:
messages were lost) counts as a change, and the picture is read again from a dump.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Collection
from typing import Protocol

from ..core.netchange import NetWatch
from ..core.netevents import (
    GROUPS,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    decode,
    dump_request,
    messages,
)

log = logging.getLogger(__name__)
RCVBUF = 1 << 20  # bytes; the kernel doubles it for its bookkeeping
READ = 1 << 16  # one datagram; the kernel never sends more than a page or two
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # asm-generic/socket.h
OVERFLOW = "netlink messages were lost (receive buffer full); state read again"


class NetlinkSocket(Protocol):
    def fileno(self) -> int: ...

    def recv(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def open_socket(groups: int = GROUPS, rcvbuf: int = RCVBUF) -> socket.socket:
    """A non-blocking NETLINK_ROUTE socket joined to `groups`.

    Raises OSError (no AF_NETLINK, or not allowed)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        try:  # past net.core.rmem_max, with CAP_NET_ADMIN
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, groups))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def dump(timeout: float = 2.0, limit: int = 100_000) -> list[bytes]:
    """The kernel's links, addresses and routes now, as datagrams (on a socket of its own).

    Raises OSError (socket.timeout after `timeout` seconds without an answer)."""
    out: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        for seq, kind in enumerate((RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE), 1):
            sock.send(dump_request(kind, seq))
            for _ in range(limit):  # bounded: a dump ends with NLMSG_DONE
                data = sock.recv(READ)
                out.append(data)
                if any(t in (NLMSG_DONE, NLMSG_ERROR) and s == seq
                       for t, _f, s, _p in messages(data)):
                    break
    return out


class Listener:
    """Calls `on_change(reason)` once per burst of changes that can move a peer's path.

    `ignore()` names the interfaces whose changes never count (the managed WireGuard
    interfaces; asked at each message, so a reload may change them). `tables` are routing
    tables watched beside main. `open_socket`, `dump` and `clock` are the seams tests use.
    """

    def __init__(self, on_change: Callable[[str], None],
                 ignore: Callable[[], Collection[str]] = frozenset,
                 tables: Collection[int] = (),
                 open_socket: Callable[[], NetlinkSocket] = open_socket,
                 dump: Callable[[], list[bytes]] = dump,
                 clock: Callable[[], float] = time.monotonic,
                 quiet: float = 0.2, most: float = 0.5) -> None:
        self.on_change, self.ignore = on_change, ignore
        self.watch = NetWatch(tables)
        self._open, self._dump, self.clock = open_socket, dump, clock
        self.quiet, self.most = quiet, most
        self._sock: NetlinkSocket | None = None
        self._stop_r, self._stop_w = socket.socketpair()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.bursts = 0  # calls of on_change so far

    def start(self) -> None:
        """Join the groups now (raises OSError), then listen in a daemon thread."""
        self._sock = self._open()
        self._thread = threading.Thread(target=self._run, name="netlink", daemon=True)
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        """End the thread and close the sockets; a burst not yet reported is dropped."""
        self._stopping = True
        try:
            self._stop_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)
        for sock in (self._sock, self._stop_r, self._stop_w):
            if sock is not None:
                sock.close()

    def _seed(self) -> None:
        try:
            datagrams = self._dump()
        except OSError as exc:
            log.debug("netlink dump failed (%s); learning from changes only", exc)
            datagrams = []
        self.watch.seed(m for data in datagrams for m in decode(data))

    def _read(self, sock: NetlinkSocket) -> list[str]:
        """Every datagram waiting, as the reasons of the relevant messages in them."""
        reasons: list[str] = []
        for _ in range(10_000):  # bounded; the rest waits for the next select
            try:
                data = sock.recv(READ)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self._seed()
                reasons.append(OVERFLOW)
                continue
            if not data:
                break
            ignore = self.ignore()
            reasons += [r for m in decode(data) if (r := self.watch.feed(m, ignore))]
        return reasons

    def _report(self, reasons: list[str]) -> None:
        more = len(reasons) - 1
        reason = reasons[0] + (f" (and {more} more change{'s' * (more > 1)})" if more else "")
        self.bursts += 1
        try:
            self.on_change(reason)
        except Exception:  # the listener outlives a faulty callback
            log.exception("network change callback failed")

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        self._seed()
        pending: list[str] = []
        first = last = 0.0
        while not self._stopping:
            timeout = None  # nothing pending: sleep until the kernel says something
            if pending:
                timeout = min(last + self.quiet, first + self.most) - self.clock()
                if timeout <= 0:
                    self._report(pending)
                    pending = []
                    continue
            try:
                ready, _, _ = select.select([sock, self._stop_r], [], [], timeout)
                if self._stopping:
                    break
                new = self._read(sock) if sock in ready else []
            except (OSError, ValueError) as exc:  # closed under us, or a real fault
                if not self._stopping:
                    log.error("netlink listener stopped: %s", exc)
                break
            except Exception:  # a bug: the daemon goes on with its periodic checks
                log.exception("netlink listener stopped")
                break
            if new:
                last = self.clock()
                if not pending:
                    first = last
                pending += new
