"""ICMP echo as a ranking hint, through icmplib. Only this module imports icmplib."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ..core.errors import ProbeSetupError
from ..core.model import ProbeResult


class IcmpProber:
    """Pings many addresses at once and stops early once every group is settled.

    A group (one peer's candidates) is settled when all its addresses have
    answered or timed out, or when `grace` has passed since its first answer:
    a slow address is then no longer worth waiting for.
    """

    def __init__(self, privileged: bool = True, grace: float = 0.05) -> None:
        self._privileged = privileged
        self._grace = grace

    def probe(self, groups: Sequence[Sequence[str]], timeout: float) -> dict[str, ProbeResult]:
        """Raises ProbeSetupError when ICMP sockets cannot be opened."""
        addresses = list(dict.fromkeys(a for g in groups for a in g))
        if not addresses:
            return {}
        return asyncio.run(self._run(groups, addresses, timeout))

    async def _run(self, groups: Sequence[Sequence[str]], addresses: list[str],
                   timeout: float) -> dict[str, ProbeResult]:
        import icmplib  # imported late: only rounds that probe pay for it

        results: dict[str, ProbeResult] = {}
        first_answer: dict[int, float] = {}
        start = time.monotonic()

        async def one(address: str) -> None:
            try:
                host = await icmplib.async_ping(address, count=1, timeout=timeout,
                                                privileged=self._privileged)
            except icmplib.SocketPermissionError:
                raise
            except (icmplib.ICMPLibError, OSError):
                results[address] = ProbeResult(address)
                return
            results[address] = ProbeResult(address, host.avg_rtt if host.is_alive else None)

        tasks = {asyncio.ensure_future(one(a)): a for a in addresses}
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
        return {a: results.get(a, ProbeResult(a)) for a in addresses}

    def _settled(self, groups: Sequence[Sequence[str]], results: dict[str, ProbeResult],
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
    name = type(exc).__name__
    if name == "SocketPermissionError" or isinstance(exc, PermissionError):
        return ProbeSetupError("no permission for ICMP sockets (run as root or allow "
                               "unprivileged ping via net.ipv4.ping_group_range)")
    return ProbeSetupError(f"ICMP probing failed: {exc}")
