"""Probes that carry a firewall mark (SO_MARK, wg-quick full tunnels): the mark reaches the
socket before anything is sent, only for the groups that have one, with icmplib 3 (its
AsyncSocket) and with icmplib 2.1.1's socket API (Debian 12: no AsyncSocket)."""

from __future__ import annotations

import os
import socket
import time
from types import SimpleNamespace

import pytest

from wg_endpointd.core.errors import ProbeSetupError
from wg_endpointd.system.probe import SO_MARK, IcmpProber

A4, A6, B4 = "192.0.2.2", "2001:db8:1::2", "198.51.100.2"


class ICMPLibError(Exception):
    pass


class SocketPermissionError(ICMPLibError):
    pass


class TimeoutExceeded(ICMPLibError):
    pass


class Request:
    def __init__(self, destination, id, sequence):
        self.destination, self.id, self.sequence, self.time = destination, id, sequence, 0.0


class Reply:
    def __init__(self, source, id, sequence, sent):
        self.source, self.id, self.sequence, self.time = source, id, sequence, sent + 0.003

    def raise_for_status(self):
        pass


class RawLog:
    """Stands for the kernel socket under an icmplib socket: records setsockopt."""

    def __init__(self, events, fail_mark=False):
        self.events, self.fail_mark = events, fail_mark

    def setsockopt(self, level, option, value):
        if option == SO_MARK and self.fail_mark:
            raise PermissionError(1, "Operation not permitted")
        self.events.append(("setsockopt", level, option, value))

    def setblocking(self, flag):
        pass


class Raw(socket.socket):
    """icmplib 2's kernel socket: one end of a real datagram pair, so that the event loop
    can wait on it; records setsockopt; every datagram reads as if from A4."""

    def __init__(self, fd, log):
        super().__init__(fileno=fd)
        self.log = log

    def setsockopt(self, level, option, value):
        self.log.setsockopt(level, option, value)

    def recvfrom(self, size, flags=0):  # what loop.sock_recvfrom calls
        data, _ = super().recvfrom(size, flags)
        return data, (A4, 0)


def fake_icmplib(alive, fail_mark=False, v2=False):
    """A module that looks like icmplib 3 (or 2.1.1 with v2=True: no AsyncSocket, replies
    read off the socket); the addresses in `alive` answer. Returns (module, sockets)."""
    opened = []

    class ICMPSocket:
        def __init__(self, address=None, privileged=True):
            self.events, self.closed, self.reply = [], False, None
            log = RawLog(self.events, fail_mark)
            if v2:  # icmplib 2 has only the private name
                near, self.far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock = Raw(near.detach(), log)
            else:
                self.sock = log
            opened.append(self)

        def send(self, request):
            request.time = time.time()
            self.events.append(("send", request.destination))
            if request.destination not in alive:
                return
            if v2:
                self.far.send(b"noise")  # another request's reply: skipped
                self.far.send(f"{request.id}".encode())
            else:
                self.reply = Reply(request.destination, request.id, 0, request.time)

        def _parse_reply(self, packet, source, current_time):
            reply = Reply(source, -1 if packet == b"noise" else int(packet), 0, current_time)
            reply.time = current_time
            return reply

        def close(self):
            self.closed = True
            if v2:
                self._sock.close()
                self.far.close()

    class AsyncSocket:
        def __init__(self, sock):
            self.sock = sock

        def send(self, request):
            self.sock.send(request)

        async def receive(self, request, timeout):
            if self.sock.reply is None:
                raise TimeoutExceeded(timeout)
            return self.sock.reply

    module = SimpleNamespace(ICMPv4Socket=ICMPSocket, ICMPv6Socket=ICMPSocket, ICMPRequest=Request,
                             ICMPLibError=ICMPLibError, SocketPermissionError=SocketPermissionError)
    if not v2:
        module.AsyncSocket = AsyncSocket
    return module, opened


def marks_of(opened):
    return {next(e[1] for e in s.events if e[0] == "send"):
            [e[3] for e in s.events if e[0] == "setsockopt" and e[2] == SO_MARK] for s in opened}


@pytest.mark.parametrize("v2", [False, True], ids=["icmplib3", "icmplib2"])
def test_mark_is_set_on_the_socket_before_the_probe_goes_out(v2):
    icmp, opened = fake_icmplib({A4, A6}, v2=v2)
    out = IcmpProber(icmp=icmp).probe([[A4, A6], [B4]], 0.2, marks=[51820, 0])
    assert marks_of(opened) == {A4: [51820], A6: [51820], B4: []}
    for sock in opened:
        kinds = [e[0] for e in sock.events]
        if "setsockopt" in kinds:
            assert kinds.index("setsockopt") < kinds.index("send")
        assert sock.closed
    assert out[A4].answered and out[A6].answered and not out[B4].answered


def test_no_marks_no_setsockopt():
    icmp, opened = fake_icmplib({A4})
    assert IcmpProber(icmp=icmp).probe([[A4], [B4]], 0.1)[A4].answered
    icmp, more = fake_icmplib({A4})
    IcmpProber(icmp=icmp).probe([[A4]], 0.1, marks=[0])
    assert all(e[0] != "setsockopt" for s in opened + more for e in s.events)


def test_one_address_under_two_marks_is_probed_with_each():
    icmp, opened = fake_icmplib({A4})
    out = IcmpProber(icmp=icmp).probe([[A4], [A4]], 0.1, marks=[51820, 0])
    assert sorted(str(marks_of([s])[A4]) for s in opened) == ["[51820]", "[]"]
    assert list(out) == [A4] and out[A4].answered


def test_a_mark_that_cannot_be_set_sends_nothing_and_says_why():
    icmp, opened = fake_icmplib({A4}, fail_mark=True)
    with pytest.raises(ProbeSetupError, match="CAP_NET_ADMIN"):
        IcmpProber(icmp=icmp).probe([[A4]], 0.1, marks=[51820])
    assert all(e[0] != "send" for s in opened for e in s.events) and opened[0].closed


def test_icmplib2_silent_address_times_out():
    icmp, opened = fake_icmplib(set(), v2=True)
    start = time.monotonic()
    out = IcmpProber(icmp=icmp).probe([[A4]], 0.1, marks=[7])
    assert not out[A4].answered and time.monotonic() - start < 1.0
    assert marks_of(opened) == {A4: [7]}


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets and SO_MARK need root")
def test_real_marked_ping_to_loopback():
    out = IcmpProber().probe([["127.0.0.1", "::1"]], 1.0, marks=[51820])
    assert out["127.0.0.1"].answered and out["::1"].answered
