"""Round benchmark, part (c): 100 peers of 4 candidates each, every name resolving to the
same 4 addresses (3 dead), one router interface and 100 peer-side interfaces: round wall
time, peers verified, peak RSS.

Run as root from the repository root; part "many" of `python -m bench.round`:

    PYTHONPATH=src:. .venv/bin/python -m bench.many_peers

Writes build/bench-round.json (with this part only).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    DEAD,
    VERIFIED_RE,
    Part,
    cli_once,
    dns_records,
    fmt_s,
    run_parts,
    stats,
)
from bench.many_lab import ManyPeers
from tests.e2e.helpers import four_links
from tests.lab import Lab

OUTCOME_RE = re.compile(r"^\w+: (\S+): (healthy|switched|failed|error|would-switch) (\S+) \(")
REPS_MANY = 3
MANY = 100
MANY_BASE_PORT = 52000
TARGET_MANY_S = 3.0


def outcome_lines(stderr: str) -> list[tuple[str, str, str, str]]:
    """(label, status, endpoint, whole line) for each per-peer outcome line of `once`."""
    found = []
    for line in stderr.splitlines():
        m = OUTCOME_RE.match(line)
        if m:
            found.append((m.group(1), m.group(2), m.group(3), line))
    return found


def peer_dump(lab: Lab, iface: str) -> dict[str, list[str]]:
    """Router-side `wg show IF dump` peer lines by public key."""
    out = lab.router(["wg", "show", iface, "dump"], timeout=10).stdout
    return {f[0]: f for f in (line.split("\t") for line in out.splitlines()[1:]) if f[0]}


def _many_runs(lab: Lab, many: ManyPeers, confdir: str, stuck: Sequence[str],
               live: Callable[[int], Sequence[str]], reps: int) -> list[dict[str, Any]]:
    """`reps` rounds of `once` over all peers, each from peer i stuck on stuck[i] without a
    session; a peer counts as verified when wg shows it on one of live(i) with a handshake."""
    runs = []
    for rep in range(reps):
        many.reset_router_peers(stuck)
        dump = peer_dump(lab, many.router_if)
        stuck_count = sum(1 for i, k in enumerate(many.peer_public)
                          if dump[k][2] == stuck[i] and dump[k][4] == "0")
        run = cli_once(lab, confdir, timeout=120)
        dump = peer_dump(lab, many.router_if)
        on_live = [i for i, k in enumerate(many.peer_public)
                   if k in dump and dump[k][2] in live(i) and int(dump[k][4]) > 0]
        outcomes = outcome_lines(run.stderr)
        statuses: dict[str, int] = {}
        for _, status, _, _ in outcomes:
            statuses[status] = statuses.get(status, 0) + 1
        verified_in = [float(m.group(1)) for m in VERIFIED_RE.finditer(run.stderr)]
        other = [line for line in run.stderr.splitlines() if not OUTCOME_RE.match(line)]
        entry: dict[str, Any] = {
            "rc": run.rc, "wall_s": run.wall_s, "maxrss_kb": run.maxrss_kb,
            "stuck_before": stuck_count, "statuses": statuses,
            "engine_verified": statuses.get("switched", 0) + statuses.get("healthy", 0),
            "wg_verified_on_live": len(on_live),
            "engine_verified_in": stats(verified_in),
            "other_log_lines": other[:40],
            "outcome_sample": [o[3] for o in outcomes[:3]],
            "not_ok": [o[3] for o in outcomes if o[1] not in ("switched", "healthy")][:20],
        }
        if rep == 0:  # the tunnels carry traffic, through each peer's own interface
            entry["tunnel_pings"] = {
                many.peer_tunnel_ip(i): lab.router(
                    ["ping", "-6", "-n", "-q", "-c", "1", "-W", "2",
                     many.peer_tunnel_ip(i)], timeout=10, check=False).returncode == 0
                for i in (0, many.count // 2, many.count - 1)}
        runs.append(entry)
        vi = entry["engine_verified_in"]
        print(f"  [{rep + 1}/{reps}] wall {run.wall_s:.3f} s, rc {run.rc}, "
              f"engine ok {entry['engine_verified']}/{many.count}, on live endpoint with "
              f"handshake {len(on_live)}/{many.count}, maxrss {run.maxrss_kb / 1024:.1f} MiB"
              + (f", verified-in max {vi['max']:.2f} s" if vi["n"] else ""), flush=True)
    return runs


def closed(result: dict[str, Any], many: ManyPeers) -> None:
    """Stop the peer side, noting what could not be removed."""
    result["cleanup_problems"] = many.close()
    result["many_leftovers"] = many.leftovers()


def finished(result: dict[str, Any], lab: Lab, many: ManyPeers) -> dict[str, Any]:
    """After the lab closed: what it and the peer side left behind."""
    result["leftovers"] = lab.leftovers() + many.leftovers()
    result["close_errors"] = lab.close_errors
    return result


def bench_many() -> dict[str, Any]:
    """(c): 100 peers whose names all resolve to the same 4 addresses (3 dead)."""
    result: dict[str, Any] = {"peers": MANY, "runs": [], "target_s": TARGET_MANY_S, "title": (
        f"(c) {MANY} peers x 4 candidates (3 dead), one router interface, "
        f"{MANY} peer-side wireguard-go")}
    with Lab() as lab:
        many = ManyPeers(lab, MANY, MANY_BASE_PORT)
        try:
            links = four_links(lab)
            t = time.perf_counter()
            many.start()
            result["setup_s"] = time.perf_counter() - t
            lab.set_dns({f"peer{i}.wg.test": dns_records(links) for i in range(MANY)})
            for n in DEAD:
                lab.block(links[n], "all")
            confdir = many.uci(Path(lab.tmpdir))
            print(f"  set up {MANY} peers in {result['setup_s']:.1f} s", flush=True)
            result["runs"] = _many_runs(
                lab, many, confdir, [links["v6a"].endpoint(many.port(i)) for i in range(MANY)],
                lambda i: [links["v4a"].endpoint(many.port(i))], REPS_MANY)
        finally:
            closed(result, many)
    return finished(result, lab, many)


def report_many(res: dict[str, Any]) -> list[str]:
    runs = res["runs"]
    wall = stats([r["wall_s"] for r in runs])
    rss = stats([r["maxrss_kb"] / 1024 for r in runs])
    target = res["target_s"]
    res["summary"] = {"wall_s": wall, "maxrss_mib": rss,
                      "target_s": target,
                      "meets_target": bool(wall["n"]) and wall["median"] <= target,
                      "all_verified": bool(runs) and all(
                          r["engine_verified"] == MANY and r["wg_verified_on_live"] == MANY
                          for r in runs)}
    lines = [
        res["title"],
        f"    setup: {res.get('setup_s', float('nan')):.1f} s",
        f"    `once` wall: {fmt_s(wall)}  target <= {target:g} s: "
        f"{'met' if res['summary']['meets_target'] else 'NOT MET'}",
    ]
    for i, r in enumerate(runs):
        vi = r["engine_verified_in"]
        lines.append(
            f"    run {i + 1}: rc {r['rc']}, stuck before {r['stuck_before']}/{MANY}, "
            f"engine ok {r['engine_verified']}/{MANY} {r['statuses']}, "
            f"wg shows live endpoint + handshake {r['wg_verified_on_live']}/{MANY}"
            + (f", 'verified in' median {vi['median']:.2f} s max {vi['max']:.2f} s"
               if vi["n"] else ""))
    lines.append(f"    peak RSS of the CLI process: {fmt_s(rss, 'MiB', digits=1)}")
    if runs and runs[0].get("tunnel_pings"):
        lines.append("    ping through tunnel after run 1: " + ", ".join(
            f"{a} {'ok' if ok else 'FAILED'}" for a, ok in runs[0]["tunnel_pings"].items()))
    odd = [r for r in runs if r["not_ok"] or r["other_log_lines"]]
    if odd:
        lines.append("    log lines other than ok outcomes (first run that had any):")
        lines += [f"      {line}" for line in (odd[0]["other_log_lines"] + odd[0]["not_ok"])[:30]]
    if runs and runs[0]["outcome_sample"]:
        lines.append(f"    sample outcome: {runs[0]['outcome_sample'][0]}")
    return lines


PART: Part = (f"(c) {MANY} peers", bench_many, report_many)


def main(argv: list[str] | None = None) -> int:
    return run_parts({"many": PART}, argv)


if __name__ == "__main__":
    sys.exit(main())
