"""What the daemon tells systemd, and when (Type=notify; the messages are sdnotify.py's).

- READY=1 once the first round is done, whatever its outcome: it was started
  (`last_round` is set) and no round of kind "full" runs or waits to be collected.
  A slow resolver cannot keep systemd waiting: READY=1 goes at the latest
  READY_WAIT seconds after the start, saying the round still runs.
- RELOADING=1 and READY=1 around a SIGHUP reload (reload.py calls `reload_phase`);
  a reload before the first READY=1 says nothing, that READY=1 covers it.
- STATUS= when the peers' phases change, so `systemctl status` shows them.
- WATCHDOG=1 from the loop every half `WatchdogSec`: `after_step` returns how
  long the loop may sleep, so a hung loop stops the pings and systemd restarts it.
- STOPPING=1 at a stop, before the repairs beside the loop are waited for.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core import state as st
from ..core.outcome import peer_id
from ..system.sdnotify import Notifier

if TYPE_CHECKING:
    from .daemon import Daemon

READY_WAIT = 30.0  # seconds after the start; systemd's TimeoutStartSec is 90 s by default


def status_line(d: Daemon) -> str:
    """One line for `systemctl status`: the managed peers by phase."""
    peers = d.peers
    if not peers:
        return "no managed peers"
    phases = Counter(d.states[k].phase if (k := peer_id(p)) in d.states else st.UNKNOWN
                     for p in peers)
    order = (st.HEALTHY, st.FALLBACK, st.DOWN, st.UNKNOWN)
    parts = [f"{phases[name]} {name}" for name in order if phases[name]]
    return f"{len(peers)} managed peer(s): {', '.join(parts)}"


class Announcer:
    def __init__(self, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 ready_wait: float = READY_WAIT) -> None:
        self.notifier = notifier if notifier is not None else Notifier()
        self.clock = clock
        self.started = clock()
        self.ready_wait = ready_wait
        self.ready = False
        self.shown = ""  # the last STATUS= sent
        self.next_ping = self.started

    def after_step(self, d: Daemon) -> float:
        """After each pass of the loop: READY=1 when due, STATUS= on a change, WATCHDOG=1
        when due. Returns the longest the loop may sleep before the next ping."""
        if not self.notifier.enabled:
            return math.inf
        now = self.clock()
        if not self.ready:
            done = d.last_round is not None and d.repairs.settled("full")
            if done or now - self.started >= self.ready_wait:
                self.shown = status_line(d) if done else (
                    f"{status_line(d)}; the first round still runs after "
                    f"{self.ready_wait:g} s")
                self.ready = True
                self.notifier.ready(self.shown)
        elif (line := status_line(d)) != self.shown:
            self.shown = line
            self.notifier.status(line)
        wait = math.inf if self.ready else max(0.1, self.started + self.ready_wait - now)
        interval = self.notifier.watchdog_interval
        if interval is None:
            return wait
        if now >= self.next_ping:
            self.notifier.ping()
            self.next_ping = now + interval
        return min(wait, max(0.0, self.next_ping - now))

    def reload_phase(self, d: Daemon, done: bool) -> None:
        """Around a SIGHUP reload (reload.py): RELOADING=1 before, READY=1 after."""
        if not self.ready:
            return
        if not done:
            self.notifier.reloading("reloading the configuration")
            return
        self.shown = status_line(d)
        self.notifier.ready(self.shown)

    def stopping(self) -> None:
        self.notifier.stopping("stopping")
