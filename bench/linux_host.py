"""A Linux host with real wg-quick in the lab (tests/lab/wgquick.py): a split tunnel whose
Endpoint is a hostname with AAAA and A records, the daemon run with `--wireguard-dir`
and default settings (an empty settings file, so that no /etc file counts).

    PYTHONPATH=src:. .venv/bin/python -m bench.linux_host [--reps 5] [--idle 310]

Cases, each from the peer verified on its IPv6 endpoint and a fresh daemon:
- silent: IPv6 starts dropping everything (no event), at a random moment of the check
  cycle; until a handshake on the IPv4 endpoint (the tunnel verified there).
- address lost / default route removed / default route to a dead gateway: the host's
  global IPv6 address goes, or its IPv6 default route goes or is replaced by one through
  a gateway that never answers; only rtnetlink says so. Until the first handshake on the
  IPv4 endpoint (the daemon resets the peer when it switches, so a handshake there is the
  first packet through the tunnel on it).
- once: `wg-endpointd once --wireguard-dir DIR` with the peer on a dead IPv6 endpoint;
  wall time, Python's start included.
- idle: two labs side by side over the same window, one daemon with the rtnetlink
  listener (as on a wg-quick host) and one without it (runtime.netwatch.wanted False,
  the baseline): CPU s/hour (with `wg` children), `wg` runs/hour, wake-ups (voluntary
  context switches) of the main thread (as bench.daemon counts them), of every thread,
  and of the listener's own thread. The window holds one scheduled round
  (`resolve_interval`, 300 s) at the default 310 s.

Writes build/bench-linux-host.json. Medians, because the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.daemon import proc_stat, wg_runs
from bench.silent import summary
from tests.e2e.helpers import SRC, wait_for
from tests.e2e.hosthelpers import (
    healthy,
    on_endpoint,
    quick_daemon,
    set_endpoint,
    state,
    write_settings,
)
from tests.lab import Lab, QuickTunnel

TARGETS = {"silent": 15.0, "address lost": 1.0, "default route removed": 1.0,
           "default route to a dead gateway": 1.0, "once": 1.0}
EVENTS = ("address lost", "default route removed", "default route to a dead gateway")
DEAD_GATEWAY = "2001:db8:1::3"  # on the IPv6 uplink's subnet; nothing answers there


class Host:
    """One lab with a wg-quick split tunnel, put back to "verified on IPv6" before each run."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        self.tunnel: QuickTunnel = lab.add_wg_quick(full=False)
        self.v4, self.v6 = self.tunnel.server.endpoints()
        self.uplink = self.tunnel.server.v6
        self.defaults = write_settings(tmp / "defaults.toml")  # [globals] only
        self.runs = 0

    def ip(self, *argv: str) -> None:
        self.lab.router(["ip", *argv])

    def on_ipv6(self) -> None:
        """The IPv6 path whole again (address, default route, no block), the peer on it."""
        link = self.uplink
        self.ip("address", "replace", f"{link.router_addr}/{link.prefixlen}", "dev",
                link.router_if, "noprefixroute", "nodad")
        self.ip("-6", "route", "replace", "default", "via", link.peer_addr, "dev",
                link.router_if, "onlink")
        self.lab.unblock(link)  # and forget failed neighbour entries
        set_endpoint(self.lab, self.tunnel, self.v6)
        wait_for(lambda: self.lab.ping_quick(self.tunnel, 4, timeout=1), 10, "ping on IPv6",
                 step=0.1)

    @contextmanager
    def daemon(self, settings: Path | None = None) -> Iterator[Path]:
        """A fresh daemon, healthy on IPv6; yields its run directory. Left only after its
        state file shows the switch (a stop during verification restores the old
        endpoint); its log is printed when something fails."""
        self.on_ipv6()
        self.runs += 1
        run_dir, log = self.tmp / f"run{self.runs}", self.tmp / f"daemon{self.runs}.log"
        try:
            with quick_daemon(self.lab, self.tunnel, run_dir, log,
                              settings or self.defaults):
                wait_for(lambda: healthy(run_dir)
                         and state(run_dir)["peers"][0]["endpoint"] == self.v6, 20, "healthy")
                yield run_dir
                wait_for(lambda: (state(run_dir)["peers"][0]["last_switch"] or {}).get("to")
                         == self.v4, 10, "the switch in the state file")
        except BaseException:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise

    def switched(self, start: float, limit: float) -> float:
        wait_for(lambda: on_endpoint(self.lab, self.tunnel, self.v4), limit,
                 "a handshake on IPv4", step=0.005)
        return time.monotonic() - start

    def silent(self) -> float:
        with self.daemon():
            time.sleep(random.uniform(12, 23))  # learned, then anywhere in the cycle
            self.lab.block(self.uplink, "all")
            return self.switched(time.monotonic(), 40)

    def event(self, kind: str) -> float:
        link = self.uplink
        change: dict[str, list[str]] = {
            "address lost": ["address", "del", f"{link.router_addr}/{link.prefixlen}",
                             "dev", link.router_if],
            "default route removed": ["-6", "route", "del", "default"],
            "default route to a dead gateway": ["-6", "route", "replace", "default", "via",
                                                DEAD_GATEWAY, "dev", link.router_if,
                                                "onlink"]}
        with self.daemon():
            time.sleep(1)  # nothing but the change wakes it
            start = time.monotonic()
            self.ip(*change[kind])
            return self.switched(start, 20)

    def once(self) -> float:
        self.on_ipv6()
        self.lab.block(self.uplink, "all")
        env = dict(os.environ, PYTHONPATH=SRC,
                   WG_ENDPOINTD_RUN_DIR=str(self.tmp / "run-once"))
        start = time.monotonic()
        res = self.lab.router(self.tunnel.daemon_argv("once", "--settings",
                                                      str(self.defaults)),
                              env=env, check=False)
        took = time.monotonic() - start
        if res.returncode != 0 or not on_endpoint(self.lab, self.tunnel, self.v4):
            raise AssertionError(f"once: {res.returncode}: {res.stderr[-1000:]}")
        return took


def tasks(pid: int) -> dict[int, tuple[int, str]]:
    """Each thread's voluntary context switches and its `syscall` line."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            status = Path(base, "status").read_text()
            call = Path(base, "syscall").read_text().strip()
        except OSError:
            continue  # gone meanwhile
        count = next(int(x.split(":")[1]) for x in status.splitlines()
                     if x.startswith("voluntary_ctxt_switches"))
        out[int(tid)] = (count, call)
    return out


def listener_tid(pid: int, found: dict[int, tuple[int, str]]) -> int | None:
    """The rtnetlink listener: the thread other than the main one that sleeps in select
    (x86_64 select 23, pselect6 270; arm64 pselect6 72) with no timeout (runtime
    service.Waiter, the main thread's, always has one)."""
    for tid, (_, call) in found.items():
        args = call.split()
        if tid != pid and len(args) > 5 and args[0] in ("23", "270", "72") and args[5] == "0x0":
            return tid
    return None


def idle(seconds: float) -> dict[str, dict[str, Any]]:
    """Two wg-quick hosts side by side over the same window, the listener on and off."""
    settings_text = "[globals]\nlog_level = \"debug\"\n"  # `wg` runs are counted in the log
    with ExitStack() as stack:
        runs: dict[str, tuple[Any, Path]] = {}
        for name, netlink in (("netlink on", True), ("netlink off (baseline)", False)):
            lab = stack.enter_context(Lab())
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            tunnel = lab.add_wg_quick(full=False)
            (tmp / "s.toml").write_text(settings_text)
            log = tmp / "daemon.log"
            proc = stack.enter_context(quick_daemon(lab, tunnel, tmp / "run", log,
                                                    tmp / "s.toml", netlink=netlink))
            runs[name] = (proc, log)
            wait_for(lambda r=tmp / "run": healthy(r), 20, "healthy")
        time.sleep(2)
        start: dict[str, Any] = {}
        for name, (proc, log) in runs.items():
            found = tasks(proc.pid)
            start[name] = (proc_stat(proc.pid), wg_runs(log), found,
                           listener_tid(proc.pid, found))
        time.sleep(seconds)
        out = {}
        for name, (proc, log) in runs.items():
            (cpu0, _, main0), runs0, found0, tid = start[name]
            cpu1, rss, main1 = proc_stat(proc.pid)
            found1 = tasks(proc.pid)
            threads = sum(c - found0.get(t, (0, ""))[0] for t, (c, _) in found1.items())
            per_hour = 3600 / seconds
            out[name] = {
                "seconds": seconds, "cpu_s_per_hour": round((cpu1 - cpu0) * per_hour, 2),
                "wg_runs_per_hour": round((wg_runs(log) - runs0) * per_hour),
                "wakeups_main": main1 - main0, "wakeups_all_threads": threads,
                "wakeups_main_per_min": round((main1 - main0) * 60 / seconds, 1),
                "wakeups_listener": (None if tid is None or tid not in found1
                                     else found1[tid][0] - found0[tid][0]),
                "threads": len(found1), "peak_rss_mib": round(rss, 1)}
        if out["netlink on"]["wakeups_listener"] is None:
            raise AssertionError("the listener's thread was not found")
        return out


def timed(what: str, fn: Callable[[], float], into: list[float], rep: int, reps: int) -> None:
    into.append(fn())
    print(f"  [{rep + 1}/{reps}] {what}: {into[-1]:.3f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--idle", type=float, default=310)
    args = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in TARGETS}
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        host = Host(lab, Path(tmp))
        for rep in range(args.reps):  # interleaved, so load drifts hit every case alike
            timed("silent", host.silent, times["silent"], rep, args.reps)
            for kind in EVENTS:
                timed(kind, lambda k=kind: host.event(k), times[kind], rep, args.reps)
            timed("once", host.once, times["once"], rep, args.reps)
    result: dict[str, Any] = {}
    for kind, values in times.items():
        r = summary(values)
        r["target_s"] = TARGETS[kind]
        r["met"] = r["median_s"] <= TARGETS[kind]
        result[kind] = r
        print(f"{kind}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max "
              f"{r['max_s']:.3f}, n={r['n']}; target <= {TARGETS[kind]:g} s)")
    result["idle"] = idle(args.idle)
    for name, r in result["idle"].items():
        print(f"idle {args.idle:.0f} s, {name}: CPU {r['cpu_s_per_hour']} s/hour, "
              f"{r['wg_runs_per_hour']} wg runs/hour, wake-ups: main thread "
              f"{r['wakeups_main']} ({r['wakeups_main_per_min']}/min), all threads "
              f"{r['wakeups_all_threads']}, listener "
              f"{'-' if r['wakeups_listener'] is None else r['wakeups_listener']}")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-linux-host.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
