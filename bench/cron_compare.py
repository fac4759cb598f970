"""Round benchmark, parts (a) and (b): one peer whose name gives [v6a, v6b, v4b, v4a], only
v4a alive (the others drop everything), router stuck on v6a without a session.

  a. wall time of `wg-endpointd once` (it returns after WireGuard verified the new
     endpoint) and the engine's own "verified in X s";
  b. the same lab and state fixed the widely copied cron way: resolve, `ping -c 3 -W 1`
     each address in resolver order, `wg set` the first that answers, send a packet, wait
     for a handshake.

The two alternate in one lab so that drift in machine load hits both alike. Run as root
from the repository root; part "single" of `python -m bench.round`:

    PYTHONPATH=src:. .venv/bin/python -m bench.cron_compare

Writes build/bench-round.json (with this part only).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DEAD,
    DNS_ORDER,
    VERIFIED_RE,
    Part,
    cli_once,
    dns_records,
    fmt_s,
    run_parts,
    stats,
)
from tests.e2e.helpers import NAME, four_links, peer_section, write_config
from tests.lab import Lab, WgPair

REPS_OURS = 7
REPS_BASELINE = 3


def one_ours(lab: Lab, pair: WgPair, confdir: str, live: str, dead: str) -> dict[str, Any]:
    lab.reset_router_peer(pair, dead)
    before = lab.wg_dump(pair)
    assert before[2] == dead and before[4] == "0", f"bad start state {before}"
    run = cli_once(lab, confdir)
    after = lab.wg_dump(pair)
    m = VERIFIED_RE.search(run.stderr)
    return {
        "rc": run.rc, "wall_s": run.wall_s, "maxrss_kb": run.maxrss_kb,
        "engine_verified_s": float(m.group(1)) if m else None,
        "endpoint_after": after[2], "handshake_after": int(after[4]),
        "verified": run.rc == 0 and after[2] == live and int(after[4]) > 0,
        "stderr": run.stderr.strip().splitlines(),
    }


def one_baseline(lab: Lab, pair: WgPair, name: str) -> dict[str, Any]:
    """The widely copied cron approach, step by step, in the router namespace."""
    lab.reset_router_peer(pair, lab.links[0].endpoint(pair.peer_port))
    start = time.perf_counter()
    res = lab.router(["getent", "ahosts", name], timeout=20, check=False)
    order = list(dict.fromkeys(line.split()[0] for line in res.stdout.splitlines()
                               if line.strip()))
    t_resolved = time.perf_counter()
    pings: list[dict[str, Any]] = []
    chosen = None
    for addr in order[:8]:  # bounded: at most 8 addresses, each ping bounded by its timeout
        t = time.perf_counter()
        r = lab.router(["ping", "-n", "-q", "-c", "3", "-W", "1", addr], timeout=15,
                       check=False)
        pings.append({"address": addr, "answered": r.returncode == 0,
                      "seconds": time.perf_counter() - t})
        if r.returncode == 0:
            chosen = addr
            break
    result: dict[str, Any] = {"resolver_order": order, "resolve_s": t_resolved - start,
                              "pings": pings, "chosen": chosen}
    if chosen is None:
        result.update(verified=False, wall_s=time.perf_counter() - start)
        return result
    ep = f"[{chosen}]:{pair.peer_port}" if ":" in chosen else f"{chosen}:{pair.peer_port}"
    lab.router(["wg", "set", pair.router_if, "peer", pair.peer_public, "endpoint", ep])
    # "Send a packet into the tunnel", then wait (5 s at most) for latest-handshake > 0.
    lab.router(["ping", "-n", "-q", "-c", "1", "-W", "1", pair.peer_tunnel_ip], timeout=10,
               check=False)
    deadline = time.monotonic() + 5
    handshake = 0
    for _ in range(250):  # bounded: 250 polls and 5 s
        out = lab.router(["wg", "show", pair.router_if, "latest-handshakes"], timeout=5).stdout
        for line in out.splitlines():
            key, _, value = line.partition("\t")
            if key == pair.peer_public:
                handshake = int(value or 0)
        if handshake > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    result.update(endpoint=ep, handshake=handshake, verified=handshake > 0,
                  wall_s=time.perf_counter() - start)
    return result


def bench_single() -> dict[str, Any]:
    with Lab() as lab:
        links = four_links(lab)
        pair = lab.add_wg_pair(51820)
        lab.set_dns({NAME: dns_records(links)})
        got = list(dict.fromkeys(line.split()[0] for line in lab.router(
            ["getent", "ahosts", NAME]).stdout.splitlines() if line.strip()))
        want = [links[n].peer_addr for n in DNS_ORDER]
        if got != want:
            print(f"  note: resolver order is {got}, not {want}", flush=True)
        for n in DEAD:
            lab.block(links[n], "all")
        confdir = write_config(Path(lab.tmpdir), [pair], peer_section(pair))
        live = links["v4a"].endpoint(pair.peer_port)
        dead = links["v6a"].endpoint(pair.peer_port)
        assert lab.links[0] is links["v6a"]
        # Interleaved so that drift in machine load hits both sides alike.
        schedule = ["ours", "ours", "base", "ours", "ours", "base", "ours", "ours", "base",
                    "ours"]
        assert schedule.count("ours") == REPS_OURS and schedule.count("base") == REPS_BASELINE
        ours: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for i, which in enumerate(schedule):
            if which == "ours":
                ours.append(one_ours(lab, pair, confdir, live, dead))
                r = ours[-1]
                note = f"wall {r['wall_s']:.3f} s, verified in {r['engine_verified_s']} s"
            else:
                base.append(one_baseline(lab, pair, NAME))
                r = base[-1]
                note = f"wall {r['wall_s']:.2f} s, chose {r.get('chosen')}"
            print(f"  [{i + 1}/{len(schedule)}] {which}: {note}"
                  + ("" if r["verified"] else "  NOT VERIFIED"), flush=True)
    return {"dns_order": [f"{n} {links[n].peer_addr}" for n in DNS_ORDER],
            "resolver_order": got, "resolver_order_as_intended": got == want,
            "dead": list(DEAD), "live_endpoint": live, "start_endpoint": dead,
            "ours": ours, "baseline": base, "leftovers": lab.leftovers(),
            "close_errors": lab.close_errors}


def report_single(res: dict[str, Any]) -> list[str]:
    ours, base = res["ours"], res["baseline"]
    wall = stats([r["wall_s"] for r in ours])
    engine = stats([r["engine_verified_s"] for r in ours if r["engine_verified_s"] is not None])
    rss = stats([r["maxrss_kb"] / 1024 for r in ours])
    bwall = stats([r["wall_s"] for r in base])
    res["summary"] = {"ours_wall_s": wall, "ours_engine_verified_s": engine,
                      "ours_maxrss_mib": rss, "baseline_wall_s": bwall}
    lines = [
        "(a) one peer, 4 candidates, 3 dead: `wg-endpointd once`",
        f"    DNS order: {', '.join(res['dns_order'])}; dead (nft drop all): "
        f"{', '.join(res['dead'])}",
        f"    start: router on {res['start_endpoint']}, no session; live: {res['live_endpoint']}",
        f"    CLI wall, start to exit (= to verified endpoint): {fmt_s(wall)}",
        f"    engine's own 'verified in':                      {fmt_s(engine)}",
        f"    ended on the live endpoint with a handshake:     "
        f"{sum(r['verified'] for r in ours)}/{len(ours)}",
        f"    peak RSS of the CLI process:                     {fmt_s(rss, 'MiB', digits=1)}",
    ]
    if ours:
        lines.append("    log of the first run:")
        lines += [f"      {line}" for line in ours[0]["stderr"]]
    first = base[0] if base else {}
    lines += [
        "(b) sequential baseline: getent ahosts, `ping -c 3 -W 1` each in order, wg set, "
        "ping into tunnel, wait for handshake",
        f"    resolver order (getent ahosts): {', '.join(first.get('resolver_order', []))}",
        f"    wall: {fmt_s(bwall)}",
    ]
    dead_pings = [p["seconds"] for r in base for p in r.get("pings", []) if not p["answered"]]
    live_pings = [p["seconds"] for r in base for p in r.get("pings", []) if p["answered"]]
    lines.append(f"    per dead address: {fmt_s(stats(dead_pings), digits=2)}; "
                 f"live address: {fmt_s(stats(live_pings), digits=2)}")
    lines.append(f"    verified (handshake > 0): {sum(bool(r['verified']) for r in base)}/{len(base)}")
    if wall["n"] and bwall["n"]:
        ratio = bwall["median"] / wall["median"]
        res["summary"]["ratio_baseline_over_ours"] = ratio
        lines.append(f"    ratio baseline / ours (median wall): {ratio:.1f}x")
        if engine["n"]:
            ratio_e = bwall["median"] / engine["median"]
            res["summary"]["ratio_baseline_over_engine_verified"] = ratio_e
            lines.append(f"    ratio baseline / engine 'verified in' (median): {ratio_e:.0f}x")
    return lines


PART: Part = ("(a)+(b) one peer, 4 candidates", bench_single, report_single)


def main(argv: list[str] | None = None) -> int:
    return run_parts({"single": PART}, argv)


if __name__ == "__main__":
    sys.exit(main())
