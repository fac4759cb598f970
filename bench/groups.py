"""Standby group benchmark in the lab: from the daemon detecting that the active server
died silently to traffic flowing through the standby (another server, its own key, the
same tunnel gateway address); with default settings and `persistent_keepalive 5`, the
active server's silent death (both ways, at a random moment of the cycle) to traffic on
the standby, idle (the baseline) and under a running ping; and the preferred server's
return to it carrying the traffic again (`failback_hold 5`).

    PYTHONPATH=src:. .venv/bin/python -m bench.groups [--reps 5]

Writes build/bench-groups.json. Medians, because the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tests.e2e.helpers import SRC, daemon, wait_for
from tests.e2e.test_groups import holds, setup
from tests.e2e.test_groups_traffic import keepalive, pinging
from tests.lab import Lab

DETECTED = ("no answer to a test datagram", "no sign of life")  # the daemon's two verdicts
CHECK = """
import sys, time
from wg_endpointd.system.wg import Reset, WgClient
wg, iface, key = WgClient(), sys.argv[1], sys.argv[2]
for _ in range(int(sys.argv[3])):
    peer = wg.show(iface).peers[key]
    start = time.monotonic()
    wg.reset(iface, [Reset(peer, peer.endpoint)])  # the daemon's standby check
    for _ in range(5000):
        if wg.show(iface).peers[key].latest_handshake > 0 or time.monotonic() - start > 5:
            break
    print(time.monotonic() - start)
    time.sleep(0.2)
"""


def standby_check_times(reps: int) -> list[float]:
    """Seconds from re-creating a standby peer (no allowed IPs) to its handshake."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        _, pair, standby, _, _ = setup(lab, Path(tmp))
        lab.router(["wg", "set", pair.router_if, "peer", standby.public, "allowed-ips", ""])
        out = lab.router([sys.executable, "-c", CHECK, pair.router_if, standby.public,
                          str(reps)], env={"PYTHONPATH": SRC}).stdout
    return [float(line) for line in out.split()]


def failover_times(reps: int, candidates: int, **opts: str) -> list[float]:
    """Seconds from the detection log line to the first ping answered through the standby."""
    times = []
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        (v6, v4), pair, standby, confdir, _ = setup(lab, Path(tmp), **opts)
        if candidates == 1:  # the preferred server has a single address
            net = Path(confdir, "network")
            net.write_text(net.read_text().replace("'vpn1.wg.test'", f"'{v4.peer_addr}'"))
        first = v4 if candidates == 1 else v6
        for i in range(reps):
            lab.unblock(v6)
            lab.unblock(v4)
            lab.reset_router_peer(pair, first.endpoint())  # a fresh session on a candidate
            run_dir, log = Path(tmp) / f"run{i}", Path(tmp) / f"daemon{i}.log"
            with daemon(lab, confdir, run_dir, log):
                wait_for(lambda: holds(lab, pair, pair.peer_public)
                         and lab.ping_through_tunnel(pair, timeout=1), 20, "preferred", step=0.2)
                time.sleep(1)
                lab.block(v6, "all")
                lab.block(v4, "all")
                wait_for(lambda lg=log: any(d in lg.read_text() for d in DETECTED), 20, "detection",
                         step=0.005)
                start = time.monotonic()
                wait_for(lambda: holds(lab, pair, standby.public)
                         and lab.ping_through_tunnel(pair, timeout=0.2), 15, "traffic",
                         step=0.005)
                times.append(time.monotonic() - start)
    return times


DEFAULTS = {"check_interval": "10", "dead_after": "30", "verify_timeout": "2"}


def _group_runs(reps: int, **opts: str) -> Iterator[tuple[Lab, Any, Any, Any, Any, Path]]:
    """`reps` fresh daemons, each started with the preferred server holding the allowed
    IPs (default settings, `persistent_keepalive 5`); yields (lab, v6, v4, pair, standby,
    log)."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        (v6, v4), pair, standby, confdir, _ = setup(lab, Path(tmp), **DEFAULTS, **opts)
        for i in range(reps):
            lab.unblock(v6)
            lab.unblock(v4)
            lab.reset_router_peer(pair, v6.endpoint())
            keepalive(lab, pair, standby)
            run_dir, log = Path(tmp) / f"run{i}", Path(tmp) / f"daemon{i}.log"
            with daemon(lab, confdir, run_dir, log):
                wait_for(lambda: holds(lab, pair, pair.peer_public), 20, "preferred", step=0.2)
                yield lab, v6, v4, pair, standby, log


def _both_dead(lab: Lab, v6: Any, v4: Any) -> float:
    lab.block(v6, "both")
    lab.block(v4, "both")
    return time.monotonic()


def _death(lab: Lab, v6: Any, v4: Any, pair: Any, standby: Any, traffic: bool) -> float:
    ping = pinging(lab, pair.peer_tunnel_ip, 90) if traffic else nullcontext()
    with ping:
        wait_for(lambda: lab.ping_through_tunnel(pair, timeout=1), 20, "traffic", step=0.2)
        time.sleep(random.uniform(12, 23))  # learned, then anywhere in a cycle
        start = _both_dead(lab, v6, v4)
        wait_for(lambda: holds(lab, pair, standby.public)
                 and lab.ping_through_tunnel(pair, timeout=0.2), 45, "standby", step=0.01)
        return time.monotonic() - start


def idle_cost(seconds: float) -> dict[str, object]:
    """Idle cost of one standby group (two servers on one interface), default settings:
    CPU, `wg` runs and wake-ups over `seconds` (bench.daemon's measure)."""
    from bench.daemon import _idle

    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        (v6, _), pair, standby, confdir, _ = setup(lab, Path(tmp), **DEFAULTS, log_level="debug")
        lab.set_endpoint(pair, v6.endpoint())
        keepalive(lab, pair, standby)
        return _idle(lab, confdir, Path(tmp), 2, seconds)


def death_times(reps: int, traffic: bool) -> list[float]:
    """Seconds from the active server's silent death (both ways) to a ping answered
    through the standby; `traffic`: a ping runs through the tunnel all along."""
    return [_death(*run[:5], traffic) for run in _group_runs(reps)]


def _failback(lab: Lab, v6: Any, v4: Any, pair: Any, standby: Any, hold: float = 5) -> float:
    _both_dead(lab, v6, v4)
    wait_for(lambda: holds(lab, pair, standby.public), 45, "failover", step=0.05)
    time.sleep(random.uniform(30, 45))  # its repairs back off meanwhile
    lab.unblock(v6)
    lab.unblock(v4)
    start = time.monotonic()
    wait_for(lambda: holds(lab, pair, pair.peer_public)
             and lab.ping_through_tunnel(pair, timeout=0.2), hold + 60, "failback", step=0.01)
    return time.monotonic() - start


def failback_times(reps: int, hold: int = 5) -> list[float]:
    """Seconds from the preferred server's return (dead for over 30 s) to a ping answered
    through it again, with `failback_hold` = `hold`."""
    return [_failback(*run[:5], hold=hold) for run in _group_runs(reps, hold=str(hold))]


def summary(name: str, times: list[float]) -> dict[str, object]:
    out = {"case": name, "n": len(times), "median_s": round(statistics.median(times), 3),
           "min_s": round(min(times), 3), "max_s": round(max(times), 3),
           "runs_s": [round(t, 3) for t in times]}
    print(f"{name}: median {out['median_s']} s (min {out['min_s']}, max {out['max_s']}, "
          f"n={len(times)})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only-issue17", action="store_true",
                    help="only the silent-death and failback cases")
    args = ap.parse_args()
    results = [
        summary("active server dies silently, idle tunnel (baseline) -> traffic on standby",
                death_times(args.reps, traffic=False)),
        summary("active server dies silently, ping running -> traffic on standby",
                death_times(args.reps, traffic=True)),
        summary("preferred server returns -> it carries the traffic again (hold 5 s)",
                failback_times(args.reps)),
    ]
    if args.only_issue17:
        Path("build").mkdir(exist_ok=True)
        Path("build/bench-groups.json").write_text(json.dumps(results, indent=1))
        return 0
    results += [
        summary("standby check: re-created standby to handshake (wg set + wg show polls)",
                standby_check_times(max(args.reps, 5))),
        summary("detected death -> traffic on standby, preferred with 1 address, defaults",
                failover_times(args.reps, 1, verify_timeout="2")),
        summary("detected death -> traffic on standby, preferred with 2 addresses, defaults",
                failover_times(args.reps, 2, verify_timeout="2")),
    ]
    cost = idle_cost(310)
    print(f"idle, one standby group, defaults: {cost['cpu_s_per_hour']} CPU-s/h, "
          f"{cost['wg_runs_per_hour']} wg runs/h, {cost['wakeups_per_min']} wake-ups/min, "
          f"{cost['peak_rss_mib']} MiB peak RSS")
    results.append({"case": "idle, one standby group", **cost})
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-groups.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
