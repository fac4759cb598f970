"""A Linux host with real wg-quick (tests/lab/wgquick.py): `wg-quick up` on a config file
whose Endpoint is a hostname with AAAA and A records (dnsmasq), wireguard-go, and the
daemon run with `--wireguard-dir`. Split and full tunnel; silent path death, network
changes that only rtnetlink reports, `once`, and a broken file beside a good one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import SRC, wait_for
from tests.e2e.hosthelpers import (
    dump,
    healthy,
    on_endpoint,
    quick_daemon,
    set_endpoint,
    state,
    stop,
    write_settings,
)
from tests.e2e.test_wgquick_lab import COUNTERS, echo_requests
from tests.lab import Lab, QuickTunnel

pytestmark = pytest.mark.lab
FAST = {"check_interval": 1, "dead_after": 3, "log_level": "debug"}


def on_ipv6(lab: Lab, tunnel: QuickTunnel) -> tuple[str, str]:
    """Put the peer on its IPv6 endpoint with a handshake there; (IPv4, IPv6) endpoints."""
    v4, v6 = tunnel.server.endpoints()
    set_endpoint(lab, tunnel, v6)
    assert lab.ping_quick(tunnel, 4, timeout=5)
    assert dump(lab, tunnel)[2] == v6
    return v4, v6


def printed(log: Path) -> None:
    """The daemon's log, shown when a test fails."""
    if log.exists():
        print(log.read_text()[-4000:])


def test_split_tunnel_silent_ipv6_death_moves_to_ipv4(lab, tmp_path):
    tunnel = lab.add_wg_quick(full=False)
    v4, v6 = on_ipv6(lab, tunnel)
    settings = write_settings(tmp_path / "wg-endpointd.toml", **FAST)
    run_dir, log = tmp_path / "run", tmp_path / "daemon.log"
    try:
        with quick_daemon(lab, tunnel, run_dir, log, settings):
            wait_for(lambda: healthy(run_dir), 10, "healthy")
            assert state(run_dir)["peers"][0]["endpoint"] == v6
            lab.block(tunnel.server.v6, "all")  # no event: the path just dies
            took = wait_for(lambda: on_endpoint(lab, tunnel, v4), 15, "a handshake on IPv4",
                            step=0.05)
            assert lab.ping_quick(tunnel, 4)
            wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 3, "state")
            peer = state(run_dir)["peers"][0]
            assert (peer["interface"], peer["public_key"]) == (tunnel.name,
                                                               tunnel.server.public)
            assert peer["endpoint"] == v4
            assert (peer["last_switch"]["from"], peer["last_switch"]["to"]) == (v6, v4)
    finally:
        printed(log)
    print(f"silent IPv6 death -> handshake on IPv4: {took:.2f} s (check 1 s, dead after 3 s)")


def test_lost_ipv6_address_moves_the_peer_without_hotplug_or_signal(lab, tmp_path):
    """The host loses its global IPv6 address: only rtnetlink says so, and the first
    handshake on the IPv4 endpoint follows within 1 s (default settings, debug log)."""
    tunnel = lab.add_wg_quick(full=False)
    v4, v6 = on_ipv6(lab, tunnel)
    settings = write_settings(tmp_path / "wg-endpointd.toml", log_level="debug")
    run_dir, log = tmp_path / "run", tmp_path / "daemon.log"
    uplink = tunnel.server.v6
    try:
        with quick_daemon(lab, tunnel, run_dir, log, settings):
            wait_for(lambda: healthy(run_dir), 10, "healthy")
            # a change that breaks nothing wakes a round, which leaves the peer alone
            lab.router(["ip", "-6", "route", "add", "default", "via", uplink.peer_addr,
                        "dev", uplink.router_if, "onlink", "metric", "2000"])
            wait_for(lambda: "network change: default route" in log.read_text(), 3, "wake")
            time.sleep(1)
            assert dump(lab, tunnel)[2] == v6 and healthy(run_dir)
            start = time.monotonic()
            lab.router(["ip", "address", "del", f"{uplink.router_addr}/{uplink.prefixlen}",
                        "dev", uplink.router_if])
            wait_for(lambda: on_endpoint(lab, tunnel, v4), 3, "a handshake on IPv4",
                     step=0.005)
            took = time.monotonic() - start
            assert lab.ping_quick(tunnel, 4)
            # its verification ends (a stop before that would put the old endpoint back)
            wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 3, "state")
            assert state(run_dir)["peers"][0]["endpoint"] == v4
    finally:
        printed(log)
    text = log.read_text()
    assert (f"network change: address {uplink.router_addr}/{uplink.prefixlen} on "
            f"{uplink.router_if} removed") in text
    print(f"IPv6 address lost -> first handshake on IPv4: {took * 1000:.0f} ms")
    assert took <= 3.0  # the figure is 1 s; margin for a shared machine


def run_once(lab: Lab, tunnel: QuickTunnel, run_dir: Path, *extra: str
             ) -> tuple[subprocess.CompletedProcess[str], float]:
    """`wg-endpointd once --wireguard-dir DIR` in the router namespace; (result, seconds)."""
    env = dict(os.environ, PYTHONPATH=SRC, WG_ENDPOINTD_RUN_DIR=str(run_dir))
    start = time.monotonic()
    res = subprocess.run(tunnel.daemon_argv("once", *extra), capture_output=True, text=True,
                         env=env, timeout=30)
    return res, time.monotonic() - start


def test_once_leaves_a_dead_ipv6_endpoint(lab, tmp_path):
    tunnel = lab.add_wg_quick(full=False)
    v4, _ = on_ipv6(lab, tunnel)
    lab.block(tunnel.server.v6, "all")
    empty = write_settings(tmp_path / "wg-endpointd.toml")
    res, took = run_once(lab, tunnel, tmp_path / "run", "--settings", str(empty))
    assert res.returncode == 0, res.stdout + res.stderr
    assert on_endpoint(lab, tunnel, v4)
    assert lab.ping_quick(tunnel, 4)
    print(f"once on a dead IPv6 endpoint: {took:.2f} s wall (python start included)")
    assert took <= 3.0  # the figure is 1 s


def proto186(lab: Lab) -> str:
    """The daemon's own routes (proto 186), in every table of both families."""
    return "".join(lab.router(["ip", f"-{fam}", "route", "show", "table", "all", "proto",
                               "186"]).stdout for fam in (4, 6))


def test_full_tunnel_fails_over_and_leaves_wg_quick_alone(lab, tmp_path):
    links = lab.add_quick_uplinks()
    tunnel = lab.add_wg_quick(full=True)
    server = tunnel.server
    v4, v6 = on_ipv6(lab, tunnel)
    before, fwmark = lab.routing_state(), lab.wg_fwmark(tunnel)
    assert fwmark == "0xca6c" and "lookup 51820" in before["rules4"]
    a4, a6 = server.v4.peer_addr, server.v6.peer_addr
    lab.peer(["nft", "-f", "-"], input=COUNTERS.format(
        q4=links["q4"].peer_if, q6=links["q6"].peer_if, wg=server.wg_if, a4=a4, a6=a6))
    settings = write_settings(tmp_path / "wg-endpointd.toml", **FAST)
    run_dir, log = tmp_path / "run", tmp_path / "daemon.log"
    try:
        with quick_daemon(lab, tunnel, run_dir, log, settings) as proc:
            wait_for(lambda: healthy(run_dir), 10, "healthy")
            lab.block(server.v6, "all")
            took = wait_for(lambda: on_endpoint(lab, tunnel, v4), 15, "a handshake on IPv4",
                            step=0.05)
            assert lab.ping_quick(tunnel, 4) and lab.ping_quick(tunnel, 6)
            wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 3, "state")
            assert proto186(lab) == ""
            assert stop(proc) == 0
    finally:
        printed(log)
    # its probes carried the fwmark: they reached the candidates on the uplinks, and not
    # one went into the tunnel it was judging
    seen = echo_requests(lab)
    assert seen["up4"] > 0 and seen["up6"] > 0 and seen["tun4"] == seen["tun6"] == 0, seen
    assert proto186(lab) == ""
    assert lab.routing_state() == before and lab.wg_fwmark(tunnel) == fwmark
    assert dump(lab, tunnel)[2] == v4  # only the endpoint changed
    print(f"full tunnel, silent IPv6 death -> handshake on IPv4: {took:.2f} s; echo "
          f"requests to the candidates {seen}")


def test_full_tunnel_silent_death_with_default_settings(lab, tmp_path):
    """No settings at all: the peer (AllowedIPs only default routes) is tested at the first
    host of its Address subnet, and its silent death is found and moved within 20 s."""
    tunnel = lab.add_wg_quick(full=True)
    v4, _ = on_ipv6(lab, tunnel)
    assert tunnel.address4 == "10.99.0.2/24" and tunnel.server.tunnel4 == "10.99.0.1"
    assert lab.ping_quick(tunnel, 4)  # the server answers there, through the tunnel
    defaults = write_settings(tmp_path / "wg-endpointd.toml")  # hermetic: no /etc file
    shown = lab.router(tunnel.daemon_argv("config", "--json", "--settings", str(defaults)),
                       env={"PYTHONPATH": SRC})
    [peer] = [p for p in json.loads(shown.stdout) if p["interface"] == tunnel.name]
    assert (peer["probe_address"], peer["fwmark"]) == ("10.99.0.1", 51820)
    run_dir, log = tmp_path / "run", tmp_path / "daemon.log"
    try:
        with quick_daemon(lab, tunnel, run_dir, log, defaults):
            wait_for(lambda: healthy(run_dir), 10, "healthy")
            time.sleep(random.uniform(1, 11))  # anywhere in the 10 s check cycle
            lab.block(tunnel.server.v6, "all")
            took = wait_for(lambda: on_endpoint(lab, tunnel, v4), 20, "a handshake on IPv4",
                            step=0.05)
            wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 3, "state")
    finally:
        printed(log)
    assert lab.ping_quick(tunnel, 4)
    print(f"full tunnel, default settings, silent IPv6 death -> handshake on IPv4: "
          f"{took:.1f} s")


def test_a_broken_file_beside_a_good_one(lab, tmp_path):
    good = lab.add_wg_quick(full=False)
    other = lab.add_wg_quick(full=False)
    broken = Path(good.conf_dir) / f"{other.name}.conf"
    text = Path(other.conf_path).read_text()
    assert "Endpoint = " in text
    broken.write_text(text.replace("Endpoint = ", "Endpiont = "))
    broken.chmod(0o600)
    v4, v6 = on_ipv6(lab, good)
    _, other_v6 = on_ipv6(lab, other)
    settings = write_settings(tmp_path / "wg-endpointd.toml", log_level="debug")
    run_dir, log = tmp_path / "run", tmp_path / "daemon.log"
    try:
        with quick_daemon(lab, good, run_dir, log, settings):
            wait_for(lambda: healthy(run_dir), 10, "healthy")
            managed = [(p["interface"], p["managed"]) for p in state(run_dir)["peers"]]
            assert (good.name, True) in managed and (other.name, True) not in managed
    finally:
        printed(log)
    line = 1 + text.splitlines().index(next(x for x in text.splitlines()
                                            if x.startswith("Endpoint = ")))
    where = f"{broken}:{line}: Endpiont"
    warnings = [x for x in log.read_text().splitlines() if str(broken) in x]
    assert len(warnings) == 1 and warnings[0].startswith(f"WARNING: {where}"), warnings
    # `once` moves the good one off a dead IPv6 endpoint, leaves the other alone, exits 1
    lab.block(good.server.v6, "all")
    res, took = run_once(lab, good, tmp_path / "run", "--settings", str(settings))
    assert res.returncode == 1, res.stdout + res.stderr
    named = [x for x in res.stderr.splitlines() if str(broken) in x]
    assert len(named) == 1 and where in named[0], res.stderr
    assert on_endpoint(lab, good, v4)
    assert dump(lab, other)[2] == other_v6
    print(f"broken file beside a good one: once exit 1 in {took:.2f} s; {warnings[0]}")
