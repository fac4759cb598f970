"""Smoke test of the lab itself: tunnel over IPv6, path blocking, NAT emulation, DNS."""

from __future__ import annotations

import pytest

from tests.lab import Lab, Link, WgPair

pytestmark = pytest.mark.lab


def _two_links(lab: Lab) -> tuple[Link, Link]:
    v4 = lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30)
    v6 = lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64)
    return v4, v6


def _handshake(lab: Lab, pair: WgPair) -> int:
    return int(lab.wg_dump(pair)[4])


def test_tunnel_over_ipv6_and_udp_block(lab: Lab) -> None:
    v4, v6 = _two_links(lab)
    pair = lab.add_wg_pair()
    assert lab.wg_dump(pair)[2] == "(none)"  # router starts with no endpoint
    assert _handshake(lab, pair) == 0

    lab.set_endpoint(pair, v6.endpoint(pair.peer_port))
    assert lab.ping_through_tunnel(pair, timeout=5)
    fields = lab.wg_dump(pair)
    assert int(fields[4]) > 0
    assert fields[2] == f"[{v6.peer_addr}]:{pair.peer_port}"

    # UDP blocked on the v6 link: ICMP still answers, a fresh handshake fails.
    lab.block(v6, "udp")
    assert lab.router(["ping", "-6", "-n", "-c1", "-W1", v6.peer_addr], check=False).returncode == 0
    lab.reset_router_peer(pair)  # no session, no rate limit; endpoint kept
    assert not lab.ping_through_tunnel(pair, timeout=1.5)
    assert _handshake(lab, pair) == 0

    # "all" also kills ICMP; v4 still works through the same pair.
    lab.block(v6, "all")
    assert lab.router(["ping", "-6", "-n", "-c1", "-W1", v6.peer_addr], check=False).returncode != 0
    lab.reset_router_peer(pair, v4.endpoint(pair.peer_port))
    assert lab.ping_through_tunnel(pair, timeout=5)
    assert _handshake(lab, pair) > 0

    # Unblocked again: v6 handshakes.
    lab.unblock(v6)
    lab.reset_router_peer(pair, v6.endpoint(pair.peer_port))
    assert lab.ping_through_tunnel(pair, timeout=5)
    assert _handshake(lab, pair) > 0


def test_peer_cannot_initiate_behind_nat(lab: Lab) -> None:
    v4 = lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30)
    nat = lab.add_wg_pair(51820)  # default: peer's initiations dropped
    open_ = lab.add_wg_pair(51821, block_peer_initiation=False)
    for pair, expect in ((nat, False), (open_, True)):
        port = lab.router(["wg", "show", pair.router_if, "listen-port"]).stdout.strip()
        lab.peer(
            [
                "wg",
                "set",
                pair.peer_if,
                "peer",
                pair.router_public,
                "endpoint",
                f"{v4.router_addr}:{port}",
            ]
        )
        res = lab.peer(["ping", "-n", "-c1", "-W1", pair.router_tunnel_ip], check=False)
        assert (res.returncode == 0) is expect, pair.router_if


def test_dns_records(lab: Lab) -> None:
    v4, v6 = _two_links(lab)
    lab.set_dns({"peer.wg.test": [v6.peer_addr, v4.peer_addr]})
    out = lab.router(["getent", "ahosts", "peer.wg.test"]).stdout
    assert {line.split()[0] for line in out.splitlines()} == {v6.peer_addr, v4.peer_addr}

    # DNS keeps working through a block on its own link; records can change.
    lab.block(v4, "all")
    lab.set_dns({"peer.wg.test": [v6.peer_addr]})
    out = lab.router(["getent", "ahosts", "peer.wg.test"]).stdout
    assert {line.split()[0] for line in out.splitlines()} == {v6.peer_addr}
    assert lab.router(["ping", "-n", "-c1", "-W1", v4.peer_addr], check=False).returncode != 0
