"""Daemon benchmarks in the lab: hotplug event to verified endpoint, and the idle cost.

    PYTHONPATH=src:. .venv/bin/python -m bench.daemon [--reps 7] [--idle 120]

Writes build/bench-daemon.json. Medians, because the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.helpers import NAME, SRC, endpoint, four_links, peer_section, write_config
from tests.lab import Lab

HOTPLUG = str(Path(__file__).resolve().parents[1] / "files/etc/hotplug.d/iface/20-wg-endpointd")
TICK = os.sysconf("SC_CLK_TCK")


def start_daemon(lab: Lab, confdir: str, run_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=SRC, WG_ENDPOINTD_RUN_DIR=str(run_dir))
    proc = subprocess.Popen(["ip", "netns", "exec", lab.router_ns, sys.executable, "-m",
                             "wg_endpointd", "run", "--config-dir", confdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait(lambda: (run_dir / "state.json").exists() and all(
        p["phase"] == "healthy" for p in json.loads((run_dir / "state.json").read_text())["peers"]),
        20)
    return proc


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=6)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait(cond, timeout: float, step: float = 0.005) -> float:
    start = time.monotonic()
    for _ in range(int(timeout / step) + 1):
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            break
        time.sleep(step)
    raise RuntimeError(f"condition not met within {timeout} s")


def event_to_verified(reps: int) -> dict[str, object]:
    times, hotplug_ms = [], []
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links = four_links(lab)
        pair = lab.add_wg_pair(51820)
        lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
        confdir = write_config(Path(tmp), [pair], peer_section(pair))
        for i in range(reps):
            lab.unblock(links["v6a"])
            lab.reset_router_peer(pair, links["v6a"].endpoint())
            assert lab.ping_through_tunnel(pair)
            run_dir = Path(tmp) / f"run{i}"
            proc = start_daemon(lab, confdir, run_dir)
            try:
                lab.block(links["v6a"], "all")
                start = time.monotonic()
                lab.router(["env", "-i", "ACTION=ifdown", "INTERFACE=wan6",
                            f"WG_ENDPOINTD_RUN_DIR={run_dir}", "busybox", "sh", "-c",
                            f". {HOTPLUG}"])
                hotplug_ms.append((time.monotonic() - start) * 1000)
                wait(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                     and int(lab.wg_dump(pair)[4]) > 0, 5)
                times.append(time.monotonic() - start)
            finally:
                stop_daemon(proc)
    return {"event_to_verified_s": times, "median_s": statistics.median(times),
            "hotplug_script_ms_median": statistics.median(hotplug_ms)}


def proc_stat(pid: int) -> tuple[float, float, int]:
    """(cpu seconds incl. reaped children, peak RSS MiB, voluntary context switches)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rss = int(status["VmHWM"].split()[0]) / 1024
    return cpu, rss, int(status["voluntary_ctxt_switches"])


def idle(peers: int, seconds: float) -> dict[str, object]:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links = four_links(lab)
        pairs = [lab.add_wg_pair(51820 + i) for i in range(peers)]
        lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
        for pair in pairs:
            lab.set_endpoint(pair, links["v6a"].endpoint(pair.peer_port))
            assert lab.ping_through_tunnel(pair)
        confdir = write_config(Path(tmp), pairs, "".join(peer_section(p) for p in pairs))
        run_dir = Path(tmp) / "run"
        proc = start_daemon(lab, confdir, run_dir)
        try:
            time.sleep(2)
            cpu0, _, ctx0 = proc_stat(proc.pid)
            time.sleep(seconds)
            cpu1, rss, ctx1 = proc_stat(proc.pid)
            rss_now = int(dict(line.split(":", 1) for line in Path(
                f"/proc/{proc.pid}/status").read_text().splitlines())["VmRSS"].split()[0]) / 1024
        finally:
            stop_daemon(proc)
    per_hour = (cpu1 - cpu0) * 3600 / seconds
    return {"peers": peers, "seconds": seconds, "peak_rss_mib": round(rss, 1),
            "rss_mib": round(rss_now, 1), "cpu_s_per_hour": round(per_hour, 1),
            "wakeups_per_min": round((ctx1 - ctx0) * 60 / seconds, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--idle", type=float, default=120)
    args = ap.parse_args()
    ev = event_to_verified(args.reps)
    print(f"hotplug event -> verified endpoint: median {ev['median_s']:.3f} s "
          f"(min {min(ev['event_to_verified_s']):.3f}, max {max(ev['event_to_verified_s']):.3f}, "
          f"n={args.reps}); hotplug script {ev['hotplug_script_ms_median']:.1f} ms incl. netns exec")
    idl = idle(10, args.idle)
    print(f"idle, 10 peers, {args.idle:.0f} s: RSS {idl['rss_mib']} MiB (peak {idl['peak_rss_mib']}), "
          f"CPU {idl['cpu_s_per_hour']} s/hour (incl. wg children), "
          f"{idl['wakeups_per_min']} voluntary context switches/min")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-daemon.json").write_text(json.dumps({"event": ev, "idle": idl}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
