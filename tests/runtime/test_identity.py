"""Issue 7: a peer is (interface, key); a switch never writes back a stale picture."""

import dataclasses

from tests.fakes import FakeProber, FakeWg
from tests.runtime.test_engine import DNS, K1, V4, V6, dump, engine, peer
from wg_endpointd.core.model import PeerDump
from wg_endpointd.runtime.verify import changed

PSK = "P" * 43 + "="


def test_same_key_on_two_interfaces_is_two_peers():
    """wg0's path is dead, wg1's works; only wg0 is reset, from wg0's own attributes."""
    wg0 = PeerDump(K1, V6, ("198.51.100.129/32", "198.51.100.200/32", "2001:db8:ffff::1/128"),
                   1_699_999_000, 500, 900, None, PSK)
    wg1 = PeerDump(K1, V4, ("198.51.100.131/32",), 1_699_999_000, 500, 900, 7, None)
    wg = FakeWg({"wg0": {K1: wg0}, "wg1": {K1: wg1}}, working={V4})
    eng, _ = engine(wg, FakeProber({V4.address: 1.0}), table=DNS)
    peers = [peer(), peer(iface="wg1", allowed_ips=("198.51.100.131/32",),
                          probe_address="198.51.100.131")]
    outs = eng.round(peers)
    assert [(o.peer.interface, o.status) for o in outs] == [("wg0", "switched"), ("wg1", "healthy")]
    assert [iface for iface, _ in wg.resets] == ["wg0"]
    after = wg.ifaces["wg0"][K1]
    assert after.endpoint == V4 and after.settings() == wg0.settings()  # psk, 3 IPs, keepalive off
    assert wg.ifaces["wg1"][K1].settings() == wg1.settings()
    assert wg.ifaces["wg1"][K1].endpoint == V4


class EditingWg(FakeWg):
    """A user (or netifd) edits the peer right after the daemon's first reset."""

    def __init__(self, *a, edit, **kw):
        super().__init__(*a, **kw)
        self.edit = edit

    def reset(self, iface, resets):
        super().reset(iface, resets)
        if len(self.resets) == 1:
            self.edit(self.ifaces[iface])


def test_peer_removed_during_verification_is_not_recreated(caplog):
    wg = EditingWg({"wg0": {K1: dump()}}, working=set(), edit=lambda peers: peers.pop(K1))
    eng, _ = engine(wg, FakeProber({}))
    [out] = eng.round([peer()])
    assert K1 not in wg.ifaces["wg0"]
    assert len(wg.resets) == 1 and out.status == "dropped"
    assert "removed" in out.detail
    assert sum("removed during a switch" in r.message for r in caplog.records) == 1


def test_allowed_ips_changed_during_verification_are_kept():
    def edit(peers):
        peers[K1] = dataclasses.replace(peers[K1], allowed_ips=("198.51.100.77/32",),
                                        keepalive=15)

    wg = EditingWg({"wg0": {K1: dump()}}, working=set(), edit=edit)
    eng, _ = engine(wg, FakeProber({}))
    [out] = eng.round([peer()])
    now = wg.ifaces["wg0"][K1]
    assert now.allowed_ips == ("198.51.100.77/32",) and now.keepalive == 15
    assert len(wg.resets) == 1 and out.status == "dropped"
    assert "allowed IPs, keepalive changed" in out.detail


def test_changed_ignores_endpoint_and_counters_and_allowed_ips_order():
    a = PeerDump(K1, V6, ("198.51.100.1/32", "2001:db8::/64"), 0, 0, 0, None, PSK)
    b = dataclasses.replace(a, endpoint=V4, rx_bytes=9, latest_handshake=5,
                            allowed_ips=("2001:db8::/64", "198.51.100.1/32"))
    assert changed(a, b) is None
    assert changed(a, None) == "the peer was removed"
    assert changed(a, dataclasses.replace(a, preshared_key=None)) == "its preshared key changed"


def test_verification_wait_is_sized_from_what_is_known():
    from tests.fakes import FakeClock
    from wg_endpointd.core.model import Endpoint
    from wg_endpointd.runtime.verify import MIN_WAIT, Job, Verifier

    v = Verifier(None, FakeClock(), lambda s: None, 0.01, lambda i: {}, lambda: False)
    p = peer(verify_timeout=2.0)
    job = Job(p, dump(), (V4, Endpoint("192.0.2.77", 51820)), "test")
    assert v.wait_for(job) == 2.0  # nothing known: the full wait
    v.rtts[V4.address] = 40.0  # ICMP round trip 40 ms
    assert abs(v.wait_for(job) - MIN_WAIT) < 1e-9  # a few round trips, but not under 0.5 s
    v.rtts[V4.address] = 400.0
    assert abs(v.wait_for(job) - 1.8) < 1e-9
    job.index = 1  # a candidate that answers no ping: what the last switch took
    v.learned[(p.interface, p.public_key)] = 0.03
    assert v.wait_for(job) == MIN_WAIT
