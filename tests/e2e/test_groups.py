"""Standby groups against real WireGuard: two servers with their own keys, each in its own
namespace, both with the same tunnel gateway address, as one router interface's peers."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.helpers import SRC, daemon, hotplug, run_cli, wait_for, write_config

pytestmark = pytest.mark.lab
NAME1 = "vpn1.wg.test"


def own(**opts: str) -> str:
    return "config globals 'globals'\n" + "".join(f"\toption {k} '{v}'\n"
                                                  for k, v in opts.items()) + "\n"


def setup(lab, tmp_path, hold: str = "300", **opts: str):
    """Preferred server: the pair's peer, reachable on two addresses (its own candidates).
    Standby: a second server with its own key and the same gateway address. Both are
    configured as netifd would, so the standby (listed last) holds the allowed IPs."""
    v6 = lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64)
    v4 = lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30)
    pair = lab.add_wg_pair(51820)
    standby = lab.add_server(pair, "s1", "192.0.2.5", "192.0.2.6", 30, port=51821,
                             allowed_ips_router=[f"{pair.peer_tunnel_ip}/32"])
    lab.set_dns({NAME1: [v6.peer_addr, v4.peer_addr]})
    lab.set_endpoint(pair, v6.endpoint())
    network = (
        f"config wireguard_{pair.router_if}\n\toption description 'preferred'\n"
        f"\toption public_key '{pair.peer_public}'\n\toption endpoint_host '{NAME1}'\n"
        f"\toption endpoint_port '51820'\n\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n\n"
        f"config wireguard_{pair.router_if}\n\toption description 'standby'\n"
        f"\toption public_key '{standby.public}'\n"
        f"\toption endpoint_host '{standby.link.peer_addr}'\n"
        f"\toption endpoint_port '{standby.port}'\n\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n\n")
    group = (f"config group 'vpn'\n\toption interface '{pair.router_if}'\n"
             f"\tlist peer '{pair.peer_public}'\n\tlist peer '{standby.public}'\n"
             f"\toption failback_hold '{hold}'\n")
    settings = {"check_interval": "1", "dead_after": "3", "verify_timeout": "1", **opts}
    confdir = write_config(tmp_path, [pair], network, own(**settings) + group)
    return (v6, v4), pair, standby, confdir, tmp_path / "run"


def allowed(lab, pair, key: str) -> str:
    for line in lab.router(["wg", "show", pair.router_if, "dump"]).stdout.splitlines()[1:]:
        fields = line.split("\t")
        if fields[0] == key:
            return fields[3]
    return "(missing)"


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def group_active(run_dir: Path) -> str | None:
    groups = state(run_dir).get("groups") or [{}]
    return groups[0].get("active")


@contextmanager
def running(lab, confdir: str, run_dir: Path):
    log = run_dir.parent / "daemon.log"
    try:
        with daemon(lab, confdir, run_dir, log) as proc:
            yield proc, log
    finally:
        if log.exists():
            print(log.read_text()[-6000:])


def holds(lab, pair, key: str) -> bool:
    return pair.peer_tunnel_ip in allowed(lab, pair, key)


def start_on_preferred(lab, pair, run_dir: Path) -> None:
    wait_for(lambda: holds(lab, pair, pair.peer_public), 10, "preferred holds the allowed IPs")
    wait_for(lambda: lab.ping_through_tunnel(pair, timeout=1), 10, "traffic", step=0.2)


def test_silent_death_moves_traffic_to_standby_after_own_candidates(lab, tmp_path):
    (v6, v4), pair, standby, confdir, run_dir = setup(lab, tmp_path)
    with running(lab, confdir, run_dir) as (_, log):
        start_on_preferred(lab, pair, run_dir)
        assert not holds(lab, pair, standby.public)  # exactly one holder
        wait_for(lambda: state(run_dir)["groups"][0]["members"][1]["health"] == "alive", 10,
                 "standby proven by a handshake")
        lab.block(v6, "all")
        lab.block(v4, "all")  # the preferred server dies silently: no event
        took = wait_for(lambda: holds(lab, pair, standby.public)
                        and lab.ping_through_tunnel(pair, timeout=0.2), 15, "failover", step=0.01)
        assert not holds(lab, pair, pair.peer_public)
        wait_for(lambda: "failover preferred" in log.read_text(), 3, "log line")
        text = log.read_text()
        failover = text.index("failover preferred -> standby")
        # the preferred server's own candidates were tried first
        assert text.rindex(f"{v6.endpoint()} not verified", 0, failover) < failover
        assert text.rindex(f"{v4.endpoint()} not verified", 0, failover) < failover
        wait_for(lambda: group_active(run_dir) == standby.public, 3, "state file")
        last = state(run_dir)["groups"][0]["last_failover"]
        assert last["from"] == pair.peer_public and last["to"] == standby.public
        print(f"silent death to traffic on the standby: {took:.2f} s (dead_after 3 s)")
        shown = lab.router([sys.executable, "-m", "wg_endpointd", "status"], check=False,
                           env={"PYTHONPATH": SRC, "WG_ENDPOINTD_RUN_DIR": str(run_dir)})
        print(shown.stdout)
        assert "group vpn: active standby" in shown.stdout
        assert "last failover preferred -> standby" in shown.stdout
        assert took < 3 + 1 + 5  # dead_after + one counter poll + the 5 s target


def test_netifd_recreation_reapplies_active_member(lab, tmp_path):
    _, pair, standby, confdir, run_dir = setup(lab, tmp_path)
    with running(lab, confdir, run_dir):
        start_on_preferred(lab, pair, run_dir)
        ip = f"{pair.peer_tunnel_ip}/32"
        for key in (pair.peer_public, standby.public):  # netifd: ip link del, add, setconf
            lab.router(["wg", "set", pair.router_if, "peer", key, "remove"])
        for key, ep in ((pair.peer_public, "[2001:db8:1::2]:51820"),
                        (standby.public, standby.endpoint())):  # as UCI has them: last wins
            lab.router(["wg", "set", pair.router_if, "peer", key, "allowed-ips", ip,
                        "endpoint", ep])
        assert holds(lab, pair, standby.public) and not holds(lab, pair, pair.peer_public)
        hotplug(lab, run_dir, ACTION="ifup", INTERFACE=pair.router_if)
        took = wait_for(lambda: holds(lab, pair, pair.peer_public), 3, "re-applied", step=0.02)
        assert not holds(lab, pair, standby.public)
        assert lab.ping_through_tunnel(pair, timeout=1)
        print(f"re-applied {took:.2f} s after the ifup event")


def test_failback_after_hold_without_losing_traffic(lab, tmp_path):
    (v6, v4), pair, standby, confdir, run_dir = setup(lab, tmp_path, hold="4")
    with running(lab, confdir, run_dir) as (_, log):
        start_on_preferred(lab, pair, run_dir)
        lab.block(v6, "all")
        lab.block(v4, "all")
        wait_for(lambda: holds(lab, pair, standby.public), 15, "failover", step=0.05)
        lab.unblock(v6)
        lab.unblock(v4)
        back = time.monotonic()
        lost, last_ok, worst = 0, time.monotonic(), 0.0
        for _ in range(600):  # bounded: 600 pings, and 30 s
            time.sleep(0.03)
            ok = lab.ping_through_tunnel(pair, timeout=0.3)
            now = time.monotonic()
            if ok:
                worst = max(worst, now - last_ok)
                last_ok = now
            else:
                lost += 1
            if holds(lab, pair, pair.peer_public) and ok:
                break
            if now - back > 30:
                break
        took = time.monotonic() - back
        assert holds(lab, pair, pair.peer_public), "no failback"
        assert took >= 4  # not before the hold time
        wait_for(lambda: "failback standby -> preferred" in log.read_text(), 3, "log line")
        # no gap longer than one verification (verify_timeout 1 s) plus a ping's own time
        assert worst < 1 + 0.3 + 0.5, f"traffic gap {worst:.2f} s"
        print(f"failback {took:.1f} s after the preferred returned (hold 4 s); "
              f"longest traffic gap {worst:.2f} s, {lost} pings lost")


def test_both_dead_no_flapping_backoff_preferred_stays(lab, tmp_path):
    (v6, v4), pair, standby, confdir, run_dir = setup(lab, tmp_path, backoff_max="8")
    with running(lab, confdir, run_dir) as (_, log):
        start_on_preferred(lab, pair, run_dir)
        lab.block(v6, "all")
        lab.block(v4, "all")
        lab.block_server(standby)
        start = time.monotonic()
        for _ in range(200):  # bounded: 20 s in 0.1 s steps
            assert holds(lab, pair, pair.peer_public)
            assert not holds(lab, pair, standby.public)
            if time.monotonic() - start > 20:
                break
            time.sleep(0.1)
        text = log.read_text()
        assert "failover" not in text
        assert "no member verified; preferred stays active" in text
        assert text.count("no member verified") == 1  # logged when it starts, not per try
        tries = text.count(f"{v6.endpoint()} not verified")
        assert 2 <= tries <= 6, tries  # backoff: ~3 s death + 1, 2, 4, 8 s apart
        assert group_active(run_dir) == pair.peer_public
        assert state(run_dir)["peers"][0]["failures"] >= 2


def test_once_fails_over_in_one_round(lab, tmp_path):
    (v6, v4), pair, standby, confdir, run_dir = setup(lab, tmp_path)
    res, _ = run_cli(lab, "once", "--config-dir", confdir)  # netifd left them on the standby
    assert res.returncode == 0, res.stderr
    assert "failback standby -> preferred" in res.stderr
    assert holds(lab, pair, pair.peer_public) and not holds(lab, pair, standby.public)
    lab.block(v6, "all")
    lab.block(v4, "all")
    res, took = run_cli(lab, "once", "--config-dir", confdir)
    assert res.returncode == 0, res.stderr
    assert holds(lab, pair, standby.public) and not holds(lab, pair, pair.peer_public)
    assert "failover preferred -> standby" in res.stderr
    assert lab.ping_through_tunnel(pair, timeout=1)
    print(f"once: {took:.2f} s")
