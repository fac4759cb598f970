"""Issue 18: a router's log ring buffer (tens of KiB) must survive 500 dead peers. A fault
is one line when it starts, a summary at most every few minutes, one line when it ends."""

import logging

from tests.fakes import FakeClock, FakeProber, FakeWg, resolver
from tests.runtime.test_daemon import run_for
from wg_endpointd.config import Config, HostSpec, PeerConfig, Settings
from wg_endpointd.core.model import Endpoint, PeerDump
from wg_endpointd.runtime.daemon import Daemon
from wg_endpointd.runtime.engine import Engine
from wg_endpointd.system.rundir import RunDir

PEERS, IFACES = 500, 50


def key(i: int) -> str:
    return f"{i:04d}".ljust(42, "A") + "A="


def make(tmp_path):
    peers, dumps, dns = [], {}, {}
    for i in range(PEERS):
        iface, host = f"wg{i % IFACES}", f"p{i}.wg.test"
        ep = Endpoint(f"192.0.2.{1 + i % 200}", 51820 + i)
        dns[host] = [ep.address, f"198.51.100.{1 + i % 100}"]
        peers.append(PeerConfig(interface=iface, public_key=key(i), section=f"@w[{i}]",
                                description=f"site{i}", endpoint_host=host,
                                hosts=(HostSpec(host, ep.port),),
                                allowed_ips=(f"198.51.100.{128 + i % 100}/32",),
                                probe_address=f"198.51.100.{128 + i % 100}"))
        dumps.setdefault(iface, {})[key(i)] = PeerDump(key(i), ep, peers[-1].allowed_ips,
                                                       1_699_999_000, 500, 900, None)
    cfg = Config(Settings(), tuple(peers), (), tuple(dumps))
    wg = FakeWg(dumps, working=set(p.endpoint for d in dumps.values() for p in d.values()))
    clock = FakeClock()
    engine = Engine(wg, FakeProber({}), resolve=resolver(dns), route_ok=lambda a: True,
                    kick=wg.kick, clock=clock, sleep=clock.sleep, iface_rx=wg.rx_packets)
    d = Daemon(lambda: cfg, engine, RunDir(str(tmp_path / "run")), clock=clock,
               wall=lambda: 1e9 + clock.now, wait=clock.sleep, rand=lambda: 0.5)
    return d, wg, clock


def test_500_dead_peers_cost_a_few_hundred_lines_an_hour(tmp_path, caplog):
    d, wg, clock = make(tmp_path)
    run_for(d, clock, 30)
    assert all(s.phase == "healthy" for s in d.states.values())
    caplog.clear()
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    wg.working.clear()  # every path dies, for an hour
    run_for(d, clock, 3600, limit=200_000)
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    size = sum(len(r.getMessage()) + 30 for r in lines)
    print(f"500 dead peers, one hour: {len(lines)} lines, {size / 1024:.0f} KiB")
    # each peer: its death and its fault once (1000 lines), then summaries only
    assert len(lines) <= 2 * PEERS + 3600 / 300 + 50, len(lines)
    assert sum("still failing" in r.getMessage() for r in lines) <= 3600 / 300 + 1
    assert all(s.phase == "down" for s in d.states.values())
    caplog.clear()
    wg.working.update(p.endpoint for i in wg.ifaces.values() for p in i.values())
    run_for(d, clock, 400, limit=200_000)  # they come back: one line each as they do
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) <= 30, lines  # the first peers' lines, then one that counts the rest
    assert any(f"and {PEERS - 5} more peer(s): {PEERS - 5} working again" in m
               for m in lines), lines
    assert all(s.phase == "healthy" for s in d.states.values())


def test_a_budget_shows_the_first_peers_and_counts_the_rest_by_kind():
    from wg_endpointd.core import faults

    budget = faults.Budget(limit=2)
    levels = [budget.level(f"wg0/p{i}", logging.WARNING, f"working again on 192.0.2.{i}:51820")
              for i in range(5)]
    assert levels == [logging.WARNING] * 2 + [logging.DEBUG] * 3
    assert budget.level("wg0/p0", logging.INFO, "healthy -> down (x)") == logging.INFO
    assert budget.close() == ("and 3 more peer(s): 3 working again (wg-endpointd status "
                              "shows each)")
    assert faults.Budget().close() is None
