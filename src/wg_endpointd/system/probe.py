"""ICMP echo as a ranking hint, through icmplib. Only this module imports icmplib.

The sockets are built here from icmplib's ICMPv4Socket and ICMPv6Socket rather than through
`async_ping`, so that a probe can carry a firewall mark (SO_MARK): a wg-quick full tunnel
routes every unmarked packet into the tunnel (wireguard-tools src/wg-quick/linux.bash,
add_default), and a probe to a candidate must carry the interface's fwmark or it would
judge the path through the very tunnel it is testing. icmplib 3 reads the replies through
its AsyncSocket; icmplib 2.1.1 (Debian 12) has none, and they are read here off the socket.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from ..core.errors import ProbeSetupError
from ..core.model import ProbeResult
from .net import SO_MARK

K = TypeVar("K", bound=Hashable)
Target = tuple[str, int]  # (address, firewall mark; 0 for none)


class IcmpProber:
    """Pings many addresses at once and stops early once every group is settled.

    A group (one peer's candidates) is settled when all its addresses have
    answered or timed out, or when `grace` has passed since its first answer:
    a slow address is then no longer worth waiting for. `icmp` stands in for the
    icmplib module (tests); by default it is imported when a round first probes.
    """

    def __init__(self, privileged: bool = True, grace: float = 0.05,
                 icmp: Any | None = None) -> None:
        self._privileged = privileged
        self._grace = grace
        self._icmp = icmp
        # echo identifiers, one per request (raw sockets see every reply; next() is atomic);
        # os.urandom, not `secrets`, which loads OpenSSL (megabytes on a router)
        self._ids = itertools.count(int.from_bytes(os.urandom(2), "big"))

    def probe(self, groups: Sequence[Sequence[str]], timeout: float,
              marks: Sequence[int] = ()) -> dict[str, ProbeResult]:
        """Probe every address of every group; `marks[i]` is the firewall mark that group
        i's packets carry (0, or no entry: none). An address probed with several marks
        counts as answered when one probe was answered.

        Raises ProbeSetupError when ICMP sockets cannot be opened or marked."""
        keyed = [[(a, marks[i] if i < len(marks) else 0) for a in g]
                 for i, g in enumerate(groups)]
        targets = list(dict.fromkeys(t for g in keyed for t in g))
        if not targets:
            return {}
        found = asyncio.run(self._run(keyed, targets, timeout))
        out: dict[str, ProbeResult] = {}
        for (address, _), result in found.items():
            old = out.get(address)
            if old is None or (result.rtt_ms is not None and (
                    old.rtt_ms is None or result.rtt_ms < old.rtt_ms)):
                out[address] = result
        return out

    async def _run(self, groups: Sequence[Sequence[Target]], targets: list[Target],
                   timeout: float) -> dict[Target, ProbeResult]:
        if self._icmp is None:
            import icmplib  # imported late: only rounds that probe pay for it

            self._icmp = icmplib
        icmp = self._icmp
        results: dict[Target, ProbeResult] = {}
        first_answer: dict[int, float] = {}
        start = time.monotonic()

        async def one(target: Target) -> None:
            address, mark = target
            try:
                rtt = await self._echo(icmp, address, mark, timeout)
            except icmp.SocketPermissionError:
                raise
            except (icmp.ICMPLibError, OSError):
                rtt = None
            results[target] = ProbeResult(address, rtt)

        tasks = {asyncio.ensure_future(one(t)): t for t in targets}
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, timeout=0.01,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if exc is not None:
                        raise _setup_error(exc)
                now = time.monotonic()
                if now - start > timeout + 0.5 or self._settled(groups, results, first_answer, now):
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {t: results.get(t, ProbeResult(t[0])) for t in targets}

    async def _echo(self, icmp: Any, address: str, mark: int, timeout: float) -> float | None:
        """One echo request carrying `mark`: the round trip in ms, or None when no echo
        reply came within `timeout`. Raises icmplib's errors, and ProbeSetupError when the
        socket cannot be marked (an unmarked probe would go into the tunnel)."""
        kind = icmp.ICMPv6Socket if ":" in address else icmp.ICMPv4Socket
        sock = kind(privileged=self._privileged)
        try:
            raw = getattr(sock, "sock", None) or sock._sock  # icmplib 3 | 2
            if mark:
                try:
                    raw.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
                except OSError as exc:
                    raise ProbeSetupError(
                        f"cannot mark ICMP probes with fwmark {mark}: {exc.strerror or exc} "
                        "(SO_MARK needs CAP_NET_ADMIN)") from None
            request = icmp.ICMPRequest(destination=address, id=next(self._ids) & 0xFFFF,
                                       sequence=0)
            if hasattr(icmp, "AsyncSocket"):
                wrapped = icmp.AsyncSocket(sock)
                wrapped.send(request)
                reply = await wrapped.receive(request, timeout)
            else:
                raw.setblocking(False)
                sock.send(request)
                reply = await self._receive(sock, raw, request, timeout)
                if reply is None:
                    return None
            reply.raise_for_status()
            return float((reply.time - request.time) * 1000)
        finally:
            sock.close()

    async def _receive(self, sock: Any, raw: socket.socket, request: Any,
                       timeout: float) -> Any | None:
        """icmplib 2's reply to `request` on its non-blocking socket, or None at the timeout.
        Like its blocking `receive` (sockets.py): an unprivileged (datagram) socket on Linux
        gets no IP header, so the reply is padded to where the parser looks for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pad = b"" if self._privileged else b"\0" * sock._ICMP_HEADER_OFFSET
        while (left := deadline - loop.time()) > 0:
            try:
                packet, source = await asyncio.wait_for(loop.sock_recvfrom(raw, 1024), left)
            except TimeoutError:
                return None
            reply = sock._parse_reply(pad + packet, str(source[0]).split("%", 1)[0],
                                      time.time())
            if reply is not None and (reply.id, reply.sequence) == (request.id,
                                                                     request.sequence):
                return reply
        return None

    def _settled(self, groups: Sequence[Sequence[K]], results: dict[K, ProbeResult],
                 first_answer: dict[int, float], now: float) -> bool:
        settled = True
        for index, group in enumerate(groups):
            if all(a in results for a in group):
                continue
            if any(results[a].answered for a in group if a in results):
                first_answer.setdefault(index, now)
                if now - first_answer[index] >= self._grace:
                    continue
            settled = False
        return settled


def _setup_error(exc: BaseException) -> ProbeSetupError:
    if isinstance(exc, ProbeSetupError):
        return exc
    name = type(exc).__name__
    if name == "SocketPermissionError" or isinstance(exc, PermissionError):
        return ProbeSetupError("no permission for ICMP sockets (run as root or allow "
                               "unprivileged ping via net.ipv4.ping_group_range)")
    return ProbeSetupError(f"ICMP probing failed: {exc}")
