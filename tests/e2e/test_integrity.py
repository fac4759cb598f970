"""Issue 7 in the real-WireGuard lab: peer identity, no stale write-backs, one-call resets
that survive SIGKILL, one instance per run directory, SIGTERM during DNS."""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from tests.e2e.helpers import (
    NAME,
    daemon,
    endpoint,
    four_links,
    peer_section,
    reap,
    run_cli,
    start_cli,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.lab

SLOW = "config globals 'globals'\n\toption verify_timeout '3'\n"


def test_same_key_on_two_interfaces(lab, tmp_path):
    """One server reached over two tunnels; only wg0's path breaks. wg0 is fixed from wg0's
    own attributes and wg1 is left exactly as it was."""
    links = four_links(lab)
    extra = ["198.51.100.129/32", "198.51.100.250/32", "2001:db8:ffff::9/128"]
    a = lab.add_wg_pair(51820, psk=True, allowed_ips_router=extra)
    b = lab.add_wg_pair(51821, router_keepalive=7, same_peer_key_as=a)
    assert a.peer_public == b.peer_public
    lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
    lab.block(links["v6a"], "all")
    lab.set_endpoint(a, links["v6a"].endpoint(a.peer_port))
    lab.reset_router_peer(b, links["v4a"].endpoint(b.peer_port))  # keepalive with an endpoint
    assert lab.ping_through_tunnel(b, count=3)
    b_before = lab.wg_dump(b)
    confdir = write_config(tmp_path, [a, b], peer_section(a) + peer_section(b))

    res, _ = run_cli(lab, "once", "--config-dir", confdir)

    assert res.returncode == 0, res.stderr
    after = lab.wg_dump(a)
    assert after[2] == links["v4a"].endpoint(a.peer_port)
    assert after[1] != "(none)" and sorted(after[3].split(",")) == sorted(extra)
    assert after[7] == "off"
    b_after = lab.wg_dump(b)
    assert b_after[1:4] == b_before[1:4] and b_after[7] == "7"
    lines = [ln for ln in res.stderr.splitlines() if a.peer_public[:8] in ln and ": " in ln]
    assert any(ln.startswith(f"INFO: {a.router_if}/") for ln in lines)
    assert any(ln.startswith(f"INFO: {b.router_if}/") for ln in lines)
    assert lab.ping_through_tunnel(a) and lab.ping_through_tunnel(b)


@pytest.mark.parametrize("edit", ["remove", "allowed-ips"])
def test_peer_edited_during_verification_is_not_reverted(lab, tmp_path, edit):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820, psk=True)
    lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
    lab.block(links["v6a"], "all")
    lab.block(links["v4a"], "udp")
    lab.set_endpoint(pair, links["v6a"].endpoint())
    confdir = write_config(tmp_path, [pair], peer_section(pair), own=SLOW)

    proc = start_cli(lab, "once", "--config-dir", confdir)
    try:  # wait until the first trial is under way, then edit the peer as a user would
        wait_for(lambda: endpoint(lab, pair) != links["v6a"].endpoint()
                 or lab.wg_dump(pair)[7] != "off", 10, "first trial")
        time.sleep(0.3)
        if edit == "remove":
            lab.router(["wg", "set", pair.router_if, "peer", pair.peer_public, "remove"])
        else:
            lab.router(["wg", "set", pair.router_if, "peer", pair.peer_public,
                        "allowed-ips", "198.51.100.129/32,198.51.100.251/32",
                        "persistent-keepalive", "9"])
    finally:
        out = reap(proc)
    time.sleep(0.5)
    dump = lab.router(["wg", "show", pair.router_if, "dump"]).stdout
    if edit == "remove":
        assert pair.peer_public not in dump, out
    else:
        fields = lab.wg_dump(pair)
        assert fields[3] == "198.51.100.129/32,198.51.100.251/32" and fields[7] == "9", out
        assert fields[1] != "(none)"
    assert "during a switch" in out and "Traceback" not in out


def test_sigkill_at_random_moments_never_corrupts_the_peer(lab, tmp_path):
    """22 `once` runs killed (with their `wg` children) at random moments of a switch."""
    links = four_links(lab)
    allowed = ["198.51.100.129/32", "2001:db8:ffff::7/128"]
    pair = lab.add_wg_pair(51820, psk=True, allowed_ips_router=allowed)
    lab.set_dns({NAME: [links["v6a"].peer_addr, links["v6b"].peer_addr,
                        links["v4a"].peer_addr]})
    lab.block(links["v6a"], "all")
    lab.block(links["v6b"], "udp")
    confdir = write_config(tmp_path, [pair], peer_section(pair),
                           own="config globals 'globals'\n\toption verify_timeout '0.3'\n")
    psk = open(pair.psk_file).read().strip()
    rng = random.Random(7)
    killed_mid_switch = 0
    for i in range(22):
        lab.reset_router_peer(pair, links["v6a"].endpoint())
        proc = start_cli(lab, "once", "--config-dir", confdir)
        time.sleep(rng.uniform(0.15, 1.2))
        if proc.poll() is None:
            killed_mid_switch += endpoint(lab, pair) != links["v6a"].endpoint()
            os.killpg(proc.pid, signal.SIGKILL)
        reap(proc, timeout=10)
        fields = lab.wg_dump(pair)  # raises when the peer is gone
        assert fields[1] == psk, f"run {i}: preshared key lost"
        assert sorted(fields[3].split(",")) == sorted(allowed), f"run {i}: {fields[3]}"
        assert fields[7] == "off", f"run {i}: keepalive left at {fields[7]}"
    print(f"{killed_mid_switch} of 22 kills landed while a switch was in progress")
    assert killed_mid_switch >= 3  # the kills really hit switches in progress


def test_one_daemon_per_run_directory_and_once_does_not_race_it(lab, tmp_path):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    lab.set_dns({NAME: [links["v4a"].peer_addr]})
    lab.set_endpoint(pair, links["v4a"].endpoint())
    confdir = write_config(tmp_path, [pair], peer_section(pair))
    run_dir = tmp_path / "run"
    with daemon(lab, confdir, run_dir) as first:
        second = start_cli(lab, "run", "--config-dir", confdir, run_dir=str(run_dir))
        out = reap(second, timeout=30)
        assert second.returncode == 1, out
        assert "already running (pid" in out and str(run_dir) in out
        assert out.strip().count("\n") == 0
        once = start_cli(lab, "once", "--config-dir", confdir, run_dir=str(run_dir))
        out = reap(once)
        assert once.returncode == 2 and "does not race it" in out
        assert first.poll() is None  # the daemon is untouched
    assert lab.ping_through_tunnel(pair)


def test_sigterm_while_a_round_waits_on_dns(lab, tmp_path):
    """The resolver's server drops queries; SIGTERM still ends the daemon within 2 s and
    nothing is switched."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    lab.set_endpoint(pair, links["v4a"].endpoint())
    lab.block(links["v4b"], "all")  # the name server's link: queries vanish
    resolv = f"/etc/netns/{lab.router_ns}"
    os.makedirs(resolv, exist_ok=True)
    with open(f"{resolv}/resolv.conf", "w") as f:
        f.write(f"nameserver {links['v4b'].peer_addr}\noptions timeout:5 attempts:3\n")
    confdir = write_config(tmp_path, [pair], peer_section(pair))
    run_dir = tmp_path / "run"
    proc = start_cli(lab, "run", "--config-dir", confdir, run_dir=str(run_dir))
    try:
        wait_for(lambda: (run_dir / "wg-endpointd.pid").exists(), 10, "daemon start")
        time.sleep(1.0)  # well inside the first round's name lookup
        # the first round is still waiting on the name; the loop beside it is not
        phases = [p["phase"] for p in json.loads((run_dir / "state.json").read_text())["peers"]]
        assert phases == ["unknown"], phases
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = reap(proc, timeout=10)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, out
    print(f"SIGTERM during DNS: exited after {took:.3f} s")
    assert took < 2.0, f"SIGTERM took {took:.2f} s"
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    assert "switched" not in out and "Traceback" not in out
