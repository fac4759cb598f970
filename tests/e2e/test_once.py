"""`wg-endpointd once` against real WireGuard, real DNS and real packet filtering."""

from __future__ import annotations

import time

import pytest

from tests.e2e import scenarios
from tests.e2e.helpers import NAME, endpoint, four_links, peer_section, run_cli, write_config

pytestmark = pytest.mark.lab


def test_ipv6_dead_moves_to_ipv4(lab, tmp_path):
    staged = scenarios.ipv6_dead(lab, tmp_path)
    links, [pair] = staged.links, staged.pairs

    res, took = run_cli(lab, "once", "--config-dir", staged.confdir)

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    assert "switched" in res.stderr and links["v4a"].endpoint() in res.stderr
    assert lab.ping_through_tunnel(pair, count=2)
    assert took < 10


def test_icmp_answers_but_wireguard_udp_dropped_chooses_ipv4(lab, tmp_path):
    staged = scenarios.icmp_but_udp_dropped(lab, tmp_path)
    links, [pair] = staged.links, staged.pairs
    assert lab.router(["ping", "-6", "-c1", "-W1", links["v6a"].peer_addr], check=False).returncode == 0

    res, _ = run_cli(lab, "once", "--config-dir", staged.confdir, "-v")

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    # ranked first (it answers ping, preferred family), tried, and rejected by WireGuard
    assert f"{links['v6a'].endpoint()} not verified" in res.stderr
    assert lab.ping_through_tunnel(pair)
    assert lab.wg_dump(pair)[1] != "(none)"  # preshared key still set


def test_peer_moved_in_dns(lab, tmp_path):
    staged = scenarios.moved_in_dns(lab, tmp_path)
    links, [pair] = staged.links, staged.pairs

    res, _ = run_cli(lab, "once", "--config-dir", staged.confdir)

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    assert lab.ping_through_tunnel(pair)


def test_healthy_endpoint_not_first_is_left_alone(lab, tmp_path):
    staged = scenarios.healthy_not_first(lab, tmp_path)
    links, [pair] = staged.links, staged.pairs
    before = lab.wg_dump(pair)
    time.sleep(1.1)  # a reset would give a visibly newer handshake time

    res, _ = run_cli(lab, "once", "--config-dir", staged.confdir)

    after = lab.wg_dump(pair)
    assert res.returncode == 0, res.stderr
    assert "healthy" in res.stderr and "switched" not in res.stderr
    assert after[2] == links["v4a"].endpoint()
    assert after[4] == before[4]  # same handshake: the session was not reset


def test_broken_peer_next_to_good_one(lab, tmp_path):
    staged = scenarios.broken_next_to_good(lab, tmp_path)
    links, [good, _] = staged.links, staged.pairs

    res, _ = run_cli(lab, "once", "--config-dir", staged.confdir)

    assert res.returncode == 1, res.stderr
    assert "endpoint_port" in res.stderr and "network:" in res.stderr
    assert "Traceback" not in res.stderr
    assert endpoint(lab, good) == links["v4a"].endpoint()
    assert lab.ping_through_tunnel(good)


def test_peer_answering_no_ping_is_found(lab, tmp_path):
    staged = scenarios.no_icmp(lab, tmp_path)
    links, [pair] = staged.links, staged.pairs
    assert lab.router(["ping", "-c1", "-W1", links["v4a"].peer_addr], check=False).returncode != 0

    res, _ = run_cli(lab, "once", "--config-dir", staged.confdir, "-v")

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    assert lab.ping_through_tunnel(pair)
    # the current endpoint, just shown dead and silent, is not re-tried first
    assert f"{links['v6a'].endpoint()} not verified" not in res.stderr


def test_once_without_uci(lab):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    lab.set_dns({NAME: [links["v6b"].peer_addr, links["v4b"].peer_addr]})
    lab.block(links["v6b"], "all")
    lab.set_endpoint(pair, links["v6b"].endpoint())

    res, _ = run_cli(lab, "once", "--interface", pair.router_if, "--peer", pair.peer_public,
                     "--host", NAME, "--port", str(pair.peer_port))

    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4b"].endpoint()


def test_missing_wg_and_unknown_peer_are_one_line_errors(lab, tmp_path):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    lab.set_dns({NAME: [links["v4a"].peer_addr]})
    other_key = lab.add_wg_pair(51821).router_public  # a key that is not a peer of pair.router_if
    res, _ = run_cli(lab, "once", "--interface", pair.router_if, "--peer", other_key,
                     "--host", NAME)
    assert res.returncode == 1 and "is not on" in res.stderr and "Traceback" not in res.stderr
    confdir = write_config(tmp_path, [pair], peer_section(pair))
    env_path = "/nonexistent"
    res = lab.router(["env", f"PATH={env_path}", __import__("sys").executable, "-m", "wg_endpointd",
                      "once", "--config-dir", confdir], check=False,
                     env={"PYTHONPATH": __import__("tests.e2e.helpers").e2e.helpers.SRC})
    assert res.returncode == 1 and "wg binary not found" in res.stderr
    assert "Traceback" not in res.stderr
