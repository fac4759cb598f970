"""Repairs that run beside the daemon's loop, so that no peer can hold up another.

A repair (a round for some peers, or one peer's failback) may wait seconds for WireGuard
to show a handshake; while it does, the loop keeps serving events, liveness checks and
signals. Each repair runs through `spawn` (a thread in the daemon, at once in tests) and
hands its outcomes back through a queue: an early one as soon as a peer verified, the
rest when the repair ends. `notify` wakes the loop. Only the loop applies outcomes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable

from ..core.outcome import Outcome, PeerId, peer_id

log = logging.getLogger("wg_endpointd.runtime.daemon")

Work = Callable[[Callable[[Outcome], None]], list[Outcome]]


@dataclasses.dataclass
class Finished:
    kind: str  # "full", "repair" or "failback"
    peers: frozenset[PeerId]
    outcomes: list[Outcome]
    early: frozenset[PeerId] = frozenset()  # peers whose outcome was handed back early
    failed: bool = False  # the work raised: its peers are free again, nothing changed


def run_now(fn: Callable[[], None]) -> None:
    fn()


def in_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="wg-endpointd-repair", daemon=True).start()


class Repairs:
    def __init__(self, spawn: Callable[[Callable[[], None]], None] = run_now,
                 notify: Callable[[], None] = lambda: None) -> None:
        self.spawn, self.notify = spawn, notify
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy: dict[PeerId, object] = {}  # peer -> the repair that holds it
        self._early: list[Outcome] = []
        self._done: list[Finished] = []
        self._running: dict[str, int] = {}  # kind -> repairs of that kind not ended

    def busy(self) -> set[PeerId]:
        with self._lock:
            return set(self._busy)

    def running(self) -> bool:
        with self._lock:
            return bool(self._busy)

    def start(self, kind: str, peers: Iterable[PeerId], work: Work) -> None:
        """Run `work` for `peers` (none of them busy) beside the loop."""
        ids, token = frozenset(peers), object()
        with self._lock:
            taken = ids & self._busy.keys()
            if taken:
                raise ValueError(f"already being repaired: {sorted(taken)}")
            self._busy.update(dict.fromkeys(ids, token))
            self._running[kind] = self._running.get(kind, 0) + 1
        handed: set[PeerId] = set()

        def release(ident: PeerId) -> None:
            if self._busy.get(ident) is token:
                del self._busy[ident]

        def early(out: Outcome) -> None:
            """The peer's part is over: its outcome goes to the loop, and the peer is
            free for the next check or event while the others' tries go on."""
            with self._lock:
                handed.add(peer_id(out.peer))
                self._early.append(out)
                release(peer_id(out.peer))
            self.notify()

        def body() -> None:
            failed, outcomes = False, []
            try:
                outcomes = work(early)
            except Exception:  # a runtime fault in one repair never ends the daemon
                log.exception("unexpected error in a repair; its peers are checked again")
                failed = True
            with self._lock:
                self._done.append(Finished(kind, ids, outcomes, frozenset(handed), failed))
                self._running[kind] -= 1
                for ident in ids:
                    release(ident)
                self._idle.notify_all()
            self.notify()

        self.spawn(body)

    def settled(self, kind: str) -> bool:
        """No repair of `kind` runs, and the loop took the outcomes of those that ended."""
        with self._lock:
            return not self._running.get(kind) and all(f.kind != kind for f in self._done)

    def take(self) -> tuple[list[Outcome], list[Finished]]:
        """Outcomes handed back early, and repairs that ended, since the last call."""
        with self._lock:
            early, done = self._early, self._done
            self._early, self._done = [], []
        return early, done

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no repair runs (at stop: each one restores what it changed)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._busy, timeout)
