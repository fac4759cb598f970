"""The rtnetlink listener (system/netlink.py): bursts, overflow and stop, on a fake socket
fed with crafted datagrams; then the real kernel's socket and dump (no privileges needed)."""

from __future__ import annotations

import collections
import errno
import socket
import threading
import time

import pytest

from tests import netlink_bytes as nb
from wg_endpointd.core import netevents as ne
from wg_endpointd.system import netlink
from wg_endpointd.system.netlink import Listener

SEED = [nb.link(1, "lo", nb.UP | ne.IFF_LOOPBACK) + nb.link(2, "eth0", nb.UP)
        + nb.link(4, "wg0", nb.UP) + nb.route("192.0.2.1", 2) + nb.done(3)]


class FakeSocket:
    """Datagrams (or an OSError to raise) handed to recv in order; readable for select
    through a socketpair, one byte per item."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self.items: collections.deque[bytes | OSError] = collections.deque()
        self.recvs = 0
        self.closed = False
        self.lock = threading.Lock()

    def push(self, *items: bytes | OSError) -> None:
        with self.lock:
            self.items.extend(items)
        self._w.send(b"x" * len(items))

    def fileno(self) -> int:
        return self._r.fileno()

    def recv(self, size: int, /) -> bytes:
        self.recvs += 1
        with self.lock:
            if not self.items:
                raise BlockingIOError
            item = self.items.popleft()
        self._r.recv(1)
        if isinstance(item, OSError):
            raise item
        return item[:size]

    def close(self) -> None:
        self.closed = True
        self._r.close()
        self._w.close()


class Harness:
    def __init__(self, ignore: frozenset[str] = frozenset({"wg0"}), **kw: float) -> None:
        self.sock = FakeSocket()
        self.calls: list[tuple[float, str]] = []
        self.dumps = 0
        self.got = threading.Event()
        self.ignore = ignore

        def dump() -> list[bytes]:
            self.dumps += 1
            return SEED

        def on_change(reason: str) -> None:
            self.calls.append((time.monotonic(), reason))
            self.got.set()

        self.listener = Listener(on_change, lambda: self.ignore, open_socket=lambda: self.sock,
                                 dump=dump, **kw)
        self.listener.start()

    def wait_calls(self, n: int, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.calls) >= n, self.calls


@pytest.fixture
def harness():
    made: list[Harness] = []

    def make(**kw) -> Harness:
        made.append(Harness(**kw))
        return made[-1]

    yield make
    for h in made:
        h.listener.stop()
        assert h.listener._thread is not None and not h.listener._thread.is_alive()


def test_a_burst_is_one_call_after_the_quiet_time(harness):
    h = harness(quiet=0.2, most=0.5)
    start = time.monotonic()
    h.sock.push(nb.route("192.0.2.1", 2, new=False),
                nb.addr(2, "192.0.2.2", 24, new=False) + nb.addr(2, "192.0.2.3", 24),
                nb.route("192.0.2.9", 2))
    h.wait_calls(1)
    time.sleep(0.3)
    assert len(h.calls) == 1
    when, reason = h.calls[0]
    assert 0.18 <= when - start < 0.45
    assert reason == "default route via 192.0.2.1 on eth0 removed (and 3 more changes)"
    assert h.dumps == 1


def test_a_long_burst_is_cut_at_most_after_its_first_message(harness):
    h = harness(quiet=0.2, most=0.5)
    start = time.monotonic()
    for k in range(10):  # a change every 0.1 s for 1 s: never 0.2 s of quiet
        h.sock.push(nb.addr(2, f"2001:db8::{k + 1:x}", 64))
        time.sleep(0.1)
    h.wait_calls(2)
    first = h.calls[0][0] - start
    assert 0.45 <= first < 0.8, first
    assert h.calls[0][1].startswith("address 2001:db8::1/64 on eth0 added (and ")


def test_messages_that_change_nothing_never_call(harness):
    h = harness(quiet=0.05, most=0.1)
    h.sock.push(nb.route("192.0.2.1", 2),  # the seeded route told again
                nb.route("192.0.2.1", 4, priority=7),  # through wg0
                nb.route("192.0.2.1", 2, dst="203.0.113.0", dst_len=24),
                nb.route("192.0.2.1", 2, priority=9, protocol=186),
                nb.addr(2, "fe80::1", 64, scope=ne.RT_SCOPE_LINK),
                nb.link(2, "eth0", nb.UP), nb.link(4, "wg0", 0),
                nb.nlmsg(99, b"junk"))
    time.sleep(0.4)
    assert h.calls == [] and not h.sock.items  # all read, none relevant


def test_the_ignore_set_is_asked_again(harness):
    h = harness(quiet=0.05, most=0.1)
    h.sock.push(nb.route("198.51.100.1", 4, priority=5))
    time.sleep(0.3)
    assert h.calls == []
    h.ignore = frozenset()  # a reload dropped wg0
    h.sock.push(nb.route("198.51.100.1", 4, priority=5, new=False))
    h.wait_calls(1)
    assert h.calls[0][1] == "default route via 198.51.100.1 on wg0 removed"


def test_an_overflow_is_a_change_and_reads_the_picture_again(harness):
    h = harness(quiet=0.05, most=0.1)
    h.sock.push(OSError(errno.ENOBUFS, "No buffer space available"))
    h.wait_calls(1)
    assert h.calls[0][1] == netlink.OVERFLOW
    assert h.dumps == 2


def _switches(thread: threading.Thread) -> int:
    """How often the kernel scheduled the thread (each wake-up is a context switch)."""
    with open(f"/proc/self/task/{thread.native_id}/status") as f:
        fields = dict(line.split(":", 1) for line in f if "ctxt_switches" in line)
    return sum(int(v) for v in fields.values())


def test_idle_means_no_wake_ups_no_reads_and_no_calls(harness):
    h = harness()
    time.sleep(0.1)
    thread = h.listener._thread
    assert thread is not None
    before, switches = h.sock.recvs, _switches(thread)
    time.sleep(1.0)
    assert h.sock.recvs == before and h.calls == []
    assert _switches(thread) == switches  # asleep in select all along


def test_a_faulty_callback_does_not_end_the_listener(harness):
    h = harness(quiet=0.05, most=0.1)
    seen = []

    def boom(reason: str) -> None:
        seen.append(reason)
        raise RuntimeError("callback bug")

    h.listener.on_change = boom
    h.sock.push(nb.route("192.0.2.1", 2, new=False))
    time.sleep(0.3)
    h.sock.push(nb.route("192.0.2.1", 2))
    time.sleep(0.3)
    assert len(seen) == 2 and h.listener.bursts == 2


def test_stop_ends_the_thread_drops_a_pending_burst_and_closes(harness):
    h = harness(quiet=1.0, most=2.0)
    h.sock.push(nb.route("192.0.2.1", 2, new=False))
    time.sleep(0.1)
    h.listener.stop()
    assert h.listener._thread is not None and not h.listener._thread.is_alive()
    assert h.sock.closed and h.calls == []


def test_a_failed_dump_leaves_an_empty_picture():
    calls: list[str] = []
    sock = FakeSocket()

    def dump() -> list[bytes]:
        raise OSError(errno.EPERM, "denied")

    listener = Listener(calls.append, open_socket=lambda: sock, dump=dump, quiet=0.05,
                        most=0.1)
    listener.start()
    try:
        sock.push(nb.route("192.0.2.1", 2))
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == ["default route via 192.0.2.1 on ifindex 2 added"]
    finally:
        listener.stop()


def test_the_real_socket_and_dump():
    """Joining the groups and dumping need no privileges; the dump names loopback."""
    sock = netlink.open_socket()
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 200_000
        assert sock.getsockname()[1] == ne.GROUPS
        with pytest.raises(BlockingIOError):
            sock.recv(netlink.READ)
    finally:
        sock.close()
    msgs = [m for data in netlink.dump() for m in ne.decode(data)]
    assert any(isinstance(m, ne.Link) and m.loopback and m.name == "lo" for m in msgs)
    assert any(isinstance(m, ne.Addr) and m.address == "127.0.0.1" for m in msgs)
    assert any(isinstance(m, ne.Route) for m in msgs)
