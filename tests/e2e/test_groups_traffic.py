"""Issue 17 against real WireGuard, with default timers: a death is found as fast with
traffic in the tunnel as without, and a returning preferred server carries the traffic
again within the hold plus one cycle."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.helpers import wait_for
from tests.e2e.test_groups import group_active, holds, running, setup, start_on_preferred, state

pytestmark = pytest.mark.lab


@contextmanager
def pinging(lab, address: str, seconds: int) -> Iterator[None]:
    """A user's ping through the tunnel, five a second, for at most `seconds`."""
    proc = subprocess.Popen(["ip", "netns", "exec", lab.router_ns, "ping", "-q", "-i", "0.2",
                             "-w", str(seconds), address], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.kill()
        proc.wait(timeout=5)


def keepalive(lab, pair, standby, seconds: int = 5) -> None:
    """Both servers with `persistent_keepalive`, as a new user configures them."""
    for key in (pair.peer_public, standby.public):
        lab.router(["wg", "set", pair.router_if, "peer", key, "persistent-keepalive",
                    str(seconds)])


def test_active_server_death_under_a_running_ping_is_found_within_15s(lab, tmp_path):
    """Default check_interval (10 s) and dead_after (30 s); the gateway address answers
    inside the tunnel. Before, the ping's traffic spared the test datagrams and the death
    was found by dead_after (28.7 s median)."""
    (v6, v4), pair, standby, confdir, run_dir = setup(
        lab, tmp_path, check_interval="10", dead_after="30", verify_timeout="2")
    keepalive(lab, pair, standby)
    with running(lab, confdir, run_dir) as (_, log):
        start_on_preferred(lab, pair, run_dir)
        with pinging(lab, pair.peer_tunnel_ip, 60):
            time.sleep(12)  # traffic for a whole cycle first
            lab.block(v6, "both")
            lab.block(v4, "both")  # the preferred server dies silently, both ways
            died = time.monotonic()
            took = wait_for(lambda: holds(lab, pair, standby.public), 30, "failover", step=0.05)
        text = log.read_text()
        assert "no answer to a test datagram" in text, text
        assert "no sign of life for 30 s" not in text
        wait_for(lambda: group_active(run_dir) == standby.public, 3, "state file")
        print(f"active server died under a ping -> standby holds the allowed IPs: "
              f"{time.monotonic() - died:.2f} s")
        assert took <= 15, took


def test_returning_preferred_server_carries_traffic_within_hold_plus_a_cycle(lab, tmp_path):
    (v6, v4), pair, standby, confdir, run_dir = setup(
        lab, tmp_path, hold="5", check_interval="10", dead_after="30", verify_timeout="2")
    keepalive(lab, pair, standby)
    with running(lab, confdir, run_dir) as (_, log):
        start_on_preferred(lab, pair, run_dir)
        lab.block(v6, "all")
        lab.block(v4, "all")
        wait_for(lambda: holds(lab, pair, standby.public), 30, "failover", step=0.05)
        wait_for(lambda: state(run_dir)["groups"][0]["members"][0]["health"] == "dead", 30,
                 "preferred seen dead")
        time.sleep(25)  # its repairs back off
        lab.unblock(v6)
        lab.unblock(v4)
        took = wait_for(lambda: holds(lab, pair, pair.peer_public), 40, "failback", step=0.05)
        assert lab.ping_through_tunnel(pair)
        print(f"preferred server back -> it holds the allowed IPs again: {took:.2f} s "
              f"(failback_hold 5 s)")
        assert took <= 5 + 10 + 1, log.read_text()[-3000:]  # hold + a cycle, + slack
