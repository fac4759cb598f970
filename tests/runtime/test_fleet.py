"""Events, history and the metrics file of the daemon loop, with the fakes of
test_daemon.py and test_groups_daemon.py (injected clock, scripted WireGuard)."""

import dataclasses
import json
import re
import signal

from tests.runtime import test_groups_daemon as groups
from tests.runtime.test_daemon import K1, V4, V6, fail_over, make, run_for
from wg_endpointd import cli
from wg_endpointd.config import Settings
from wg_endpointd.runtime import service
from wg_endpointd.system.metricsfile import MetricsFile


def settings(tmp_path, **kw):
    base = dict(check_interval=10, dead_after=30, failback_hold=60,
                metrics_file=str(tmp_path / "wg_endpointd.prom"))
    return Settings(**{**base, **kw})


def metric(text, name, **labels):
    """The value of one sample of the metrics file's text."""
    for line in text.splitlines():
        m = re.fullmatch(rf"wg_endpointd_{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "").split(",") for k, v in labels.items()):
            return float(m.group(2))
    return None


def recording(d):
    """Every write of the metrics file: (clock, text)."""
    writes = []
    d.fleet.metrics.out = MetricsFile(write=lambda path, text: writes.append(
        (d.clock(), text)))
    return writes


def moved_outside(d, wg, clock, ep):
    """WireGuard (roaming) or someone else moves the peer; an event makes the daemon look."""
    wg.ifaces["wg0"][K1] = dataclasses.replace(wg.ifaces["wg0"][K1], endpoint=ep)
    d.on_signal(signal.SIGUSR1)
    run_for(d, clock, 2)


def state(tmp_path):
    return json.loads((tmp_path / "run" / "state.json").read_text())


def test_a_failover_and_its_failback_are_events_history_and_counters(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    heard = []
    d.events.append(heard.append)
    fail_over(d, wg, clock)
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_switches_total", peer=K1, reason="failover") == 1
    assert metric(prom, "peer_switches_total", peer=K1, reason="failback") == 0
    assert metric(prom, "peer_state", peer=K1, state="fallback") == 1
    assert metric(prom, "peer_state", peer=K1, state="healthy") == 0
    assert metric(prom, "peer_endpoint_info", peer=K1, endpoint=V4, family="ipv4") == 1
    assert metric(prom, "peer_last_switch_timestamp_seconds", peer=K1) == 1e9
    assert 0 < metric(prom, "peer_verification_duration_seconds", peer=K1) < 3
    wg.working.add(V6)
    run_for(d, clock, 90)
    assert [(e.action, e.reason, e.from_, e.to) for e in heard] == [
        ("switch", "failover", str(V6), str(V4)), ("switch", "failback", str(V4), str(V6))]
    history = state(tmp_path)["peers"][0]["history"]
    assert [(h["action"], h["reason"], h["from"], h["to"]) for h in history] == [
        ("switch", "failover", str(V6), str(V4)), ("switch", "failback", str(V4), str(V6))]
    assert all(isinstance(h["took"], float) and h["at"] == 1e9 for h in history)
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_switches_total", peer=K1, reason="failback") == 1
    assert metric(prom, "peer_state", peer=K1, state="healthy") == 1


def test_down_and_up_with_how_long_it_was_down(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    heard = []
    d.events.append(heard.append)
    walls = iter(range(10**9, 10**10))
    d.wall = d.fleet.wall = lambda: float(next(walls))
    run_for(d, clock, 20)
    wg.working.clear()
    run_for(d, clock, 60)
    assert [e.action for e in heard] == ["down"] and heard[0].reason == "unreachable"
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_state", peer=K1, state="down") == 1
    assert metric(prom, "faults_total") == 1  # one fault, however many retries
    wg.working.update({V6, V4})
    d.on_signal(signal.SIGUSR1)
    run_for(d, clock, 5)
    assert [e.action for e in heard] == ["down", "up"]
    assert heard[1].took is not None and heard[1].took > 0


def test_counters_survive_a_reload_and_start_at_zero_in_a_new_process(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    fail_over(d, wg, clock)
    rounds = d.fleet.rounds
    d.load = lambda: dataclasses.replace(d.cfg, settings=settings(tmp_path, dead_after=40))
    d.on_signal(signal.SIGHUP)
    run_for(d, clock, 11)
    assert d.cfg.settings.dead_after == 40
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_switches_total", peer=K1, reason="failover") == 1
    assert metric(prom, "rounds_total") >= rounds >= 2
    assert len(state(tmp_path)["peers"][0]["history"]) == 1
    # a restart: a new daemon, the old state file read at its start (service.serve)
    d2, wg2, clock2, _ = make(tmp_path, settings(tmp_path))
    d2.fleet.restore(state(tmp_path))
    run_for(d2, clock2, 5)
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_switches_total", peer=K1, reason="failover") == 0
    assert [h["reason"] for h in state(tmp_path)["peers"][0]["history"]] == ["failover"]


def test_a_reload_forgets_peers_it_dropped(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    fail_over(d, wg, clock)
    d.load = lambda: dataclasses.replace(d.cfg, peers=())
    d.on_signal(signal.SIGHUP)
    d.step()
    assert d.fleet.peers == {} and d.fleet.switches == {}
    assert "peer=" not in (tmp_path / "wg_endpointd.prom").read_text()


def test_history_is_bounded(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path, failback_hold=3600))
    run_for(d, clock, 20)
    for _ in range(15):  # 30 switches back and forth, none of them by the daemon
        for ep in (V4, V6):
            moved_outside(d, wg, clock, ep)
    history = state(tmp_path)["peers"][0]["history"]
    assert len(history) == 20 and {h["reason"] for h in history} == {"external"}
    assert history[-1]["to"] == str(V6)
    prom = (tmp_path / "wg_endpointd.prom").read_text()
    assert metric(prom, "peer_switches_total", peer=K1, reason="external") == 30


def test_the_file_is_renamed_into_place_every_check_interval_without_extra_wakeups(tmp_path):
    def steps(metrics_file):
        d, wg, clock, _ = make(tmp_path, settings(tmp_path, metrics_file=metrics_file))
        writes = recording(d)
        run_for(d, clock, 30)
        start, count = clock.now, 0
        while clock.now < start + 300:
            clock.sleep(max(d.step(), 0.01))
            count += 1
        return [t for t, _ in writes if t >= start], count

    writes, passes = steps(str(tmp_path / "m.prom"))
    gaps = [b - a for a, b in zip(writes, writes[1:], strict=False)]
    assert len(writes) >= 29 and max(gaps) <= 10.0 + 0.05, gaps
    nothing, passes_without = steps("")
    assert nothing == []
    assert passes <= passes_without + 1  # it falls in with the loop's own wake-ups


def test_a_daemon_without_peers_still_proves_it_lives(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    d.cfg = dataclasses.replace(d.cfg, peers=())
    writes = recording(d)
    run_for(d, clock, 100)
    assert len(writes) >= 10
    assert metric(writes[-1][1], "up") == 1


def test_a_failing_event_consumer_is_logged_once_and_the_others_still_hear(tmp_path, caplog):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    heard = []

    def broken(event):
        raise RuntimeError("hook runner bug")

    d.events.extend([broken, heard.append])
    fail_over(d, wg, clock)
    wg.working.add(V6)
    run_for(d, clock, 90)
    assert len(heard) == 2
    assert sum("event consumer failed" in r.getMessage() for r in caplog.records) == 1


def test_group_failover_and_failback_are_events_with_member_keys(tmp_path):
    d, wg, clock = groups.make(tmp_path, settings=Settings(
        check_interval=1, dead_after=3, failback_hold=20, backoff_max=8,
        metrics_file=str(tmp_path / "g.prom")))
    heard = []
    d.events.append(heard.append)
    groups.run_for(d, wg, clock, 5)
    wg.working.discard(groups.EA)
    groups.run_for(d, wg, clock, 10)
    wg.working.add(groups.EA)
    groups.run_for(d, wg, clock, 30)
    moves = [e for e in heard if e.group]
    assert [(e.action, e.from_, e.to, e.public_key, e.description, e.reason) for e in moves] == [
        ("failover", groups.KA, groups.KB, groups.KB, "standby", "dead"),
        ("failback", groups.KB, groups.KA, groups.KA, "preferred", "recovered")]
    snap = d.snapshot()["groups"][0]["history"]
    assert [(h["action"], h["from"], h["to"]) for h in snap] == [
        ("failover", groups.KA, groups.KB), ("failback", groups.KB, groups.KA)]
    prom = (tmp_path / "g.prom").read_text()
    assert metric(prom, "group_failovers_total", group="vpn") == 1
    assert metric(prom, "group_failbacks_total", group="vpn") == 1
    assert metric(prom, "group_active", group="vpn", peer=groups.KA) == 1
    assert metric(prom, "group_active", group="vpn", peer=groups.KB) == 0


def test_serve_keeps_the_history_of_the_last_run_and_says_up_0_at_the_stop(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    fail_over(d, wg, clock)
    d.write_state()
    d2, wg2, clock2, _ = make(tmp_path, settings(tmp_path))

    def wait(seconds):
        clock2.sleep(seconds)
        d2.stop = clock2.now > 1100

    d2.wait = wait
    assert service.serve(d2) == 0
    assert [h["reason"] for h in state(tmp_path)["peers"][0]["history"]] == ["failover"]
    assert metric((tmp_path / "wg_endpointd.prom").read_text(), "up") == 0


def test_status_shows_the_last_three_events_and_json_all(tmp_path, monkeypatch, capsys):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    run_for(d, clock, 20)
    for ep in (V4, V6, V4, V6):
        moved_outside(d, wg, clock, ep)
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(tmp_path / "run"))
    cli.main(["status"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "(external" in ln]
    assert len(lines) == 3 and lines[-1].split()[0] == "switch"
    assert lines[-1].endswith(f"{V4} -> {V6} (external)")
    cli.main(["status", "--json"])
    assert len(json.loads(capsys.readouterr().out)["peers"][0]["history"]) == 4


def test_never_a_private_or_preshared_key_in_the_metrics_or_the_history(tmp_path):
    d, wg, clock, _ = make(tmp_path, settings(tmp_path))
    psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
    wg.ifaces["wg0"][K1] = dataclasses.replace(wg.ifaces["wg0"][K1], preshared_key=psk)
    fail_over(d, wg, clock)
    for text in ((tmp_path / "wg_endpointd.prom").read_text(),
                 (tmp_path / "run" / "state.json").read_text()):
        assert psk not in text
        assert set(re.findall(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=", text)) == {K1}


def test_none_turns_the_file_off(tmp_path):
    from wg_endpointd.core.options import GLOBALS, convert

    [option] = [o for o in GLOBALS if o.name == "metrics_file"]
    assert convert(option, "none") == convert(option, "") == ""
    d, wg, clock, _ = make(tmp_path, settings(tmp_path, metrics_file=convert(option, "none")))
    d.fleet.metrics.host = lambda: (True, False)  # OpenWrt: the default would be written
    writes = recording(d)
    run_for(d, clock, 30)
    assert writes == [] and d.fleet.metrics.next_at == float("inf")
    d.cfg = dataclasses.replace(d.cfg, settings=settings(tmp_path, metrics_file=None))
    run_for(d, clock, 30)  # unset: the platform's default, in the run directory
    assert d.fleet.metrics.path == str(tmp_path / "run" / "wg_endpointd.prom")
    assert len(writes) >= 3
