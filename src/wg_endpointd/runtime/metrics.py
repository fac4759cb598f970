"""The metrics file (core/metrics.py renders it): where it goes, what it holds, when.

It is written whenever the state file's content changed and at least every
`check_interval` even when nothing did (renamed into place each time, so that
node_exporter's `node_textfile_mtime_seconds` shows a live daemon), and once more with
`wg_endpointd_up 0` as the daemon stops. Where: `metrics_file`, or when that is not set
the platform's default (core/metrics.py `default_path`), found again at each reload.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .. import __version__
from ..core import events as ev
from ..core import metrics as mx
from ..core.options import Settings
from ..core.outcome import peer_id
from ..core.state import PeerState
from ..system import proc
from ..system.metricsfile import MetricsFile

if TYPE_CHECKING:
    from .daemon import Daemon

OPENWRT_RELEASE = "/etc/openwrt_release"
EPS = 0.05  # seconds: a deadline this close to one of the loop's own wake-ups goes with it


def host_facts() -> tuple[bool, bool]:
    """(this is OpenWrt, node_exporter's textfile directory exists)."""
    return os.path.exists(OPENWRT_RELEASE), os.path.isdir(mx.TEXTFILE_DIR)


def resolve(setting: str | None, run_dir: str, facts: tuple[bool, bool]) -> str:
    """The file to write: the setting ("" turns the file off), else the default."""
    return mx.default_path(*facts, run_dir) if setting is None else setting


class Metrics:
    def __init__(self, processes: Callable[[], Mapping[str, int]] = proc.started,
                 out: MetricsFile | None = None) -> None:
        self.processes = processes
        # what the default depends on: the daemon's start (service.serve) sets host_facts;
        # until then only an explicit `metrics_file` is written (tests never write to
        # the host's own directories)
        self.host: Callable[[], tuple[bool, bool]] = lambda: (False, False)
        self.out = out or MetricsFile()
        self.path = ""
        self.next_at = 0.0  # when the file is due again even if nothing changed
        self._settings: Settings | None = None
        self._forced = False  # the loop wakes up for the file alone
        self._realign = False  # it did: write again at its next look, and go with those

    def due(self, now: float) -> bool:
        """The file must be renamed into place again now."""
        return now >= self.next_at - EPS

    def deadline(self, next_look: float) -> float:
        """When the loop must wake up for the file, given its next look of its own: after
        one wake-up for the file alone, the file is written at the loop's next look too,
        and from then on goes with those (one each `check_interval` while peers are
        watched), so it costs no wake-up of its own."""
        self._forced = self.next_at < next_look - EPS
        return self.next_at if self._forced else max(self.next_at, next_look)

    def _fit(self, d: Daemon) -> None:
        s = d.cfg.settings
        if s is not self._settings:  # the start, or a reload
            self._settings = s
            self.path = resolve(s.metrics_file, d.run_dir.path, self.host())
            self.next_at = 0.0 if self.path else math.inf

    def write(self, d: Daemon, changed: bool) -> None:
        """Write the file if the state `changed` or the interval is up."""
        self._fit(d)
        now = d.clock()
        due = self.due(now)
        if not self.path or not (changed or due or self._realign):
            return
        self.out.write(self.path, self.text(d))
        self.next_at = now + d.cfg.settings.check_interval
        self._realign = due and self._forced

    def stop(self, d: Daemon) -> None:
        """The daemon stops: the last file says so."""
        self._fit(d)
        if self.path:
            self.out.write(self.path, self.text(d, up=False))

    def text(self, d: Daemon, up: bool = True) -> str:
        f, wall = d.fleet, d.wall()
        peers = []
        for p in d.peers:
            ident = peer_id(p)
            s = d.states.get(ident, PeerState())
            history = f.peers.get(ident, [])
            counts = {**dict.fromkeys(ev.SWITCH_REASONS, 0), **f.switches.get(ident, {})}
            last = ev.last_at(history, ev.SWITCH)
            if last is None and s.last_switch is not None:
                last = s.last_switch.at
            peers.append(mx.PeerFacts(
                p.interface, p.public_key, p.description, s.phase, s.endpoint,
                None if s.last_verified is None else max(0.0, wall - s.last_verified),
                counts, last, f.took.get(ident)))
        groups = [mx.GroupFacts(g.name, g.interface, g.members, d.groups.states[g.name].active
                                if g.name in d.groups.states else g.members[0],
                                f.failovers[g.name], f.failbacks[g.name])
                  for g in d.cfg.groups]
        rounds, at, took = f.round_facts()
        daemon = mx.DaemonFacts(__version__, f.started, rounds, at, took,
                                {"wg": 0, **self.processes()}, f.faults, up)
        return mx.render(mx.families(peers, groups, daemon))
