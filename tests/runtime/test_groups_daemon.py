"""Standby groups in the daemon loop, with a scripted WireGuard that moves allowed IPs as
WireGuard does, an injected clock and a fake prober."""

import dataclasses
import ipaddress
import json

from tests.fakes import FakeClock, FakeProber, FakeWg, resolver
from wg_endpointd import cli
from wg_endpointd.config import Config, HostSpec, PeerConfig, Settings
from wg_endpointd.config.groupconf import GroupConfig
from wg_endpointd.core import liveness as lv
from wg_endpointd.core.model import Endpoint, PeerDump
from wg_endpointd.runtime import status
from wg_endpointd.runtime.daemon import Daemon
from wg_endpointd.runtime.engine import Engine
from wg_endpointd.system.rundir import RunDir

KA = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
KB = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
EA, EB = Endpoint("192.0.2.2", 51820), Endpoint("192.0.2.6", 51821)
GW = "198.51.100.129"
MOVING = (f"{GW}/32",)


class GroupWg(FakeWg):
    """FakeWg plus `wg set … allowed-ips`; datagrams reach the peer holding the address."""

    def __init__(self, peers, working):
        super().__init__(peers, working)
        self.sets = []
        self.holder_log = []

    def set_allowed_ips(self, iface, changes):
        self.sets.append((iface, [(k, tuple(ips)) for k, ips in changes]))
        peers = self.ifaces[iface]
        for key, ips in changes:
            for other, p in peers.items():
                if other != key:
                    peers[other] = dataclasses.replace(
                        p, allowed_ips=tuple(a for a in p.allowed_ips if a not in ips))
            peers[key] = dataclasses.replace(peers[key], allowed_ips=tuple(ips))
        self.holder_log.append(self.holders(iface))

    def holders(self, iface):
        return [k for k, p in self.ifaces[iface].items() if set(MOVING) & set(p.allowed_ips)]

    def kick(self, iface, address):
        ip = ipaddress.ip_address(address)
        for key, p in self.ifaces.get(iface, {}).items():
            if any(ip in ipaddress.ip_network(a) for a in p.allowed_ips):
                if p.endpoint in self.working:
                    self.ifaces[iface][key] = dataclasses.replace(p, rx_bytes=p.rx_bytes + 64)
                return True
        return True


def member(key, host, ep, description):
    return PeerConfig(interface="wg0", public_key=key, section="@wireguard_wg0[0]",
                      description=description, endpoint_host=host,
                      endpoint_port=ep.port, hosts=(HostSpec(host, ep.port),),
                      allowed_ips=MOVING, probe_address=GW, verify_timeout=1.0)


def make(tmp_path, hold=20.0, settings=None, wg_class=None):
    settings = settings or Settings(check_interval=1, dead_after=3, failback_hold=hold,
                                    backoff_max=8)
    peers = (member(KA, "vpn1.test", EA, "preferred"), member(KB, "vpn2.test", EB, "standby"))
    group = GroupConfig("vpn", "wg0", (KA, KB), MOVING, hold)
    cfg = Config(settings, peers, (), ("wg0",), groups=(group,))
    # as netifd leaves it: the peer configured last holds the shared allowed IPs
    clock = FakeClock()
    wg = (wg_class or GroupWg)({"wg0": {KA: PeerDump(KA, EA, (), 0, 0, 0, None),
                                        KB: PeerDump(KB, EB, MOVING, 0, 0, 0, None)}},
                               working={EA, EB})
    wg.clock = clock
    engine = Engine(wg, FakeProber({EA.address: 1.0, EB.address: 1.0}),
                    resolve=resolver({"vpn1.test": [EA.address], "vpn2.test": [EB.address]}),
                    route_ok=lambda a: True, kick=wg.kick, clock=clock, sleep=clock.sleep)
    d = Daemon(lambda: cfg, engine, RunDir(str(tmp_path / "run")), clock=clock,
               wall=lambda: 1e9 + clock.now, wait=clock.sleep, rand=lambda: 0.5)
    return d, wg, clock


def run_for(d, wg, clock, seconds, limit=20_000):
    end = clock.now + seconds
    for _ in range(limit):
        if clock.now >= end:
            return
        clock.sleep(max(d.step(), 0.01))
        assert len(wg.holders("wg0")) == 1, wg.ifaces  # never two holders, never none
    raise AssertionError("loop did not advance")


def test_start_reapplies_preferred_then_fails_over_and_back(tmp_path):
    d, wg, clock = make(tmp_path)
    run_for(d, wg, clock, 5)
    assert wg.holders("wg0") == [KA]
    assert wg.sets[0] == ("wg0", [(KA, MOVING), (KB, ())])  # one `wg set` per change
    assert d.groups.states["vpn"].member(KB).health == "alive"  # by handshake alone

    wg.working.discard(EA)  # the preferred server dies silently
    died = clock.now
    for _ in range(2000):
        run_for(d, wg, clock, 0.1)
        if wg.holders("wg0") == [KB]:
            break
    assert wg.holders("wg0") == [KB] and clock.now - died < 3 + 1 + 5
    snap = d.snapshot()["groups"][0]
    assert snap["active"] == KB and snap["last_failover"]["from"] == KA
    assert [m["health"] for m in snap["members"]] == ["dead", "alive"]
    assert d.groups.away()  # on the standby: every cycle reads, to see the return soon

    wg.working.add(EA)  # back: not before the hold time, then failback
    back = clock.now
    for _ in range(2000):
        run_for(d, wg, clock, 0.1)
        if wg.holders("wg0") == [KA]:
            break
    assert wg.holders("wg0") == [KA] and 20 <= clock.now - back < 20 + 3
    assert d.snapshot()["groups"][0]["last_failover"]["reason"].startswith("failback")
    assert not d.groups.away()


def test_failback_that_carries_no_traffic_reverts_and_doubles_the_hold(tmp_path):
    d, wg, clock = make(tmp_path, hold=5)
    run_for(d, wg, clock, 5)
    wg.working.discard(EA)
    run_for(d, wg, clock, 10)
    assert wg.holders("wg0") == [KB]
    original = wg.kick

    def handshakes_but_no_traffic(iface, address):
        if wg.holders(iface) == [KA]:
            return True
        return original(iface, address)

    d.engine.kick = handshakes_but_no_traffic
    wg.working.add(EA)
    run_for(d, wg, clock, 9)
    assert wg.holders("wg0") == [KB]  # tried and reverted
    assert [h for h in wg.holder_log[-2:]] == [[KA], [KB]]
    assert d.groups.states["vpn"].hold == 10


def test_both_dead_keeps_preferred_and_backs_off(tmp_path):
    d, wg, clock = make(tmp_path)
    run_for(d, wg, clock, 5)
    wg.working.clear()
    resets_before = len(wg.resets)
    run_for(d, wg, clock, 60)
    assert wg.holders("wg0") == [KA] and d.groups.states["vpn"].active == KA
    tries = [r for r in wg.resets[resets_before:] if any(k == KA for k, _ in r[1])]
    assert len(tries) < 60 / 3  # backoff: far fewer than one try per dead window


def test_netifd_recreation_is_reapplied_within_one_check(tmp_path):
    d, wg, clock = make(tmp_path)
    run_for(d, wg, clock, 5)
    peers = wg.ifaces["wg0"]
    peers[KA] = dataclasses.replace(peers[KA], allowed_ips=MOVING)  # re-created from UCI:
    peers[KB] = dataclasses.replace(peers[KB], allowed_ips=MOVING)  # the last one wins
    peers[KA] = dataclasses.replace(peers[KA], allowed_ips=())
    clock.sleep(max(d.step(), 0.01))
    for _ in range(200):
        if wg.holders("wg0") == [KA]:
            break
        clock.sleep(max(d.step(), 0.01))
    assert wg.holders("wg0") == [KA]


def test_state_file_and_status_show_groups(tmp_path, monkeypatch, capsys):
    d, wg, clock = make(tmp_path)
    run_for(d, wg, clock, 5)
    d.write_state()
    data = json.loads((tmp_path / "run" / "state.json").read_text())
    [g] = data["groups"]
    assert g["name"] == "vpn" and g["interface"] == "wg0" and g["active"] == KA
    assert g["allowed_ips"] == list(MOVING)
    assert [(m["public_key"], m["description"]) for m in g["members"]] == [
        (KA, "preferred"), (KB, "standby")]
    assert "private" not in json.dumps(data) and "preshared" not in json.dumps(data)
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(status.RunDir, "daemon_running", lambda self: 4321)
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "group vpn" in out and "active preferred" in out and "standby" in out
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["active"] == KA


class FakeRoutes:
    """Records the daemon's host routes per peer, as routes.HostRoutes keeps them."""

    def __init__(self):
        self.owned = {}
        self.probing = {}

    def ensure(self, key, iface, address, probe=False):
        self.owned.setdefault(key, set()).add(address)
        if probe:
            self.probing.setdefault(key, set()).add(address)
        return True

    def end_probes(self, key, keep):
        for address in self.probing.pop(key, set()) - {keep}:
            self.owned.get(key, set()).discard(address)

    def retain(self, key, keep):
        self.owned[key] = {a for a in self.owned.get(key, set()) if a == keep}

    def keep_only(self, peers):
        self.owned = {k: v for k, v in self.owned.items() if k in peers}

    def adopt(self):
        pass

    def prune_adopted(self):
        pass

    def clear(self):
        self.owned = {}

    def routed(self):
        return {k[1]: v for k, v in self.owned.items() if v}


def test_full_tunnel_only_the_active_member_keeps_a_host_route(tmp_path):
    d, wg, clock = make(tmp_path)
    full = {p.public_key: dataclasses.replace(p, allowed_ips=("0.0.0.0/0",),
                                              route_allowed_ips=True) for p in d.cfg.peers}
    d.cfg = dataclasses.replace(d.cfg, peers=tuple(full.values()))
    d.groups.configure(d.cfg)
    routes = FakeRoutes()
    d.engine.routes = routes
    run_for(d, wg, clock, 5)
    assert routes.routed() == {KA: {EA.address}}  # standby checks leave nothing behind
    wg.working.discard(EA)
    run_for(d, wg, clock, 10)
    assert wg.holders("wg0") == [KB]
    assert routes.routed() == {KB: {EB.address}}


def test_a_member_that_is_gone_is_never_recreated_by_a_move(tmp_path):
    d, wg, clock = make(tmp_path)
    run_for(d, wg, clock, 5)
    del wg.ifaces["wg0"][KB]  # the user (or netifd) removed the standby
    sets = len(wg.sets)
    [group] = d.cfg.groups
    assert "is not on wg0" in d.groups.io.enforce(group, KB)
    assert len(wg.sets) == sets and KB not in wg.ifaces["wg0"]


def test_once_keeps_a_live_holder_fails_back_to_preferred_and_over_to_standby(tmp_path):
    d, wg, clock = make(tmp_path)
    keeper = d.groups  # `once` uses the same Keeper without the loop
    keeper.begin_once()  # netifd left the allowed IPs on the standby: it stays active
    assert keeper.states["vpn"].active == KB and wg.holders("wg0") == [KB]
    working = keeper.settle_once(d.engine.round(d.peers))
    assert wg.holders("wg0") == [KA]  # the preferred verified: it gets them back
    assert working == {("wg0", KA), ("wg0", KB)}
    wg.working.discard(EA)
    keeper.begin_once()
    working = keeper.settle_once(d.engine.round(d.peers))
    assert wg.holders("wg0") == [KB] and working == {("wg0", KA), ("wg0", KB)}
    wg.working.clear()
    keeper.begin_once()
    assert keeper.settle_once(d.engine.round(d.peers)) == set()
    assert wg.holders("wg0") == [KB]


class KeepaliveGroupWg(GroupWg):
    """Members with a persistent keepalive: WireGuard handshakes with each reachable one on
    its own, again every REKEY_AFTER_TIME (120 s) while the session is used (keepalives
    count), and keeps trying every REKEY_TIMEOUT (5 s) while it is not reachable."""

    def show(self, iface):
        wall = int(1e9 + self.clock.now)
        for key, p in self.ifaces.get(iface, {}).items():
            stale = p.latest_handshake == 0 or wall - p.latest_handshake >= 120
            if p.endpoint in self.working and stale:
                self.ifaces[iface][key] = dataclasses.replace(
                    p, latest_handshake=wall - int(self.clock.now) % 5, rx_bytes=p.rx_bytes + 92)
        return super().show(iface)


def test_a_returning_standby_is_seen_within_a_cycle_and_failed_back_after_the_hold(tmp_path):
    """Issue 17: with default check_interval and backoff, the preferred server's return
    was seen only at its next repair retry (up to backoff_max later). A member that
    handshakes on its own is seen at the next read; the hold counts from there."""
    settings = Settings(check_interval=10, dead_after=30, failback_hold=60, backoff_max=300)
    d, wg, clock = make(tmp_path, settings=settings, wg_class=KeepaliveGroupWg)
    run_for(d, wg, clock, 30)
    assert wg.holders("wg0") == [KA]
    wg.working.discard(EA)
    for _ in range(2000):
        run_for(d, wg, clock, 0.5)
        if wg.holders("wg0") == [KB]:
            break
    assert wg.holders("wg0") == [KB]
    run_for(d, wg, clock, 400)  # long dead: its repairs back off towards backoff_max
    assert d.groups.states["vpn"].member(KA).health == "dead"
    resets = len(wg.resets)
    wg.working.add(EA)
    back = clock.now
    seen = None
    for _ in range(4000):
        run_for(d, wg, clock, 0.5)
        if seen is None and d.groups.states["vpn"].member(KA).health == "alive":
            seen = clock.now - back
        if wg.holders("wg0") == [KA]:
            break
    assert seen is not None and seen <= 5 + 10 + 0.5  # its handshake, then one read
    assert wg.holders("wg0") == [KA] and clock.now - back <= 60 + 10 + 5
    assert len(wg.resets) - resets <= 2  # seen without resetting it again and again


def test_a_groups_active_member_is_tested_twice_a_check_interval(tmp_path):
    """With a standby group the liveness cycle is half of check_interval (liveness.cycle):
    the active member's silent death costs half the wait. Counted over 100 idle seconds
    with the default check_interval of 10 s."""
    d, wg, clock = make(tmp_path, settings=Settings(failback_hold=20.0))
    kicks: list[float] = []
    original = d.engine.kick

    def counting(iface: str, address: str) -> bool:
        kicks.append(clock.now)
        return original(iface, address)

    d.engine.kick = counting
    run_for(d, wg, clock, 30)
    kicks.clear()
    run_for(d, wg, clock, 100)
    assert 18 <= len(kicks) <= 22, kicks  # one a 5 s cycle (10 at the plain 10 s cycle)
    assert lv.cycle(10.0, ()) == 10.0 and lv.cycle(10.0, ("g",)) == 5.0
