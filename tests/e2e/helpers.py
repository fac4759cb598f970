"""Shared set-up for end-to-end tests: a UCI config for lab pairs and CLI runs in the router ns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.lab import Lab, Link, WgPair

SRC = str(Path(__file__).resolve().parents[2] / "src")
NAME = "peer.wg.test"
HOTPLUG = str(Path(__file__).resolve().parents[2] / "files/etc/hotplug.d/iface/20-wg-endpointd")


def four_links(lab: Lab) -> dict[str, Link]:
    """Two IPv6 and two IPv4 peer addresses, each on its own link."""
    return {
        "v6a": lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64),
        "v4a": lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30),
        "v6b": lab.add_link("v6b", 6, "2001:db8:2::1", "2001:db8:2::2", 64),
        "v4b": lab.add_link("v4b", 4, "198.51.100.1", "198.51.100.2", 30),
    }


def peer_section(pair: WgPair, host: str = NAME, extra: str = "", description: str = "") -> str:
    return (f"config wireguard_{pair.router_if}\n"
            f"\toption public_key '{pair.peer_public}'\n"
            f"\toption endpoint_host '{host}'\n"
            f"\toption endpoint_port '{pair.peer_port}'\n"
            f"\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n"
            + (f"\toption description '{description}'\n" if description else "")
            + extra + "\n")


def write_config(tmp: Path, pairs: list[WgPair], sections: str, own: str = "") -> str:
    """A UCI dir with `network` (one wireguard interface per pair) and `wg-endpointd`."""
    confdir = tmp / "config"
    confdir.mkdir(exist_ok=True)
    ifaces = "".join(f"config interface '{p.router_if}'\n\toption proto 'wireguard'\n\n"
                     for p in {p.router_if: p for p in pairs}.values())
    (confdir / "network").write_text(ifaces + sections)
    (confdir / "wg-endpointd").write_text(own or "config globals 'globals'\n")
    return str(confdir)


# `unshare -m sh router-dev.sh CMD...`: CMD sees /dev as procd makes it on a router,
# with no /dev/fd (tests/shell/router-dev.sh).
ROUTER_DEV = ["unshare", "-m", "sh", str(Path(__file__).parent.parent / "shell" / "router-dev.sh")]


def run_cli(lab: Lab, *args: str, timeout: float = 60, env: dict[str, str] | None = None
            ) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `python -m wg_endpointd ARGS` inside the router namespace, with a router's
    /dev (ROUTER_DEV); (result, seconds)."""
    env = dict(os.environ, PYTHONPATH=SRC, **(env or {}))
    env.setdefault("WG_ENDPOINTD_RUN_DIR", os.path.join(lab.tmpdir, "run"))  # its own lock
    start = time.monotonic()
    res = lab.router([*ROUTER_DEV, sys.executable, "-m", "wg_endpointd", *args],
                     timeout=timeout, check=False, env=env)
    return res, time.monotonic() - start


def endpoint(lab: Lab, pair: WgPair) -> str:
    return lab.wg_dump(pair)[2]


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Poll `cond` (bounded by time and count); returns the seconds it took."""
    start = time.monotonic()
    for _ in range(int(timeout / step) + 1):
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            break
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def daemon(lab: Lab, confdir: str, run_dir: Path, log_path: Path | None = None
           ) -> Iterator[subprocess.Popen[str]]:
    """Run `wg-endpointd run` in the router namespace until its state file exists;
    always stopped (SIGTERM, then SIGKILL) afterwards."""
    env = dict(os.environ, PYTHONPATH=SRC, WG_ENDPOINTD_RUN_DIR=str(run_dir))
    log = open(log_path or os.devnull, "w")  # noqa: SIM115
    proc = subprocess.Popen(["ip", "netns", "exec", lab.router_ns, sys.executable, "-m",
                             "wg_endpointd", "run", "--config-dir", confdir],
                            stdout=log, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        wait_for(lambda: (run_dir / "wg-endpointd.pid").exists()
                 and (run_dir / "state.json").exists(), 10, "daemon start")
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, then SIGKILL (`ip netns exec` execs, so this is the daemon); its code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=6)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


def hotplug(lab: Lab, run_dir: Path, **env: str) -> float:
    """Run the hotplug script as netifd/mwan3 would (sourced by busybox ash, stripped env);
    returns its duration in seconds."""
    args = [f"{k}={v}" for k, v in env.items()]
    start = time.monotonic()
    lab.router(["env", "-i", *args, f"WG_ENDPOINTD_RUN_DIR={run_dir}",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "busybox", "sh", "-c", f". {HOTPLUG}"])
    return time.monotonic() - start


def start_cli(lab: Lab, *args: str, run_dir: str | None = None) -> subprocess.Popen[str]:
    """Start `python -m wg_endpointd ARGS` in the router namespace, in its own process
    group (so a test can kill it and its `wg` children at once); the caller reaps it."""
    env = dict(os.environ, PYTHONPATH=SRC,
               WG_ENDPOINTD_RUN_DIR=run_dir or os.path.join(lab.tmpdir, "run"))
    return subprocess.Popen(["ip", "netns", "exec", lab.router_ns, sys.executable, "-m",
                             "wg_endpointd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True,
                            start_new_session=True)


def reap(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """Wait for a process from start_cli (killing its group after `timeout`); its output."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=5)
    return out or ""


def rebuild_as_netifd_does(lab: Lab, run_dir: Path, pair: WgPair, dead: Link, first: Link,
                           uplink: str) -> None:
    """The uplink that carried the endpoint goes down, in the order real netifd showed
    (openwrt-facts.md §10): wg deleted, `ifdown wg`, `ifdown <uplink>`, wg created again
    by wireguard.sh with the peer on the first address of a fresh DNS answer (no session,
    no handshake), `ifup-failed wg`, `ifup wg`."""
    lab.block(dead, "all")
    lab.delete_router_interface(pair)
    hotplug(lab, run_dir, ACTION="ifdown", INTERFACE=pair.router_if)
    hotplug(lab, run_dir, ACTION="ifdown", INTERFACE=uplink)
    lab.create_router_interface(pair, first.endpoint())
    hotplug(lab, run_dir, ACTION="ifup-failed", INTERFACE=pair.router_if)
    hotplug(lab, run_dir, ACTION="ifup", INTERFACE=pair.router_if)
