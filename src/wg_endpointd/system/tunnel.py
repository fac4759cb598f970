"""Test datagrams into tunnels, and the answers the far end's stack sends to them.

A datagram to port 9 of an address inside the tunnel makes a live peer answer: with
an ICMP port unreachable from that address when nothing listens there (an inner
reply), else by WireGuard's passive keepalive. The sockets ask for ICMP errors
(IP_RECVERR, IPV6_RECVERR): the kernel queues each one with the destination of the
datagram that caused it (ip(7), ipv6(7)), so an inner reply is told apart from the
user's own traffic in the tunnel, which the counters cannot do.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Callable

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
ORIGIN_ICMP, ORIGIN_ICMP6 = 2, 3  # linux/errqueue.h SO_EE_ORIGIN_*
Answers = dict[tuple[str, str], float]  # (interface, address) -> when it was seen


class TunnelSender:
    """Sends one small datagram through an interface to an address (True when it went
    out), keeping one socket per interface and family: the daemon sends a datagram per
    peer per cycle. A send that fails gets a fresh socket once (netifd may have
    re-created the interface the old one was bound to)."""

    LIMIT = 256  # sockets kept at most

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._socks: dict[tuple[str, int], socket.socket] = {}
        self._heard: Answers = {}
        self._clock = clock

    def __call__(self, iface: str, address: str, port: int = 9) -> bool:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for _ in range(3):
            try:
                sock = self._socket(iface, family)
                self._drain(iface, sock)  # answers before this datagram are older
                sock.sendto(b"\0", (address, port))
                return True
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    continue  # an earlier datagram's answer, reported once: send again
                self._drop(iface, family)
        return False

    def answers(self) -> Answers:
        """The addresses whose stacks answered a datagram since the last call, with the
        time each answer was first seen."""
        for (iface, _), sock in list(self._socks.items()):
            self._drain(iface, sock)
        heard, self._heard = self._heard, {}
        return heard

    def _drain(self, iface: str, sock: socket.socket) -> None:
        now = self._clock()
        for _ in range(64):  # bounded: the queue holds a few answers at most
            try:
                _, anc, _, addr = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except OSError:
                return  # empty (EAGAIN), or the socket went bad: the next send sees it
            for _level, _kind, data in anc:
                if len(data) < 16:
                    continue
                err, origin = struct.unpack_from("=IB", data)
                if err == errno.ECONNREFUSED and origin in (ORIGIN_ICMP, ORIGIN_ICMP6) \
                        and isinstance(addr, tuple):
                    self._heard.setdefault((iface, str(addr[0]).split("%")[0]), now)

    def _socket(self, iface: str, family: int) -> socket.socket:
        sock = self._socks.get((iface, family))
        if sock is None:
            if len(self._socks) >= self.LIMIT:
                self.close()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
                if family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            except OSError:
                sock.close()
                raise
            self._socks[(iface, family)] = sock
        return sock

    def _drop(self, iface: str, family: int) -> None:
        sock = self._socks.pop((iface, family), None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
