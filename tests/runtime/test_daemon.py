"""The daemon loop with an injected clock, a scripted WireGuard and a fake prober."""

import dataclasses
import json
import signal

from tests.fakes import FakeClock, FakeProber, FakeWg, resolver
from wg_endpointd.config import Config, HostSpec, PeerConfig, Settings
from wg_endpointd.core import state as st
from wg_endpointd.core.errors import ConfigError
from wg_endpointd.core.model import Endpoint, PeerDump
from wg_endpointd.runtime import service
from wg_endpointd.runtime.daemon import Daemon
from wg_endpointd.runtime.engine import Engine
from wg_endpointd.system.rundir import RunDir

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
V6 = Endpoint("2001:db8:1::2", 51820)
V4 = Endpoint("192.0.2.2", 51820)
DNS = {"peer.wg.test": [V6.address, V4.address]}


def make(tmp_path, settings=None, working=None):
    settings = settings or Settings(check_interval=10, dead_after=30, failback_hold=300)
    peer = PeerConfig(interface="wg0", public_key=K1, section="@wireguard_wg0[0]",
                      description="office", endpoint_host="peer.wg.test",
                      hosts=(HostSpec("peer.wg.test", 51820),), allowed_ips=("198.51.100.129/32",),
                      probe_address="198.51.100.129", verify_timeout=1.0)
    cfg = Config(settings, (peer,), (), ("wg0",))
    wg = FakeWg({"wg0": {K1: PeerDump(K1, V6, peer.allowed_ips, 1_699_999_000, 500, 900, None)}},
             working=set(working if working is not None else {V6, V4}))
    clock = FakeClock()
    prober = FakeProber({V6.address: 1.0, V4.address: 1.0})
    engine = Engine(wg, prober, resolve=resolver(DNS), route_ok=lambda a: True, kick=wg.kick,
                    clock=clock, sleep=clock.sleep, iface_rx=wg.rx_packets)
    d = Daemon(lambda: cfg, engine, RunDir(str(tmp_path / "run")), clock=clock, wall=lambda: 1e9,
               wait=clock.sleep, rand=lambda: 0.5)
    return d, wg, clock, prober


def run_for(d, clock, seconds, limit=10_000):
    end = clock.now + seconds
    for _ in range(limit):
        if clock.now >= end:
            return
        clock.sleep(max(d.step(), 0.01))
    raise AssertionError("loop did not advance")


def fail_over(d, wg, clock):
    """Healthy on IPv6 for a while, then IPv6 dies and an interface event arrives."""
    run_for(d, clock, 20)
    wg.working.discard(V6)
    d.on_signal(signal.SIGUSR1)
    d.step()


def phase(d):
    return d._state(d.peers[0]).phase


def test_healthy_path_is_never_disturbed_and_costs_few_packets(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    kicks = []
    orig = wg.kick
    wg.kick = lambda i, a: kicks.append(clock.now) or orig(i, a)
    d.engine.kick = wg.kick
    run_for(d, clock, 600)
    assert wg.resets == [] and phase(d) == st.HEALTHY
    assert len(kicks) <= 600 / 10 + 2  # at most one datagram per check interval


def test_silent_death_detected_within_window_and_moved(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 50)
    died = clock.now
    wg.working.discard(V6)
    moved_at = None
    for _ in range(5000):
        clock.sleep(max(d.step(), 0.01))
        if wg.ifaces["wg0"][K1].endpoint == V4 and wg.ifaces["wg0"][K1].latest_handshake:
            moved_at = clock.now
            break
    assert moved_at is not None and moved_at - died <= 30 + 5
    assert phase(d) == st.FALLBACK


def test_event_reprobes_at_once(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 20)
    wg.working.discard(V6)
    d.on_signal(signal.SIGUSR1)
    start = clock.now
    d.step()
    assert wg.ifaces["wg0"][K1].endpoint == V4 and clock.now - start < 3


def test_failback_after_hold_only(tmp_path):
    d, wg, clock, _ = make(tmp_path, Settings(check_interval=10, dead_after=30, failback_hold=60))
    fail_over(d, wg, clock)
    assert phase(d) == st.FALLBACK
    wg.working.add(V6)
    resets = len(wg.resets)
    run_for(d, clock, 50)
    assert len(wg.resets) == resets  # untouched during the hold
    run_for(d, clock, 30)
    assert wg.ifaces["wg0"][K1].endpoint == V6 and phase(d) == st.HEALTHY


def test_failed_failback_reverts_and_doubles_hold(tmp_path):
    d, wg, clock, _ = make(tmp_path, Settings(check_interval=10, dead_after=30, failback_hold=60))
    fail_over(d, wg, clock)
    run_for(d, clock, 75)  # hold passes; V6 answers ping (FakeProber) but WireGuard fails
    assert wg.ifaces["wg0"][K1].endpoint == V4
    assert d._state(d.peers[0]).hold == 120
    assert phase(d) == st.FALLBACK


def test_backoff_when_nothing_works(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 20)
    wg.working.clear()
    run_for(d, clock, 200)
    s = d._state(d.peers[0])
    assert s.phase == st.DOWN and s.failures >= 2
    attempts = [r for r in wg.resets if r[1][0][1] == V4]
    assert 2 <= len(attempts) <= 6  # spaced 10, 20, 40, 80 s ... not every check


def test_reload_keeps_state_and_survives_bad_config(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    fail_over(d, wg, clock)
    before = d._state(d.peers[0])
    assert before.last_switch is not None
    new_cfg = dataclasses.replace(d.cfg, settings=Settings(triggers=("wan",)))
    items = [ConfigError("bad", "/etc/config/wg-endpointd", 3), new_cfg]

    def load():
        item = items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    d.load = load
    d.on_signal(signal.SIGHUP)
    d.step()
    assert d.cfg.settings.triggers == ()  # the bad file is not applied
    d.on_signal(signal.SIGHUP)
    d.step()
    assert d.cfg.settings.triggers == ("wan",)
    assert d._state(d.peers[0]).last_switch == before.last_switch
    assert (tmp_path / "run" / "hotplug.list").read_text() == "wan\nwg0\n"


def test_state_file_contents_and_no_secrets(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    fail_over(d, wg, clock)
    data = json.loads((tmp_path / "run" / "state.json").read_text())
    [p] = data["peers"]
    assert p["interface"] == "wg0" and p["description"] == "office"
    assert p["endpoint"] == str(V4) and p["last_verified"] == 1e9
    assert {c["endpoint"] for c in p["candidates"]} == {str(V6), str(V4)}
    assert all(c["rtt_ms"] == 1.0 for c in p["candidates"])
    assert p["last_switch"]["from"] == str(V6) and p["last_switch"]["to"] == str(V4)
    assert "not answering" in p["last_switch"]["reason"]


def test_run_exits_0_on_sigterm_and_cleans_pid(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    steps = []

    def wait(t):
        steps.append(t)
        clock.sleep(t)
        if len(steps) == 3:
            d.on_signal(signal.SIGTERM)

    d.wait = wait
    assert service.serve(d) == 0
    assert not (tmp_path / "run" / "wg-endpointd.pid").exists()
    assert (tmp_path / "run" / "hotplug.list").read_text() == "*\n"


def test_runtime_fault_does_not_exit(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    calls = []

    def boom():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("surprise")
        d.on_signal(signal.SIGTERM)
        return 1.0

    d.step = boom
    assert service.serve(d) == 0 and len(calls) == 2


def test_corrupt_state_file_is_rebuilt(tmp_path, caplog):
    d, wg, clock, _ = make(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text("{not json")
    d.wait = lambda t: d.on_signal(signal.SIGTERM)
    assert service.serve(d) == 0
    assert "rebuilding" in caplog.text
    assert json.loads((tmp_path / "run" / "state.json").read_text())["peers"]


class NoIpv6Uplink:
    """Host routes with no uplink for IPv6 (routes.HostRoutes when neither netifd nor the
    kernel names one outside the tunnel)."""

    def ensure(self, key, iface, address, probe=False):
        return ":" not in address

    def end_probes(self, key, keep):
        pass

    def retain(self, key, keep):
        pass

    def keep_only(self, peers):
        pass

    def adopt(self):
        pass

    def prune_adopted(self):
        pass

    def clear(self):
        pass


def test_full_tunnel_never_fails_back_to_a_candidate_no_route_takes_out_of_it(tmp_path):
    """Issue 16 part 3: the tunnel owns the default route and nothing routes the preferred
    IPv6 candidate outside it. Its ping would cross the tunnel and answer, and a switch to
    it would loop into the tunnel: it is neither pinged nor tried, so no futile failback
    (each a gap in the user's traffic) ever starts."""
    d, wg, clock, prober = make(tmp_path, Settings(check_interval=10, dead_after=30,
                                                   failback_hold=60))
    d.engine.routes = NoIpv6Uplink()
    full = dataclasses.replace(d.peers[0], allowed_ips=("0.0.0.0/0", "::/0"),
                               route_allowed_ips=True, probe_address="10.99.0.1")
    d.load = lambda: Config(d.cfg.settings, (full,), (), ("wg0",))
    d.do_reload()
    fail_over(d, wg, clock)
    assert phase(d) == st.FALLBACK
    resets = len(wg.resets)
    calls = len(prober.calls)
    run_for(d, clock, 200)
    assert len(wg.resets) == resets and phase(d) == st.FALLBACK
    assert not any(V6.address in g for call in prober.calls[calls:] for g in call)


def test_wg_missing_while_running_leaves_peers_unknown_and_status_says_why(
        tmp_path, monkeypatch, capsys):
    """Issue 18: with `wg` gone, nothing is known of any peer: `unknown`, never `down`."""
    from wg_endpointd import cli
    from wg_endpointd.core.errors import WgUnavailable
    from wg_endpointd.runtime import status

    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 20)
    assert phase(d) == st.HEALTHY

    def gone(*_a, **_k):
        raise WgUnavailable("wg binary not found: wg")

    wg.show = wg.show_all = gone
    d.on_signal(signal.SIGUSR1)
    run_for(d, clock, 60)
    assert phase(d) == st.UNKNOWN and "wg binary not found" in d._state(d.peers[0]).fault
    d.write_state()
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(status.RunDir, "daemon_running", lambda self: 4321)
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "unknown" in out and "why: wg binary not found" in out and "down" not in out
