"""Full tunnel: the peer's allowed IPs cover its own endpoint, so a new endpoint needs a
host route through the uplink or its packets would loop into the tunnel."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import NAME, endpoint, peer_section, run_cli, write_config

pytestmark = pytest.mark.lab
LIVE, DEAD = "198.51.100.70", "198.51.100.71"


def full_tunnel(lab, tmp_path, own=""):
    uplink = lab.add_link("up", 4, "192.0.2.1", "192.0.2.2", 30)
    pair = lab.add_wg_pair(51820, allowed_ips_router=["0.0.0.0/0"])
    lab.peer(["ip", "addr", "add", f"{LIVE}/32", "dev", "lo"])  # the server, off-link
    lab.router(["ip", "route", "add", "default", "via", uplink.peer_addr, "dev", uplink.router_if])
    for half in ("0.0.0.0/1", "128.0.0.0/1"):  # the full tunnel, as route_allowed_ips does
        lab.router(["ip", "route", "add", half, "dev", pair.router_if])
    lab.set_dns({NAME: [DEAD, LIVE]})
    lab.set_endpoint(pair, f"{DEAD}:51820")
    assert " dev " + pair.router_if in lab.router(["ip", "route", "get", LIVE]).stdout
    section = peer_section(pair).replace(
        f"\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n",
        "\tlist allowed_ips '0.0.0.0/0'\n\toption route_allowed_ips '1'\n")
    confdir = write_config(tmp_path, [pair], section, own)
    return uplink, pair, confdir


def test_new_endpoint_gets_host_route_and_stale_ones_go(lab, tmp_path):
    uplink, pair, confdir = full_tunnel(lab, tmp_path)

    res, _ = run_cli(lab, "once", "--config-dir", confdir)

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == f"{LIVE}:51820"
    got = lab.router(["ip", "route", "get", LIVE]).stdout
    assert f"via {uplink.peer_addr} dev {uplink.router_if}" in got
    ours = lab.router(["ip", "route", "show", "proto", "186"]).stdout
    assert LIVE in ours and DEAD not in ours  # the route for the dead candidate was removed
    assert lab.ping_through_tunnel(pair)


def test_without_host_routes_the_new_endpoint_loops_into_the_tunnel(lab, tmp_path):
    _, pair, confdir = full_tunnel(lab, tmp_path, "config globals 'globals'\n\toption host_routes '0'\n")
    res, _ = run_cli(lab, "once", "--config-dir", confdir)
    assert res.returncode == 1  # shows the routes above are what makes it work
    assert endpoint(lab, pair) == f"{DEAD}:51820"


def test_daemon_routes_follow_switches_and_go_at_stop(lab, tmp_path):
    """Issue 8's reproducer: switch to the backup, switch back, stop; at each step only
    the route for the endpoint in use is left, and none after the stop."""
    import signal

    from tests.e2e.helpers import daemon, wait_for

    backup = "198.51.100.72"
    uplink, pair, confdir = full_tunnel(lab, tmp_path)
    lab.peer(["ip", "addr", "add", f"{backup}/32", "dev", "lo"])
    lab.set_dns({NAME: [LIVE, backup]})

    def ours() -> str:
        return lab.router(["ip", "route", "show", "proto", "186"]).stdout

    run_dir = tmp_path / "run"
    log = tmp_path / "daemon.log"
    with daemon(lab, confdir, run_dir, log) as proc:
        wait_for(lambda: endpoint(lab, pair) in (f"{LIVE}:51820", f"{backup}:51820"), 15,
                 "first endpoint")
        first = endpoint(lab, pair).split(":")[0]  # ICMP ranks: either may come first
        second = backup if first == LIVE else LIVE
        wait_for(lambda: first in ours(), 5, "first endpoint routed")
        for old, new in ((first, second), (second, first)):  # switch away, then back
            lab.peer(["ip", "addr", "del", f"{old}/32", "dev", "lo"])  # the server leaves
            proc.send_signal(signal.SIGUSR1)
            wait_for(lambda new=new: endpoint(lab, pair) == f"{new}:51820", 15,
                     f"switch to {new}")
            wait_for(lambda old=old: old not in ours(), 5, f"route for {old} removed")
            assert new in ours() and f"via {uplink.peer_addr}" in ours(), log.read_text()
            lab.peer(["ip", "addr", "add", f"{old}/32", "dev", "lo"])
        assert lab.ping_through_tunnel(pair)
    assert ours().strip() == ""  # stopped: nothing of ours is left
