"""The metrics file: Prometheus's text exposition format (version 0.0.4), rendered from
values. Pure.

Format (prometheus/docs content/docs/instrumenting/exposition_formats.md): each family
once, its `# HELP` and `# TYPE` lines first, then its samples; in HELP text a backslash
and a newline are escaped, in a label value also a double quote. Names follow
Prometheus's conventions: base units (seconds), `_total` for counters, `_info` for
constant 1 gauges that carry text in labels, one state-set gauge per peer. `peer` is
the peer's public key; no other key is ever rendered.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .model import Endpoint
from .state import DOWN, FALLBACK, HEALTHY, UNKNOWN

PREFIX = "wg_endpointd_"
PHASES = (HEALTHY, FALLBACK, DOWN, UNKNOWN)
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's prometheus-node-exporter
FILE_NAME = "wg_endpointd.prom"

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # without PREFIX
    kind: str  # gauge or counter
    help: str
    samples: tuple[tuple[Labels, float], ...] = ()


def default_path(is_openwrt: bool, textfile_dir_exists: bool, run_dir: str) -> str:
    """Where the metrics go when `metrics_file` is not set: on OpenWrt the run directory
    (the lua collector reads it there), on a Linux host node_exporter's textfile
    directory when it exists; otherwise nowhere ("")."""
    if is_openwrt:
        return os.path.join(run_dir, FILE_NAME)
    return os.path.join(TEXTFILE_DIR, FILE_NAME) if textfile_dir_exists else ""


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def value_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(round(float(value), 6))


def render(families: Iterable[Family]) -> str:
    """The file's text; a family without samples is left out."""
    lines = []
    for fam in families:
        if not fam.samples:
            continue
        name = PREFIX + fam.name
        lines += [f"# HELP {name} {escape_help(fam.help)}", f"# TYPE {name} {fam.kind}"]
        for labels, value in fam.samples:
            inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            lines.append(f"{name}{{{inner}}} {value_text(value)}" if labels
                         else f"{name} {value_text(value)}")
    return "".join(f"{line}\n" for line in lines)


# -- what the daemon knows, as values --------------------------------------------------

@dataclass(frozen=True, slots=True)
class PeerFacts:
    interface: str
    public_key: str
    description: str
    phase: str
    endpoint: Endpoint | None = None
    verified_age: float | None = None  # seconds since WireGuard last proved the endpoint
    switches: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    last_switch: float | None = None  # wall clock
    verify_took: float | None = None  # the last verification's duration

    @property
    def labels(self) -> Labels:
        return (("interface", self.interface), ("peer", self.public_key))


@dataclass(frozen=True, slots=True)
class GroupFacts:
    name: str
    interface: str
    members: tuple[str, ...]
    active: str
    failovers: int = 0
    failbacks: int = 0


@dataclass(frozen=True, slots=True)
class DaemonFacts:
    version: str
    start: float  # wall clock
    rounds: int = 0
    last_round: float | None = None  # wall clock: when the last full round ended
    round_took: float | None = None
    processes: Mapping[str, int] = field(default_factory=dict)  # program -> started
    faults: int = 0
    up: bool = True


def _known(pairs: Iterable[tuple[Labels, float | None]]) -> tuple[tuple[Labels, float], ...]:
    return tuple((labels, value) for labels, value in pairs if value is not None)


def peer_families(peers: Sequence[PeerFacts]) -> list[Family]:
    def endpoint(p: PeerFacts) -> Labels:
        ep = p.endpoint
        assert ep is not None
        return (*p.labels, ("endpoint", str(ep)), ("family", f"ipv{ep.family}"))

    return [
        Family("peer_info", "gauge", "A managed peer; its description from the configuration.",
               tuple(((*p.labels, ("description", p.description)), 1.0) for p in peers)),
        Family("peer_state", "gauge", "The peer's phase: 1 for the current one, 0 for the others.",
               tuple(((*p.labels, ("state", s)), float(p.phase == s))
                     for p in peers for s in PHASES)),
        Family("peer_endpoint_info", "gauge", "The endpoint the peer is on.",
               tuple((endpoint(p), 1.0) for p in peers if p.endpoint is not None)),
        Family("peer_verified_age_seconds", "gauge",
               "Seconds since WireGuard last proved the peer's endpoint.",
               _known((p.labels, p.verified_age) for p in peers)),
        Family("peer_switches_total", "counter",
               "Endpoint changes of the peer since the daemon started, by reason.",
               tuple(((*p.labels, ("reason", r)), float(n))
                     for p in peers for r, n in p.switches.items())),
        Family("peer_last_switch_timestamp_seconds", "gauge",
               "When the peer's endpoint last changed (Unix time).",
               _known((p.labels, p.last_switch) for p in peers)),
        Family("peer_verification_duration_seconds", "gauge",
               "How long the peer's last verification through WireGuard took.",
               _known((p.labels, p.verify_took) for p in peers)),
    ]


def group_families(groups: Sequence[GroupFacts]) -> list[Family]:
    def labels(g: GroupFacts) -> Labels:
        return (("interface", g.interface), ("group", g.name))

    return [
        Family("group_active", "gauge",
               "1 for the member that holds the group's allowed IPs, 0 for the others.",
               tuple(((*labels(g), ("peer", k)), float(k == g.active))
                     for g in groups for k in g.members)),
        Family("group_failovers_total", "counter",
               "Moves of the group's allowed IPs away from a dead member.",
               tuple((labels(g), float(g.failovers)) for g in groups)),
        Family("group_failbacks_total", "counter",
               "Moves of the group's allowed IPs back to a preferred member.",
               tuple((labels(g), float(g.failbacks)) for g in groups)),
    ]


def daemon_families(d: DaemonFacts) -> list[Family]:
    version: Labels = (("version", d.version),)
    return [
        Family("up", "gauge", "1 while the daemon runs; 0 written as it stops.",
               (((), float(d.up)),)),
        Family("build_info", "gauge", "The daemon's version.", ((version, 1.0),)),
        Family("start_time_seconds", "gauge", "When the daemon started (Unix time).",
               (((), d.start),)),
        Family("rounds_total", "counter", "Full rounds (resolve, probe, repair) that ended.",
               (((), float(d.rounds)),)),
        Family("last_round_timestamp_seconds", "gauge",
               "When the last full round ended (Unix time).", _known([((), d.last_round)])),
        Family("last_round_duration_seconds", "gauge", "How long the last full round took.",
               _known([((), d.round_took)])),
        Family("processes_started_total", "counter",
               "Helper processes started (wg, ip...), by program.",
               tuple(((("program", name),), float(n)) for name, n in sorted(d.processes.items()))),
        Family("faults_total", "counter",
               "Faults that started: a peer's repair failing, `wg` failing, a peer missing.",
               (((), float(d.faults)),)),
    ]


def families(peers: Sequence[PeerFacts], groups: Sequence[GroupFacts],
             daemon: DaemonFacts) -> list[Family]:
    return [*daemon_families(daemon), *peer_families(peers), *group_families(groups)]
