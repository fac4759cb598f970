"""Daemon benchmarks in the lab: hotplug event to verified endpoint (and the `wg`
processes a switch costs), and the idle cost of 10 peers: CPU (the daemon and its `wg`
children), `wg` processes and wake-ups per hour, RSS.

    PYTHONPATH=src:. .venv/bin/python -m bench.daemon [--reps 7] [--idle 310]

The idle window is long enough to hold one scheduled round (`resolve_interval`, 300 s).
`wg` processes are counted from the daemon's debug log (one line per run).
Writes build/bench-daemon.json. Medians, because the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.helpers import (
    NAME,
    daemon,
    endpoint,
    four_links,
    hotplug,
    peer_section,
    rebuild_as_netifd_does,
    wait_for,
    write_config,
)
from tests.lab import Lab, Link, WgPair

TICK = os.sysconf("SC_CLK_TCK")


DEBUG = "config globals 'globals'\n\toption log_level 'debug'\n"


def wg_runs(log: Path) -> int:
    return log.read_text().count("DEBUG: running wg ")


def phases(run_dir: Path) -> list[str]:
    return [p["phase"] for p in json.loads((run_dir / "state.json").read_text())["peers"]]


def all_healthy(run_dir: Path) -> bool:
    return all(p == "healthy" for p in phases(run_dir))


Run = tuple[Lab, dict[str, Link], WgPair, Path, Path]


def _runs(reps: int, answer: tuple[str, ...], start_on: str,
          blocked: tuple[str, ...] = ()) -> Iterator[Run]:
    """`reps` fresh daemons in one lab, each started healthy on `start_on` (DNS answers
    `answer`, `blocked` links drop everything); yields (lab, links, pair, run dir, log)."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links = four_links(lab)
        pair = lab.add_wg_pair(51820)
        lab.set_dns({NAME: [links[k].peer_addr for k in answer]})
        for name in blocked:
            lab.block(links[name], "all")
        confdir = write_config(Path(tmp), [pair], peer_section(pair), DEBUG)
        for i in range(reps):
            lab.unblock(links[start_on])
            lab.reset_router_peer(pair, links[start_on].endpoint())
            assert lab.ping_through_tunnel(pair)
            run_dir, log = Path(tmp) / f"run{i}", Path(tmp) / f"daemon{i}.log"
            with daemon(lab, confdir, run_dir, log):
                wait_for(lambda rd=run_dir: all_healthy(rd), 20, "healthy")
                time.sleep(1)
                yield lab, links, pair, run_dir, log


def _switched(lab: Lab, links: dict[str, Link], pair: WgPair, run_dir: Path, start: float,
              times: list[float]) -> None:
    wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
             and int(lab.wg_dump(pair)[4]) > 0, 5, "switch", step=0.005)
    times.append(time.monotonic() - start)
    wait_for(lambda: phases(run_dir) == ["fallback"], 3, "state written")


def _result(times: list[float], runs: list[int], hotplug_ms: list[float]) -> dict[str, object]:
    return {"event_to_verified_s": times, "median_s": statistics.median(times),
            "hotplug_script_ms_median": statistics.median(hotplug_ms) if hotplug_ms else 0.0,
            "wg_runs_per_switch": runs, "wg_runs_per_switch_median": statistics.median(runs)}


def event_to_verified(reps: int) -> dict[str, object]:
    """The uplink of the peer's IPv6 endpoint goes down (its hotplug event)."""
    times: list[float] = []
    hotplug_ms: list[float] = []
    runs: list[int] = []
    for lab, links, pair, run_dir, log in _runs(reps, ("v6a", "v4a"), "v6a"):
        lab.block(links["v6a"], "all")
        before, start = wg_runs(log), time.monotonic()
        hotplug_ms.append(hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6") * 1000)
        _switched(lab, links, pair, run_dir, start, times)
        runs.append(wg_runs(log) - before)
    return _result(times, runs, hotplug_ms)


def rebuilt_to_verified(reps: int) -> dict[str, object]:
    """Issue 16 part 2, as real netifd does it (openwrt-facts.md §10): the daemon sits
    verified on v6b (through wan6b; IPv6 through wan6 is blocked), wan6b goes down, netifd
    deletes wg, sends `ifdown wg` and `ifdown wan6b`, creates wg again with the peer on
    the first address of the DNS answer (v6a, blocked), then `ifup-failed wg`, `ifup wg`.
    Timed from the uplink going down to a handshake on v4a."""
    times: list[float] = []
    runs: list[int] = []
    for lab, links, pair, run_dir, log in _runs(reps, ("v6a", "v6b", "v4a"), "v6b", ("v6a",)):
        before, start = wg_runs(log), time.monotonic()
        rebuild_as_netifd_does(lab, run_dir, pair, links["v6b"], links["v6a"], "wan6b")
        _switched(lab, links, pair, run_dir, start, times)
        runs.append(wg_runs(log) - before)
    return _result(times, runs, [])


def proc_stat(pid: int) -> tuple[float, float, int]:
    """(cpu seconds incl. reaped children, peak RSS MiB, voluntary context switches)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rss = int(status["VmHWM"].split()[0]) / 1024
    return cpu, rss, int(status["voluntary_ctxt_switches"])


def idle(peers: int, seconds: float) -> dict[str, object]:
    """Idle cost of `peers` peers, each alone on its interface."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links = four_links(lab)
        pairs = [lab.add_wg_pair(51820 + i) for i in range(peers)]
        lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
        for pair in pairs:
            lab.set_endpoint(pair, links["v6a"].endpoint(pair.peer_port))
            assert lab.ping_through_tunnel(pair)
        confdir = write_config(Path(tmp), pairs, "".join(peer_section(p) for p in pairs), DEBUG)
        return _idle(lab, confdir, Path(tmp), peers, seconds)


def idle_one_interface(peers: int, seconds: float) -> dict[str, object]:
    """Idle cost of `peers` peers that share one WireGuard interface (each a server of its
    own, with a tunnel address of its own that answers)."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30)
        pair = lab.add_wg_pair(51820)
        lab.set_endpoint(pair, "192.0.2.2:51820")
        servers = [lab.add_server(pair, f"s{i}", f"198.51.100.{4 * i + 1}",
                                  f"198.51.100.{4 * i + 2}", 30, port=51830 + i,
                                  allowed_ips_router=[f"198.51.100.{200 + i}/32"],
                                  tunnel_ip=f"198.51.100.{200 + i}") for i in range(peers - 1)]
        names = {f"s{i}.wg.test": [s.link.peer_addr] for i, s in enumerate(servers)}
        lab.set_dns({NAME: ["192.0.2.2"], **names})
        sections = peer_section(pair) + "".join(
            f"config wireguard_{pair.router_if}\n\toption public_key '{s.public}'\n"
            f"\toption endpoint_host 's{i}.wg.test'\n\toption endpoint_port '{s.port}'\n"
            f"\tlist allowed_ips '{s.tunnel_ip}/32'\n\n" for i, s in enumerate(servers))
        confdir = write_config(Path(tmp), [pair], sections, DEBUG)
        return _idle(lab, confdir, Path(tmp), peers, seconds)


def _idle(lab: Lab, confdir: str, tmp: Path, peers: int, seconds: float) -> dict[str, object]:
    run_dir, log = tmp / "run", tmp / "daemon.log"
    with daemon(lab, confdir, run_dir, log) as proc:
        wait_for(lambda: all_healthy(run_dir) and len(phases(run_dir)) == peers, 20,
                 "healthy")
        time.sleep(2)
        cpu0, _, ctx0 = proc_stat(proc.pid)
        runs0 = wg_runs(log)
        time.sleep(seconds)
        cpu1, rss, ctx1 = proc_stat(proc.pid)
        runs1 = wg_runs(log)
        resets = log.read_text().count("switched") + log.read_text().count("reset")
        rss_now = int(dict(line.split(":", 1) for line in Path(
            f"/proc/{proc.pid}/status").read_text().splitlines())["VmRSS"].split()[0]) / 1024
    per_hour = (cpu1 - cpu0) * 3600 / seconds
    return {"peers": peers, "seconds": seconds, "peak_rss_mib": round(rss, 1),
            "rss_mib": round(rss_now, 1), "cpu_s_per_hour": round(per_hour, 2),
            "wg_runs_per_hour": round((runs1 - runs0) * 3600 / seconds),
            "wakeups_per_min": round((ctx1 - ctx0) * 60 / seconds, 1),
            "switch_lines": resets}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--idle", type=float, default=310)
    args = ap.parse_args()
    ev = event_to_verified(args.reps)
    rb = rebuilt_to_verified(args.reps)
    for what, r in (("hotplug event", ev), ("uplink down, netifd rebuilds wg (§10 order)", rb)):
        t = r["event_to_verified_s"]
        assert isinstance(t, list)
        script = (f"hotplug script {r['hotplug_script_ms_median']:.1f} ms incl. netns exec; "
                  if r["hotplug_script_ms_median"] else "")
        print(f"{what} -> verified endpoint: median {r['median_s']:.3f} s (min {min(t):.3f}, "
              f"max {max(t):.3f}, n={args.reps}); {script}"
              f"{r['wg_runs_per_switch_median']:g} wg processes per switch (median)")
    idl = idle(10, args.idle)
    one = idle_one_interface(10, args.idle)
    for what, r in (("one per interface", idl), ("all on one interface", one)):
        print(f"idle, 10 peers {what}, {args.idle:.0f} s: RSS {r['rss_mib']} MiB "
              f"(peak {r['peak_rss_mib']}), CPU {r['cpu_s_per_hour']} s/hour (incl. wg "
              f"children), {r['wg_runs_per_hour']} wg processes/hour, "
              f"{r['wakeups_per_min']} voluntary context switches/min, "
              f"{r['switch_lines']} switches")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-daemon.json").write_text(json.dumps(
        {"event": ev, "rebuilt_then_event": rb, "idle": idl, "idle_one_interface": one},
        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
