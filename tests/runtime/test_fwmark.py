"""wg-quick full tunnels (PeerConfig.fwmark): every probe to a peer's candidates carries the
fwmark, the route checks ask for the marked path, no host route is made for such a peer,
and peers without a fwmark are probed unmarked, as before."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket

import pytest

from tests.fakes import FakeClock, FakeProber, FakeWg, resolver
from tests.runtime.test_engine import DNS, K1, K2, V4, V4B, V6, V6B, FakeRoutes, dump, peer
from wg_endpointd.core import state as st
from wg_endpointd.core.options import Settings
from wg_endpointd.core.outcome import peer_id
from wg_endpointd.runtime import failback
from wg_endpointd.runtime.engine import Engine
from wg_endpointd.system.net import SO_MARK, route_usable
from wg_endpointd.system.tunnel import TunnelSender

MARK = 51820
FULL = ("0.0.0.0/0", "::/0")


def full(**kw):
    """A wg-quick full tunnel's peer: default routes only, routed, with the fwmark."""
    return peer(allowed_ips=FULL, route_allowed_ips=True, probe_address=None, fwmark=MARK, **kw)


def make(wg, prober, routes=None, route_ok=lambda a: True, marked_route=None):
    clock = FakeClock()
    eng = Engine(wg, prober, resolve=resolver(DNS), route_ok=route_ok, kick=wg.kick,
                 clock=clock, sleep=clock.sleep, poll=0.02, marked_route=marked_route,
                 subnets=lambda iface: [ipaddress.ip_interface("10.99.0.2/24")])
    eng.routes = routes
    return eng


def test_full_tunnel_probes_carry_the_mark_and_no_host_route_is_made():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    prober, routes = FakeProber({V4.address: 1.0}), FakeRoutes()
    [out] = make(wg, prober, routes).round([full()])
    assert out.status == "switched" and out.endpoint == V4
    assert prober.calls == [[[V6.address, V4.address, V6B.address, V4B.address]]]
    assert prober.marks == [[MARK]]  # every candidate probed, all with the mark
    assert [op for op, _ in routes.log if op in ("ensure", "probe")] == []  # no host route


def test_without_a_fwmark_probes_are_unmarked():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    prober = FakeProber({V4.address: 1.0})
    make(wg, prober).round([peer()])
    assert prober.marks == [[0]]


def test_each_group_carries_its_own_peers_mark():
    wg = FakeWg({"wg0": {K1: dump()}, "wg1": {K2: dump(key=K2)}}, working={V4})
    prober = FakeProber({V4.address: 1.0})
    make(wg, prober).round([full(), peer(key=K2, iface="wg1")])
    assert prober.marks == [[MARK, 0]] and len(prober.calls[0]) == 2


def test_route_checks_ask_for_the_marked_path():
    """Only IPv4 leaves outside the tunnel for marked packets (the unmarked lookup would
    find the tunnel's ::/0): the IPv6 candidates are dropped, the current one is dead."""
    asked = []

    def marked(address, mark):
        asked.append((address, mark))
        return ":" not in address

    wg = FakeWg({"wg0": {K1: dump()}}, working={V4, V6})
    prober = FakeProber({V4.address: 1.0, V6.address: 1.0})
    [out] = make(wg, prober, marked_route=marked).round([full()])
    assert out.endpoint == V4 and {m for _, m in asked} == {MARK}
    assert {a for a, _ in asked} >= {V6.address, V4.address, V6B.address, V4B.address}
    assert prober.calls == [[[V4.address, V4B.address]]]


def test_failback_probes_carry_the_mark():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4)}}, working={V4, V6})
    prober = FakeProber({V6.address: 1.0, V4.address: 1.0})
    eng = make(wg, prober, FakeRoutes())
    p = full()
    states = {peer_id(p): st.PeerState(phase=st.FALLBACK, endpoint=V4, candidates=(V6, V4))}
    tries = []
    failback.run([p], states, Settings(failback_hold=60), eng, 1000.0,
                 lambda peer, order: tries.append(order))
    assert prober.calls == [[[V6.address], [V4.address]]] and prober.marks == [[MARK, MARK]]


def test_failback_of_a_peer_without_fwmark_is_unmarked():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4)}}, working={V4, V6})
    prober = FakeProber({V6.address: 1.0, V4.address: 1.0})
    p = dataclasses.replace(peer(), family="ipv6")
    states = {peer_id(p): st.PeerState(phase=st.FALLBACK, endpoint=V4, candidates=(V6, V4))}
    failback.run([p], states, Settings(failback_hold=60), make(wg, prober), 1000.0,
                 lambda peer, order: None)
    assert prober.marks == [[0, 0]]


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_BINDTODEVICE and SO_MARK need root")
def test_datagrams_into_the_tunnel_are_never_marked():
    sender = TunnelSender()
    try:
        assert sender("lo", "127.0.0.1")
        sock = sender._socks[("lo", socket.AF_INET)]
        assert sock.getsockopt(socket.SOL_SOCKET, SO_MARK) == 0
    finally:
        sender.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_MARK needs CAP_NET_ADMIN")
def test_marked_route_lookup_works_where_the_unmarked_one_does():
    assert route_usable("127.0.0.1", MARK) and route_usable("127.0.0.1")
