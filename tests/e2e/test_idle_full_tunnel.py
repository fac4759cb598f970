"""Issue 9: an idle full tunnel (0.0.0.0/0, keepalive off, no traffic) is never removed and
re-added while it is alive: with an address to test (the other end of the router's tunnel
subnet) and without one (a /32 tunnel address: judged by handshakes and unanswered traffic)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import endpoint, wait_for
from tests.e2e.test_daemon import own_config, running, state
from tests.e2e.test_full_tunnel import LIVE, full_tunnel

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("subnet", [True, False], ids=["tunnel-subnet", "slash32-only"])
def test_idle_full_tunnel_is_not_churned(lab, tmp_path, subnet):
    _, pair, confdir = full_tunnel(lab, tmp_path, own_config(
        check_interval="1", dead_after="3", resolve_interval="2", verify_timeout="1"))
    lab.set_dns({"peer.wg.test": [LIVE]})
    if subnet:  # the router's tunnel address with its subnet, as a provider hands it out
        lab.router(["ip", "addr", "del", f"{pair.router_tunnel_ip}/32", "dev", pair.router_if])
        lab.router(["ip", "addr", "add", f"{pair.router_tunnel_ip}/25", "dev", pair.router_if])
    run_dir = tmp_path / "run"
    with running(lab, confdir, run_dir):
        wait_for(lambda: endpoint(lab, pair) == f"{LIVE}:51820"
                 and state(run_dir)["peers"][0]["phase"] == "healthy", 15, "healthy")
        rx = [int(lab.wg_dump(pair)[5])]
        for _ in range(12):  # 12 s of idling: 12 check intervals, 6 scheduled checks
            time.sleep(1)
            rx.append(int(lab.wg_dump(pair)[5]))
    log = (run_dir.parent / "daemon.log").read_text()
    assert rx == sorted(rx), f"counters went back to 0: the peer was re-created {rx}"
    assert log.count("switched") <= 1 and "not verified" not in log.split("healthy", 1)[1]
    if subnet:
        assert rx[-1] > rx[0]  # the test datagrams drew answers: the path was proven alive
    else:
        assert "no tunnel address to test its path" in log
