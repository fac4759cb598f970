"""Silent path death in the lab, default settings: from the moment the path starts dropping
everything (no event) to WireGuard showing a handshake on the other endpoint.

    PYTHONPATH=src:. .venv/bin/python -m bench.silent [--reps 5] [--log]

Two kinds of peer: one whose tunnel address answers test datagrams (an ICMP error), and
one whose firewall drops them, so it answers only with WireGuard's passive keepalive.
Two kinds of death: the path drops everything both ways, or only what goes to the peer
(its answers to datagrams it got before still arrive). One more case: a peer that shares
its interface with another one and carries a running ping when it dies (issue 17). The baseline, measured in the same
run and lab, is the one-way death announced by an interface event (the hotplug script):
what the daemon does when it is told. Each death falls at a random moment of the
daemon's cycle. Writes build/bench-silent.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tests.e2e import helpers as h
from tests.e2e.test_groups_traffic import pinging
from tests.lab import Lab

KINDS = ("at once, both ways", "at once, one way", "keepalive, both ways",
         "keepalive, one way", "at once, both ways, shared interface, ping running",
         "event (baseline)")


def healthy(run_dir: Path) -> bool:
    peers = json.loads((run_dir / "state.json").read_text())["peers"]
    return bool(peers) and all(p["phase"] == "healthy" for p in peers)


def one(kind: str, show_log: bool) -> float:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links = h.four_links(lab)
        pair = lab.add_wg_pair(51820)
        lab.set_dns({h.NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
        lab.set_endpoint(pair, links["v6a"].endpoint())
        assert lab.ping_through_tunnel(pair)
        if kind.startswith("keepalive"):
            lab.answer_by_keepalive_only(pair)
        sections = h.peer_section(pair)
        if "shared interface" in kind:  # another peer of the same interface, alive
            other = lab.add_server(pair, "s0", "192.0.2.9", "192.0.2.10", 30,
                                   port=51830, allowed_ips_router=["198.51.100.200/32"],
                                   tunnel_ip="198.51.100.200")
            sections += (f"config wireguard_{pair.router_if}\n"
                         f"\toption public_key '{other.public}'\n"
                         f"\toption endpoint_host '192.0.2.10'\n"
                         f"\toption endpoint_port '51830'\n"
                         f"\tlist allowed_ips '198.51.100.200/32'\n\n")
        confdir = h.write_config(Path(tmp), [pair], sections)
        run_dir, log = Path(tmp) / "run", Path(tmp) / "daemon.log"
        ping = pinging(lab, pair.peer_tunnel_ip, 90) if "ping" in kind else nullcontext()
        with h.daemon(lab, confdir, run_dir, log), ping:
            h.wait_for(lambda: healthy(run_dir), 20, "healthy")
            time.sleep(random.uniform(12, 23))  # learned, then anywhere in an 11 s cycle
            lab.block(links["v6a"], "both" if kind.endswith("both ways") else "all")
            start = time.monotonic()
            if kind == "event (baseline)":
                h.hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")
            h.wait_for(lambda: h.endpoint(lab, pair) == links["v4a"].endpoint()
                     and int(lab.wg_dump(pair)[4]) > 0, 40, "switch", step=0.01)
            took = time.monotonic() - start
        if show_log:
            print(log.read_text())
    return took


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3), "max_s": round(max(values), 3),
            "runs_s": [round(v, 3) for v in values]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--log", action="store_true", help="print each run's daemon log")
    args = ap.parse_args()
    runs: dict[str, list[float]] = {k: [] for k in KINDS}
    for rep in range(args.reps):  # interleaved, so load drifts hit every kind alike
        for kind in KINDS:
            runs[kind].append(one(kind, args.log))
            print(f"  [{rep + 1}/{args.reps}] {kind}: {runs[kind][-1]:.2f} s", flush=True)
    result = {k: summary(v) for k, v in runs.items()}
    base = result["event (baseline)"]["median_s"]
    print("silent path death -> verified endpoint, default settings:")
    for kind in KINDS:
        r = result[kind]
        r["ratio_to_event"] = round(r["median_s"] / base, 1)
        print(f"  {kind:21} median {r['median_s']:6.2f} s (min {r['min_s']:.2f}, "
              f"max {r['max_s']:.2f}, n={r['n']}), {r['ratio_to_event']}x the event")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-silent.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
