import dataclasses

from tests.fakes import FakeClock, FakeProber, FakeWg, resolver
from wg_endpointd.config import HostSpec, PeerConfig
from wg_endpointd.core import waits
from wg_endpointd.core.errors import ProbeSetupError
from wg_endpointd.core.model import Endpoint, PeerDump
from wg_endpointd.runtime.engine import Engine

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
V6 = Endpoint("2001:db8:1::2", 51820)
V6B = Endpoint("2001:db8:2::2", 51820)
V4 = Endpoint("192.0.2.2", 51820)
V4B = Endpoint("198.51.100.2", 51820)
DNS = {"peer.wg.test": [V6.address, V4.address, V6B.address, V4B.address]}


def peer(key=K1, iface="wg0", **kw):
    base = PeerConfig(interface=iface, public_key=key, section="@wireguard_wg0[0]",
                      endpoint_host="peer.wg.test", hosts=(HostSpec("peer.wg.test", 51820),),
                      allowed_ips=("198.51.100.129/32",), probe_address="198.51.100.129")
    return dataclasses.replace(base, **kw)


def dump(key=K1, endpoint=V6, handshake=1_699_999_000, rx=500):
    return PeerDump(key, endpoint, ("198.51.100.129/32",), handshake, rx, 900, None, None)


def engine(wg, prober, table=DNS, clock=None, route_ok=lambda a: True, **kw):
    clock = clock or FakeClock()
    return Engine(wg, prober, resolve=resolver(table), route_ok=route_ok, kick=wg.kick,
                  clock=clock, sleep=clock.sleep, poll=0.02, **kw), clock


def test_dead_ipv6_moves_to_ipv4_that_answers_ping():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4, V4B})
    eng, clock = engine(wg, FakeProber({V4.address: 3.0, V4B.address: 9.0}))
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4
    assert wg.resets == [("wg0", [(K1, V4)])]
    assert clock.now - 1000 < 1.5  # liveness window + one verification


def test_ping_is_only_a_hint_silent_candidate_still_found():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4B})
    eng, _ = engine(wg, FakeProber({V6B.address: 1.0}))
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4B
    tried = [ep for _, batch in wg.resets for _, ep in batch]
    assert tried[0] == V6B and tried[-1] == V4B and V4B not in tried[:-1]


def test_ping_answering_but_wg_blocked_is_not_chosen():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    eng, _ = engine(wg, FakeProber({V6.address: 1.0, V6B.address: 1.0, V4.address: 2.0}))
    [out] = eng.round([peer()])
    assert out.endpoint == V4 and out.status == "switched"


def test_healthy_current_endpoint_is_untouched_even_if_not_first():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4B)}}, working={V6, V4, V6B, V4B})
    eng, _ = engine(wg, FakeProber({a: 1.0 for a in DNS["peer.wg.test"]}))
    [out] = eng.round([peer()])
    assert out.status == "healthy" and out.endpoint == V4B
    assert wg.resets == []


def test_nothing_works_restores_original_endpoint():
    wg = FakeWg({"wg0": {K1: dump()}}, working=set())
    eng, _ = engine(wg, FakeProber({}))
    [out] = eng.round([peer(verify_timeout=0.5)])
    assert out.status == "failed" and not out.ok
    assert wg.resets[-1] == ("wg0", [(K1, V6)])
    assert wg.ifaces["wg0"][K1].endpoint == V6


def test_dns_failure_keeps_current_endpoint():
    wg = FakeWg({"wg0": {K1: dump()}}, working=set())
    eng, _ = engine(wg, FakeProber({}), table={})
    [out] = eng.round([peer()])
    assert out.endpoint == V6 and wg.resets == [] and not out.ok


def test_unusable_family_is_skipped_without_probing():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    prober = FakeProber({V4.address: 1.0})
    eng, _ = engine(wg, prober, route_ok=lambda a: ":" not in a)
    [out] = eng.round([peer()])
    assert out.endpoint == V4
    assert prober.calls == [[[V4.address, V4B.address]]]


def test_broken_peer_does_not_stop_others():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}))
    outs = eng.round([peer(K2, iface="wg9"), peer()])
    assert outs[0].status == "error" and "wg9" in outs[0].detail
    assert outs[1].status == "switched"


def test_peer_missing_from_interface_is_an_error():
    wg = FakeWg({"wg0": {}}, working=set())
    eng, _ = engine(wg, FakeProber({}))
    [out] = eng.round([peer()])
    assert out.status == "error" and "not on wg0" in out.detail


def test_dry_run_changes_nothing():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}))
    [out] = eng.round([peer()], dry_run=True)
    assert out.status == "would-switch" and wg.resets == []


def test_probe_permission_error_degrades_to_unranked():
    class NoPerm:
        def probe(self, groups, timeout, marks=()):
            raise ProbeSetupError("no permission for ICMP sockets")

    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    eng, _ = engine(wg, NoPerm())
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4


def test_many_peers_verify_in_parallel():
    keys = [f"{i:042d}"[:42].replace("0", "A") + "A=" for i in range(50)]
    keys = [k[:40] + f"{i:02d}" + "A=" for i, k in enumerate(keys)]
    peers = {k: dump(key=k) for k in keys}
    wg = FakeWg({"wg0": peers}, working={V4})
    eng, clock = engine(wg, FakeProber({V4.address: 1.0}))
    outs = eng.round([peer(k) for k in keys])
    assert all(o.status == "switched" for o in outs)
    assert len(wg.resets) == 1 and len(wg.resets[0][1]) == 50
    assert clock.now - 1000 < 1.5


class FakeRoutes:
    def __init__(self):
        self.log = []

    def ensure(self, key, iface, address, probe=False):
        self.log.append(("probe" if probe else "ensure", address))
        return True

    def end_probes(self, key, keep):
        self.log.append(("end_probes", keep))

    def retain(self, key, keep):
        self.log.append(("retain", keep))


def test_full_tunnel_routes_each_candidate_before_trying_it():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4B})
    routes = FakeRoutes()
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}))
    eng.routes = routes
    full = peer(allowed_ips=("0.0.0.0/0", "::/0"), route_allowed_ips=True)
    [out] = eng.round([full])
    assert out.endpoint == V4B
    ensured = [a for op, a in routes.log if op == "ensure"]
    tried = [ep.address for _, batch in wg.resets for _, ep in batch]
    assert ensured == tried  # every candidate routed before WireGuard was pointed at it
    assert routes.log[-1] == ("retain", V4B.address)


def test_split_tunnel_needs_no_routes():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    routes = FakeRoutes()
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}))
    eng.routes = routes
    eng.round([peer()])
    assert [op for op, _ in routes.log] == ["end_probes", "retain"]  # no route made


def test_stop_during_verification_restores_the_original():
    wg = FakeWg({"wg0": {K1: dump()}}, working=set())
    eng, _ = engine(wg, FakeProber({}))
    eng.stopping = lambda: bool(wg.resets)  # SIGTERM once the first trial is under way
    [out] = eng.round([peer(verify_timeout=5.0)])
    assert out.status == "interrupted" and "restored" in out.detail
    assert len(wg.resets) == 2  # the trial, then the original put back
    assert wg.ifaces["wg0"][K1].endpoint == V6


def test_stop_after_the_try_verified_keeps_it():
    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}))
    eng.stopping = lambda: bool(wg.resets)  # SIGTERM right after the switch to V4
    [out] = eng.round([peer(verify_timeout=5.0)])
    assert out.status == "switched" and out.endpoint == V4
    assert len(wg.resets) == 1 and wg.ifaces["wg0"][K1].endpoint == V4  # not put back


def test_stop_before_switching_changes_nothing():
    wg = FakeWg({"wg0": {K1: dump()}}, working=set())
    eng, _ = engine(wg, FakeProber({}))
    eng.stopping = lambda: True
    [out] = eng.round([peer(verify_timeout=5.0)])
    assert out.status == "interrupted" and wg.resets == []


# -- waits sized from what is known (wg_endpointd.core.waits) ------------------------------

NOW = 1_700_000_000


def tried(wg):
    return [ep for _, batch in wg.resets for _, ep in batch]


def test_no_ping_and_no_session_does_not_wait_for_the_probe_timeout():
    wg = FakeWg({"wg0": {K1: dump(handshake=0)}}, working={V4})
    prober = FakeProber({})  # nothing answers ping
    eng, clock = engine(wg, prober)
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4
    assert prober.timeouts == [waits.QUIET_WAIT]  # not the 1 s probe timeout
    assert tried(wg)[0] == V4  # the dead, silent current endpoint is not tried first
    assert clock.now - 1000 < 0.7


def test_no_ping_but_a_live_session_gets_a_round_trip_wait_not_the_probe_timeout():
    wg = FakeWg({"wg0": {K1: dump(handshake=NOW - 30)}}, working={V4})
    prober = FakeProber({})
    eng, clock = engine(wg, prober, wall=lambda: NOW)
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4
    assert prober.timeouts == [waits.SESSION_WAIT]
    # a session is not reset on a guess: a live peer's answer had a round trip's time
    assert waits.SESSION_WAIT <= clock.now - 1000 < 1.0


def test_last_handshake_time_sizes_liveness_without_ping():
    wg = FakeWg({"wg0": {K1: dump(handshake=NOW - 30)}}, working={V4})
    prober = FakeProber({})
    eng, clock = engine(wg, prober, wall=lambda: NOW)
    eng.verifier.learned[("wg0", K1)] = 0.05  # the last switch verified in 50 ms
    [out] = eng.round([peer()])
    assert out.endpoint == V4
    assert prober.timeouts == [max(0.2, waits.PROBE_FLOOR)]  # 2 x 50 ms + 0.1, floored
    assert clock.now - 1000 < 0.5


def test_a_failed_candidate_gives_way_at_its_deadline():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V6B)}}, working={V4})
    at = []
    reset = wg.reset
    wg.reset = lambda iface, resets: (at.append(clock.now), reset(iface, resets))
    eng, clock = engine(wg, FakeProber({V6.address: 1.0, V4.address: 2.0}))
    [out] = eng.round([peer()])
    assert out.endpoint == V4 and tried(wg)[:2] == [V6, V4]
    assert abs(at[1] - at[0] - waits.MIN_WAIT) < 0.01  # not the next 0.1 s poll


class SessionLost(FakeWg):
    """The peer restarted: a datagram on the old session gets no answer."""

    def kick(self, iface, address):
        return True


def test_peer_that_lost_its_session_gets_its_address_back_first():
    wg = SessionLost({"wg0": {K1: dump(handshake=NOW - 30)}}, working={V6, V4})
    eng, _ = engine(wg, FakeProber({V6.address: 1.0, V4.address: 1.0}), wall=lambda: NOW)
    [out] = eng.round([peer()])
    assert tried(wg) == [V6]  # answers ping: keeps its rank; a fresh handshake works
    assert out.status == "healthy" and out.endpoint == V6


def test_peer_that_lost_its_session_and_answers_no_ping_is_retried_last():
    wg = SessionLost({"wg0": {K1: dump(handshake=NOW - 30)}}, working={V6})
    eng, _ = engine(wg, FakeProber({}), wall=lambda: NOW)
    [out] = eng.round([peer(verify_timeout=0.5)])
    assert tried(wg)[-1] == V6 and out.status == "healthy" and out.endpoint == V6


def test_a_peer_that_cannot_be_tested_still_gets_the_full_icmp_wait():
    untestable = dataclasses.replace(dump(handshake=0), allowed_ips=("0.0.0.0/0",))
    wg = FakeWg({"wg0": {K1: untestable}}, working={V4})
    prober = FakeProber({})
    eng, _ = engine(wg, prober, subnets=lambda iface: [])
    full = peer(allowed_ips=("0.0.0.0/0",), probe_address=None)
    [out] = eng.round([full])
    assert prober.timeouts == [1.0] and out.endpoint == V4


def test_recreated_interface_unproven_endpoint_goes_after_answering_candidates_shortly():
    """netifd made the interface anew (openwrt-facts.md §10): the peer sits on UCI's first
    address, never verified, no session, no ping reply. Candidates that answer ping go
    first, and the unproven address gets QUIET_WAIT at most, not the verify_timeout."""
    wg = FakeWg({"wg0": {K1: dump(endpoint=V6, handshake=0, rx=0)}}, working={V4})
    eng, clock = engine(wg, FakeProber({V4.address: 2.0}))
    eng.remembered[("wg0", K1)] = V6B  # verified before the uplink went away; dead now
    [out] = eng.round([peer(verify_timeout=2.0)])
    assert tried(wg)[0] == V4 and out.status == "switched" and out.endpoint == V4
    assert clock.now - 1000 < 1.0


def test_recreated_interface_unproven_endpoint_gets_the_short_wait_when_tried():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V6, handshake=0, rx=0)}}, working=set())
    eng, _ = engine(wg, FakeProber({}))
    eng.remembered[("wg0", K1)] = V4
    waits_seen = []
    real = eng.verifier.wait_for
    eng.verifier.wait_for = lambda job: waits_seen.append((job.trying, real(job))) or real(job)
    [out] = eng.round([peer(verify_timeout=2.0)])
    assert out.status == "failed" and tried(wg)[-2:] == [V6, V6]  # last, then restored
    assert (V6, waits.QUIET_WAIT) in waits_seen  # UCI's address: short
    assert (V6B, 2.0) in waits_seen  # the others, with nothing known: the full wait


class NoWayOut(FakeRoutes):
    """Routes that cannot take 2001:db8:2::2 out of the tunnel (no uplink for it)."""

    def ensure(self, key, iface, address, probe=False):
        super().ensure(key, iface, address, probe)
        return address != V6B.address


def test_full_tunnel_candidates_are_pinged_only_once_routed_outside_the_tunnel():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4)}}, working={V4})
    prober, routes = FakeProber({}), NoWayOut()
    eng, _ = engine(wg, prober)
    eng.routes = routes
    full = peer(allowed_ips=("0.0.0.0/0", "::/0"), route_allowed_ips=True)
    eng.round([full])
    assert prober.calls[0] == [[V6.address, V4.address, V4B.address]]  # not V6B
    probed = [a for op, a in routes.log if op == "probe"]
    assert probed == DNS["peer.wg.test"]  # routed first, each one
    assert routes.log.index(("end_probes", V4.address)) > len(probed) - 1


def test_full_tunnel_without_host_routes_pings_none_of_its_covered_candidates():
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4)}}, working={V4})
    prober = FakeProber({})
    eng, _ = engine(wg, prober)
    eng.round([peer(allowed_ips=("0.0.0.0/0",), route_allowed_ips=True)])
    assert prober.calls[0] == [[V6.address, V6B.address]]  # IPv6 is not in its tunnel


# -- addresses that are never a remote endpoint (issue 18) ---------------------------------

OWN_V4, OWN_V6 = "203.0.113.7", "2001:db8:77::1"  # this host's own, in the tests below
BOGUS = ["127.0.0.1", "::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255",
         "169.254.1.1", "fe80::1", OWN_V4, OWN_V6, "203.0.113.255"]


def own_addresses():
    import ipaddress

    return [ipaddress.ip_interface(f"{OWN_V4}/24"), ipaddress.ip_interface(f"{OWN_V6}/64")]


def test_bogus_dns_answers_are_neither_probed_nor_tried(caplog):
    """DNS answers loopback, unspecified, multicast, broadcast, link-local and this host's
    own addresses first, each with a 0.05 ms "ping": none costs the round any time."""
    import logging

    wg = FakeWg({"wg0": {K1: dump()}}, working={V4})
    prober = FakeProber({**{a: 0.05 for a in BOGUS}, V4.address: 3.0})
    routed: list[str] = []
    eng, clock = engine(wg, prober, table={"peer.wg.test": [*BOGUS, V4.address]},
                        route_ok=lambda a: routed.append(a) or True, local=own_addresses)
    with caplog.at_level(logging.DEBUG, logger="wg_endpointd.runtime.engine"):
        [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4
    assert tried(wg) == [V4] and out.candidates == (V4,)
    assert not {a for call in prober.calls for group in call for a in group} & set(BOGUS)
    assert not set(routed) & set(BOGUS)  # not even a route lookup
    assert clock.now - 1000 < 1.5  # as with V4 alone (test_dead_ipv6_moves_to_ipv4...)
    skipped = [r.getMessage() for r in caplog.records if " skipped: " in r.getMessage()]
    assert len(skipped) == len(BOGUS) and all(r.startswith("wg0/") for r in skipped)
    assert "wg0/Va59Y/gE: 127.0.0.1 skipped: a loopback address" in skipped
    assert f"wg0/Va59Y/gE: {OWN_V4} skipped: an address of this host" in skipped
    assert all(r.levelno == logging.DEBUG for r in caplog.records if " skipped: " in r.getMessage())


def test_only_bogus_answers_leave_the_current_endpoint_alone():
    wg = FakeWg({"wg0": {K1: dump()}}, working=set())
    eng, clock = engine(wg, FakeProber({a: 0.05 for a in BOGUS}),
                        table={"peer.wg.test": BOGUS}, local=own_addresses)
    [out] = eng.round([peer()])
    assert wg.resets == [] and out.endpoint == V6 and out.candidates == ()
    assert clock.now - 1000 < 1.5


def test_a_bogus_address_is_reported_for_each_peer_that_has_it(caplog):
    import logging

    wg = FakeWg({"wg0": {K1: dump(), K2: dump(key=K2)}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}),
                    table={"peer.wg.test": ["127.0.0.1", V4.address]})
    with caplog.at_level(logging.DEBUG, logger="wg_endpointd.runtime.engine"):
        outs = eng.round([peer(), peer(K2)])
    assert [o.endpoint for o in outs] == [V4, V4]
    skipped = sorted(r.getMessage() for r in caplog.records if " skipped: " in r.getMessage())
    assert skipped == ["wg0/HbTz4YbS: 127.0.0.1 skipped: a loopback address",
                       "wg0/Va59Y/gE: 127.0.0.1 skipped: a loopback address"]


def test_own_addresses_are_read_each_round():
    import ipaddress

    mine = [ipaddress.ip_interface(f"{V4.address}/24")]
    wg = FakeWg({"wg0": {K1: dump(endpoint=V4B)}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}), table={"peer.wg.test": [V4.address]},
                    local=lambda: list(mine))
    [out] = eng.round([peer(verify_timeout=0.5)])
    assert tried(wg) == [] and out.candidates == ()  # V4 was this host's own
    mine.clear()  # the address moved away from this host
    [out] = eng.round([peer()])
    assert out.status == "switched" and out.endpoint == V4


def test_own_addresses_come_from_the_host_unless_its_routes_are_faked():
    from wg_endpointd.system import net

    wg = FakeWg({}, working=set())
    assert Engine(wg, FakeProber({})).local is net.local_addresses
    assert Engine(wg, FakeProber({}), route_ok=lambda a: True).local() == []


def test_late_dns_answers_join_the_next_round():
    """Issue 18: an answer that came after a round (net.resolve_many's `late`) replaces
    the last known addresses at the next round, even while DNS is slow again."""
    from wg_endpointd.system import net

    wg = FakeWg({"wg0": {K1: dump(endpoint=V4)}}, working={V4})
    eng, _ = engine(wg, FakeProber({}))
    eng.last_resolved["peer.wg.test"] = [V4.address]
    eng.late["peer.wg.test"] = [V4B.address]
    eng.resolve = lambda hosts: {h: net.ResolvePending(f"{h}: no answer yet") for h in hosts}
    found = eng.candidates([peer()])
    assert found[("wg0", K1)] == [V4B] and eng.late == {}


def test_a_name_with_fifty_dead_addresses_costs_a_few_waits_a_round(caplog):
    """Issue 18: 50 dead addresses were tried one after the other (101.6 s for `once`);
    a round now tries a few and says so, and the next round tries others."""
    import logging

    many = {"peer.wg.test": [f"198.51.100.{i}" for i in range(1, 51)]}
    wg = FakeWg({"wg0": {K1: dump(endpoint=Endpoint("198.51.100.1", 51820), handshake=0,
                                  rx=0)}}, working=set())
    eng, clock = engine(wg, FakeProber({}), table=many)
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    [out] = eng.round([peer(verify_timeout=2.0)])
    first = set(tried(wg))
    assert out.status == "failed" and clock.now - 1000 <= 4 * 2.0 + 1.5
    assert "trying 4 of 50 candidates this round" in caplog.text
    wg.resets.clear()
    eng.round([peer(verify_timeout=2.0)])
    assert set(tried(wg)) - first  # others got their turn
