"""Standby group benchmark in the lab: from the daemon detecting that the active server
died silently to traffic flowing through the standby (another server, its own key, the
same tunnel gateway address).

    PYTHONPATH=src:. .venv/bin/python -m bench.groups [--reps 5]

Writes build/bench-groups.json. Medians, because the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.helpers import SRC, daemon, wait_for
from tests.e2e.test_groups import holds, setup
from tests.lab import Lab

DETECTED = ("no answer to a test datagram", "no sign of life")  # the daemon's two verdicts
CHECK = """
import sys, time
from wg_endpointd.wg import Reset, WgClient
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
    args = ap.parse_args()
    results = [
        summary("standby check: re-created standby to handshake (wg set + wg show polls)",
                standby_check_times(max(args.reps, 5))),
        summary("detected death -> traffic on standby, preferred with 1 address, defaults",
                failover_times(args.reps, 1, verify_timeout="2")),
        summary("detected death -> traffic on standby, preferred with 2 addresses, defaults",
                failover_times(args.reps, 2, verify_timeout="2")),
    ]
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-groups.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
