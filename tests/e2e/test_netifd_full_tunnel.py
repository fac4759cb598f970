"""A full tunnel as netifd leaves it (openwrt-facts.md §10): its default route replaced the
uplink's in the kernel, so the uplink's gateway is known only to netifd. The daemon asks
netifd (a stand-in `ubus` answering `network.interface dump` in netifd's format, see
tests/netifd.py) and never probes a candidate through the tunnel it judges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import netifd
from tests.e2e.helpers import NAME, endpoint, peer_section, run_cli, write_config

pytestmark = pytest.mark.lab
LIVE, DEAD = "198.51.100.70", "198.51.100.71"
FAKE_UBUS = str(Path(__file__).parent.parent / "shell" / "netifd")


def as_netifd_leaves_it(lab, tmp_path, first: str, answer: list[str]):
    """wan up with `default via 192.0.2.2`; wg made by wireguard.sh with `first` (the first
    address DNS gave) and netifd's host route for it; then wg's route for 0.0.0.0/0,
    installed with replace semantics (system_rt, NLM_F_REPLACE), takes the default's place."""
    uplink = lab.add_link("wan", 4, "192.0.2.1", "192.0.2.2", 30)
    lab.set_dns({NAME: answer})
    pair = lab.add_wg_pair(51820, allowed_ips_router=["0.0.0.0/0"])
    for server in (LIVE, DEAD):  # the servers, off-link behind the uplink's gateway
        lab.peer(["ip", "addr", "add", f"{server}/32", "dev", "lo"])
    gw, dev, wg = uplink.peer_addr, uplink.router_if, pair.router_if
    lab.router(["ip", "route", "add", "default", "via", gw, "dev", dev, "proto", "static"])
    lab.set_endpoint(pair, f"{first}:51820")
    lab.router(["ip", "route", "add", first, "via", gw, "dev", dev, "proto", "static"])
    lab.router(["ip", "route", "replace", "default", "dev", wg, "proto", "static",
                "scope", "link"])
    table = lab.router(["ip", "route", "show"]).stdout
    assert f"default via {gw}" not in table and f"default dev {wg}" in table, table
    dump = tmp_path / "netifd-dump.json"
    dump.write_text(netifd.dump(
        netifd.Iface("wan", dev, "dhcp", addresses=[(uplink.router_addr, 30)], gateways=[gw]),
        netifd.Iface("wan6", dev, "dhcpv6", up=False),
        netifd.Iface("wg0", wg, "wireguard", addresses=[(pair.router_tunnel_ip, 32)])))
    env = {"PATH": f"{FAKE_UBUS}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
           "WG_ENDPOINTD_TEST_NETIFD_DUMP": str(dump)}
    section = peer_section(pair).replace(
        f"\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n",
        "\tlist allowed_ips '0.0.0.0/0'\n\toption route_allowed_ips '1'\n")
    return uplink, pair, write_config(tmp_path, [pair], section), env


def drop_outside(lab, uplink, address: str) -> None:
    """The server's address is dead from outside; through the tunnel it still answers."""
    lab.peer(["nft", "add", "table", "inet", "wgetest"])
    lab.peer(["nft", "add", "chain", "inet", "wgetest", "in",
              "{ type filter hook prerouting priority -150 ; }"])
    lab.peer(["nft", "add", "rule", "inet", "wgetest", "in", "iifname", uplink.peer_if,
              "ip", "daddr", address, "drop"])


def ours(lab) -> str:
    return lab.router(["ip", "route", "show", "proto", "186"]).stdout


def test_new_endpoint_is_routed_through_the_gateway_netifd_knows(lab, tmp_path):
    uplink, pair, confdir, env = as_netifd_leaves_it(lab, tmp_path, DEAD, [DEAD, LIVE])
    drop_outside(lab, uplink, DEAD)

    res, _ = run_cli(lab, "once", "--config-dir", confdir, env=env)

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == f"{LIVE}:51820"
    assert f"via {uplink.peer_addr} dev {uplink.router_if}" in lab.router(
        ["ip", "route", "get", LIVE]).stdout
    assert LIVE in ours(lab) and DEAD not in ours(lab)
    assert "(uplink wan)" in res.stderr
    # netifd's own host route is left as netifd made it
    assert "proto static" in lab.router(["ip", "route", "show", DEAD]).stdout
    assert lab.ping_through_tunnel(pair)


def test_without_netifd_the_kernel_has_no_way_out_and_nothing_loops(lab, tmp_path):
    """The same router, asked without ubus: the kernel alone no longer knows the gateway
    (shows that netifd's answer is what makes the switch above work)."""
    uplink, pair, confdir, _ = as_netifd_leaves_it(lab, tmp_path, DEAD, [DEAD, LIVE])
    drop_outside(lab, uplink, DEAD)

    res, _ = run_cli(lab, "once", "--config-dir", confdir)

    assert res.returncode == 1
    assert "no uplink outside the tunnel" in res.stderr
    assert endpoint(lab, pair) == f"{DEAD}:51820" and ours(lab).strip() == ""


def test_a_candidate_is_never_pinged_through_the_tunnel_it_judges(lab, tmp_path):
    """The tunnel works on LIVE and owns the default route. DEAD is dead from outside but
    answers ping through the tunnel: a probe sent that way would rank it alive. The
    daemon pings it through the uplink (a host route only for the probe) and sees it dead."""
    uplink, pair, confdir, env = as_netifd_leaves_it(lab, tmp_path, LIVE, [LIVE, DEAD])
    drop_outside(lab, uplink, DEAD)
    assert lab.ping_through_tunnel(pair)
    assert lab.router(["ping", "-c1", "-W1", DEAD], check=False).returncode == 0  # via wg

    res, _ = run_cli(lab, "once", "--config-dir", confdir, "-v", env=env)

    assert res.returncode == 0, res.stderr
    assert f"{DEAD}:51820 (no ping reply)" in res.stderr, res.stderr
    assert f"{LIVE}:51820 (no ping reply)" not in res.stderr
    assert endpoint(lab, pair) == f"{LIVE}:51820"
    assert ours(lab).strip() == ""  # the probe's route went with the probe
