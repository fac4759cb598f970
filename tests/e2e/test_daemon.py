"""`wg-endpointd run` against real WireGuard: events, silent failures, failback, signals."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    NAME,
    daemon,
    endpoint,
    four_links,
    hotplug,
    peer_section,
    wait_for,
    write_config,
)
from tests.luci_harness import tool

pytestmark = pytest.mark.lab


def own_config(**opts: str) -> str:
    lines = "".join(f"\toption {k} '{v}'\n" for k, v in opts.items())
    return f"config globals 'globals'\n{lines}"


@contextmanager
def running(lab, confdir: str, run_dir: Path):
    """The daemon, with its log printed afterwards (shown when a test fails)."""
    log = run_dir.parent / "daemon.log"
    try:
        with daemon(lab, confdir, run_dir, log) as proc:
            yield proc
    finally:
        if log.exists():
            print(log.read_text()[-4000:])


def fall_back(lab, run_dir: Path, links, pair) -> None:
    """Healthy on IPv6, then IPv6 breaks and wan6 goes down: the peer moves to IPv4."""
    wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
    lab.block(links["v6a"], "all")
    hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")
    wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint(), 3, "fallback")


def setup(lab, tmp_path, **opts: str):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820, router_keepalive=None)
    lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
    lab.set_endpoint(pair, links["v6a"].endpoint())
    assert lab.ping_through_tunnel(pair)
    confdir = write_config(tmp_path, [pair], peer_section(pair, description="office"),
                           own_config(**opts))
    run_dir = tmp_path / "run"
    return links, pair, confdir, run_dir


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def test_hotplug_event_moves_to_ipv4_within_3s(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path)
    with running(lab, confdir, run_dir):
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
        lab.block(links["v6a"], "all")  # IPv6 breaks ...
        took_hotplug = hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")  # ... netifd says so
        took = wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                        and int(lab.wg_dump(pair)[4]) > 0, 3, "switch to IPv4")
        assert lab.ping_through_tunnel(pair)
        wait_for(lambda: state(run_dir)["peers"][0]["last_switch"] is not None, 2, "state file")
        s = state(run_dir)["peers"][0]
        assert s["last_switch"]["to"] == links["v4a"].endpoint()
        assert s["phase"] == "fallback"
        print(f"event to verified endpoint: {took:.3f} s; hotplug script {took_hotplug * 1000:.1f} ms")


def test_uplink_without_ipv6_tries_ipv4_at_once(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path, verify_timeout="5")
    with running(lab, confdir, run_dir):
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
        for name in ("v6a", "v6b"):  # wan6 down: the router has no IPv6 route any more
            link = links[name]
            lab.router(["ip", "addr", "del", f"{link.router_addr}/{link.prefixlen}",
                        "dev", link.router_if])
        hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")
        took = wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                        and int(lab.wg_dump(pair)[4]) > 0, 1, "immediate switch to IPv4")
        print(f"no-IPv6 uplink: verified IPv4 {took:.3f} s after the event")


def test_ignored_events_do_not_wake(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path)
    with running(lab, confdir, run_dir):
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
        lab.block(links["v6a"], "all")
        hotplug(lab, run_dir, ACTION="connecting", INTERFACE="wan6")  # mwan3, not acted on
        time.sleep(1.5)
        assert endpoint(lab, pair) == links["v6a"].endpoint()
        hotplug(lab, run_dir, ACTION="disconnected", INTERFACE="wan6")  # mwan3 failover
        wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint(), 3, "switch")


@pytest.mark.parametrize("answers", ["at once", "by keepalive only"])
def test_silent_failure_detected_within_default_window(lab, tmp_path, answers):
    """No event at all. The peer answers test datagrams from its tunnel address, or (its
    firewall drops them) only by WireGuard's passive keepalive 10 s later."""
    links, pair, confdir, run_dir = setup(lab, tmp_path)  # default check_interval / dead_after
    if answers == "by keepalive only":
        lab.answer_by_keepalive_only(pair)
    with running(lab, confdir, run_dir):
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
        time.sleep(random.uniform(2, 13))  # anywhere in the 11 s cycle
        lab.block(links["v6a"], "all")
        took = wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                        and int(lab.wg_dump(pair)[4]) > 0, 35, "silent failover", step=0.1)
        assert lab.ping_through_tunnel(pair)
        print(f"silent failure, peer answering {answers}, to verified endpoint: {took:.1f} s")
        line = next(x for x in (run_dir.parent / "daemon.log").read_text().splitlines()
                    if "no answer to a test datagram" in x)
        assert ("within 11.0 s" in line) == (answers == "by keepalive only"), line


def test_failback_after_hold_and_not_before(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path, check_interval="1", failback_hold="4")
    with running(lab, confdir, run_dir):
        fall_back(lab, run_dir, links, pair)
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 3, "fallback phase")
        handshake = lab.wg_dump(pair)[4]
        lab.unblock(links["v6a"])  # IPv6 is back
        start = time.monotonic()
        for _ in range(30):  # during the hold time the tunnel is left alone
            if time.monotonic() - start > 3:
                break
            assert endpoint(lab, pair) == links["v4a"].endpoint()
            assert lab.wg_dump(pair)[4] == handshake
            time.sleep(0.1)
        took = wait_for(lambda: endpoint(lab, pair) == links["v6a"].endpoint(), 10, "failback")
        assert time.monotonic() - start >= 3.5
        assert lab.ping_through_tunnel(pair)
        print(f"failback {time.monotonic() - start:.1f} s after IPv6 returned (hold 4 s); waited {took:.1f}")


def test_failback_trial_that_fails_reverts(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path, check_interval="1", failback_hold="2")
    with running(lab, confdir, run_dir):
        fall_back(lab, run_dir, links, pair)
        lab.block(links["v6a"], "udp")  # ping answers again, WireGuard still blocked
        log = run_dir.parent / "daemon.log"
        wait_for(lambda: "failback not verified" in log.read_text(), 10, "a failed trial")
        assert "trying preferred" in log.read_text()  # the trial really happened ...
        assert endpoint(lab, pair) == links["v4a"].endpoint()  # ... and was reverted
        wait_for(lambda: lab.ping_through_tunnel(pair), 5, "tunnel back on IPv4", step=0.2)


def test_sighup_reload_keeps_state_and_sigterm_exits_0(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path)
    with running(lab, confdir, run_dir) as proc:
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "healthy", 10, "healthy")
        lab.block(links["v6a"], "all")
        hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")
        wait_for(lambda: state(run_dir)["peers"][0]["last_switch"] is not None, 3, "switch")
        before = state(run_dir)["peers"][0]
        assert (run_dir / "hotplug.list").read_text() == "*\n"
        Path(confdir, "wg-endpointd").write_text(own_config() + "\tlist trigger 'wan'\n")
        network = Path(confdir, "network")
        network.write_text(network.read_text().replace("'office'", "'office-2'"))
        proc.send_signal(signal.SIGHUP)  # ip netns exec execs, so this is the daemon
        wait_for(lambda: state(run_dir)["peers"][0]["description"] == "office-2", 5, "reload")
        after = state(run_dir)["peers"][0]
        assert after["last_switch"] == before["last_switch"]
        assert after["endpoint"] == links["v4a"].endpoint()
        assert (run_dir / "hotplug.list").read_text().split() == ["wan", pair.router_if]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not (run_dir / "wg-endpointd.pid").exists()


def prom_sample(path: Path, name: str, **labels: str) -> float | None:
    """One sample of the metrics file; None while the file or the sample is missing."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == f"wg_endpointd_{name}" and want <= set(
                head.partition("{")[2].rstrip("}").split(",")):
            return float(value)
    return None


def hotplug_hook(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in /sbin/hotplug-call (tests/shell/hotplug-call, after upstream's, under
    busybox sh) whose /etc/hotplug.d/wg-endpointd/ holds one user script that records
    its environment; returns (the hotplug-call to use, the record)."""
    root, record = tmp_path / "root", tmp_path / "hook-record"
    hooks = root / "etc" / "hotplug.d" / "wg-endpointd"
    hooks.mkdir(parents=True)
    (hooks / "50-record").write_text(
        f'echo "$ACTION|$INTERFACE|$PUBLIC_KEY|$FROM|$TO|$REASON" >> {record}\n'
        f'env >> {record}.env\n')
    call = tmp_path / "hotplug-call"
    stub = Path(__file__).resolve().parents[1] / "shell" / "hotplug-call"
    call.write_text(f"#!/bin/sh\nHOTPLUG_ROOT='{root}' exec {tool('busybox')} sh '{stub}' \"$@\"\n")
    call.chmod(0o755)
    return call, record


def test_a_failover_shows_in_the_metrics_file_the_history_and_a_hook(lab, tmp_path,
                                                                      monkeypatch):
    """One real failover: its metrics change, its history entry in the state file, a
    file that `promtool check metrics` accepts, renamed into place every check_interval
    even while nothing changes, and the user's hotplug.d script run with the event."""
    prom = tmp_path / "textfile" / "wg_endpointd.prom"
    prom.parent.mkdir()
    call, record = hotplug_hook(tmp_path)
    monkeypatch.setenv("WG_ENDPOINTD_HOTPLUG_CALL", str(call))  # the daemon inherits it
    links, pair, confdir, run_dir = setup(lab, tmp_path, check_interval="2",
                                          metrics_file=str(prom))
    key, v6, v4 = pair.peer_public, links["v6a"].endpoint(), links["v4a"].endpoint()
    with running(lab, confdir, run_dir):
        wait_for(lambda: prom_sample(prom, "peer_state", peer=key, state="healthy") == 1, 10,
                 "healthy in the metrics")
        assert prom_sample(prom, "peer_switches_total", peer=key, reason="failover") == 0
        assert prom_sample(prom, "peer_endpoint_info", peer=key, endpoint=v6,
                           family="ipv6") == 1
        mtime = prom.stat().st_mtime_ns
        wait_for(lambda: prom.stat().st_mtime_ns > mtime, 2 + 1, "the file renamed again")
        fall_back(lab, run_dir, links, pair)
        wait_for(lambda: prom_sample(prom, "peer_switches_total", peer=key,
                                     reason="failover") == 1, 3, "the switch counted")
        assert prom_sample(prom, "peer_state", peer=key, state="fallback") == 1
        assert prom_sample(prom, "peer_state", peer=key, state="healthy") == 0
        assert prom_sample(prom, "peer_endpoint_info", peer=key, endpoint=v4,
                           family="ipv4") == 1
        at = prom_sample(prom, "peer_last_switch_timestamp_seconds", peer=key)
        assert at is not None and abs(at - time.time()) < 10
        wait_for(lambda: state(run_dir)["peers"][0]["history"], 2, "the history entry")
        [entry] = state(run_dir)["peers"][0]["history"]
        assert (entry["action"], entry["from"], entry["to"], entry["reason"]) == (
            "switch", v6, v4, "failover")
        assert 0 < entry["took"] < 3 and abs(entry["at"] - time.time()) < 10
        with prom.open() as f:
            check = subprocess.run([tool("promtool"), "check", "metrics"], stdin=f,
                                   capture_output=True, text=True, timeout=60)
        assert check.returncode == 0 and not check.stdout + check.stderr, check.stderr
        wait_for(record.exists, 5, "the hook run")
        assert record.read_text().splitlines()[0] == f"switch|{pair.router_if}|{key}|{v6}|{v4}|failover"
        env = record.with_suffix(".env").read_text()
        private = Path(pair.router_private_file).read_text().strip()
        assert private not in env and private not in prom.read_text()
        assert "PRIVATE" not in env and "PRESHARED" not in env and pair.peer_public in env
