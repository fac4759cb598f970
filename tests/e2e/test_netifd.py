"""netifd re-creates a managed interface from UCI (its first resolved address): the daemon
puts its verified choice back at once, without a verify wait on the dead address."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.e2e.helpers import (
    NAME,
    endpoint,
    four_links,
    hotplug,
    peer_section,
    rebuild_as_netifd_does,
    wait_for,
    write_config,
)
from tests.e2e.test_daemon import fall_back, running, setup, state

pytestmark = pytest.mark.lab


def test_recreated_interface_gets_the_verified_endpoint_back_at_once(lab, tmp_path):
    links, pair, confdir, run_dir = setup(lab, tmp_path)
    took = []
    with running(lab, confdir, run_dir):
        fall_back(lab, run_dir, links, pair)
        wait_for(lambda: state(run_dir)["peers"][0]["phase"] == "fallback", 10, "verified")
        for _ in range(5):
            # what wireguard.sh does on ifup: the peer again, on UCI's first address
            lab.reset_router_peer(pair, links["v6a"].endpoint())
            start = time.monotonic()
            hotplug(lab, run_dir, ACTION="ifup", INTERFACE=pair.router_if)
            wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                     and lab.wg_dump(pair)[4] != "0", 5, "re-applied")
            took.append(time.monotonic() - start)
            time.sleep(0.3)
    log = (run_dir.parent / "daemon.log").read_text()
    assert "re-applying" in log and "ERROR" not in log
    # the "from" of a switch is what the re-created interface had, not the daemon's memory
    assert f"switched {links['v6a'].endpoint()} -> {links['v4a'].endpoint()}" in log
    print(f"re-applied after ifup: median {statistics.median(took):.3f} s, "
          f"max {max(took):.3f} s")
    assert statistics.median(took) < 1.5  # target 0.5 s; loose for a noisy machine


def setup_two_ipv6_uplinks(lab, tmp_path):
    """DNS answers [v6a, v6b, v4a]; IPv6 through wan6 (v6a) is blocked, so the daemon
    sits verified on v6b (through wan6b)."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820, router_keepalive=None)
    lab.set_dns({NAME: [links[k].peer_addr for k in ("v6a", "v6b", "v4a")]})
    lab.block(links["v6a"], "all")
    lab.set_endpoint(pair, links["v6b"].endpoint())
    assert lab.ping_through_tunnel(pair)
    confdir = write_config(tmp_path, [pair], peer_section(pair))
    return links, pair, confdir, tmp_path / "run"


def test_uplink_down_under_netifd_moves_to_a_working_candidate_within_1s(lab, tmp_path):
    """Issue 16 part 2: after the rebuild the peer sits on an address the daemon never
    verified, with no session: it gets the short wait of a sessionless peer at most, and
    goes after the IPv4 candidate that answers ping."""
    links, pair, confdir, run_dir = setup_two_ipv6_uplinks(lab, tmp_path)
    took = []
    for i in range(3):
        if i:  # v6b works again; the next daemon starts verified on it
            lab.unblock(links["v6b"])
            lab.reset_router_peer(pair, links["v6b"].endpoint())
            run_dir = tmp_path / f"run{i}"
        with running(lab, confdir, run_dir):
            wait_for(lambda rd=run_dir: state(rd)["peers"][0]["phase"] == "healthy", 10,
                     "healthy")
            start = time.monotonic()
            rebuild_as_netifd_does(lab, run_dir, pair, links["v6b"], links["v6a"], "wan6b")
            wait_for(lambda: endpoint(lab, pair) == links["v4a"].endpoint()
                     and lab.wg_dump(pair)[4] != "0", 3, "moved", step=0.005)
            took.append(time.monotonic() - start)
    log = (run_dir.parent / "daemon.log").read_text()
    assert "checking current endpoint first" not in log
    assert f"{links['v6a'].endpoint()} not verified within 2 s" not in log
    assert "ERROR" not in log and "Traceback" not in log
    print(f"uplink down, netifd rebuilt wg -> verified on IPv4: "
          f"{', '.join(f'{t:.3f}' for t in took)} s")
    assert max(took) <= 1.0, took
