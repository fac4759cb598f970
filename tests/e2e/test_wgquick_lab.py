"""wg-quick in the lab (tests/lab/wgquick.py): a real `wg-quick up` on a config file whose
Endpoint is a hostname that dnsmasq serves, split and full tunnel; in the full tunnel the
daemon's probes (system/probe.py) leave outside the tunnel only when they carry wg-quick's
fwmark, and nothing of wg-quick's rules, tables, fwmark or nftables is touched by them;
`wg-quick down` leaves the namespace as it was."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.e2e.helpers import SRC
from tests.lab import Lab, QuickTunnel

pytestmark = pytest.mark.lab
MARK = 51820

PROBE = """
import json, sys
from wg_endpointd.system.net import route_usable
from wg_endpointd.system.probe import IcmpProber
job = json.loads(sys.argv[1])
if job["what"] == "probe":
    out = IcmpProber().probe([job["addresses"]], 1.0, marks=[job["mark"]])
    print(json.dumps({a: r.answered for a, r in out.items()}))
else:
    print(json.dumps({a: route_usable(a, job["mark"]) for a in job["addresses"]}))
"""


def in_router(lab: Lab, what: str, addresses: list[str], mark: int) -> dict[str, bool]:
    """system/probe.py's prober (or net.route_usable) run in the router namespace."""
    job = json.dumps({"what": what, "addresses": addresses, "mark": mark})
    res = lab.router([sys.executable, "-c", PROBE, job], env={"PYTHONPATH": SRC}, timeout=20)
    return json.loads(res.stdout)


def transfer(lab: Lab, tunnel: QuickTunnel) -> tuple[int, int]:
    [line] = lab.router(["wg", "show", tunnel.name, "transfer"]).stdout.splitlines()
    _, rx, tx = line.split("\t")
    return int(rx), int(tx)


def assert_gone(lab: Lab, tunnel: QuickTunnel) -> None:
    assert lab.router(["ip", "link", "show", tunnel.name], check=False).returncode != 0
    assert lab.quick_processes(tunnel) == []
    assert not os.path.exists(f"/var/run/wireguard/{tunnel.name}.sock")


def test_split_tunnel_with_a_hostname_endpoint(lab: Lab) -> None:
    tunnel = lab.add_wg_quick(full=False)
    server = tunnel.server
    # wg resolved the hostname through the lab's dnsmasq: one of the server's addresses
    endpoint = lab.router(["wg", "show", tunnel.name, "endpoints"]).stdout.split("\t")[1].strip()
    assert endpoint in server.endpoints()
    before = transfer(lab, tunnel)
    assert lab.ping_quick(tunnel, 4, timeout=5) and lab.ping_quick(tunnel, 6)
    rx, tx = transfer(lab, tunnel)
    assert rx > before[0] and tx > before[1]  # the pings went through the tunnel
    assert int(lab.router(["wg", "show", tunnel.name, "latest-handshakes"]).stdout.split()[1]) > 0
    # a split tunnel: no fwmark, no rules, nothing else routed into it
    assert lab.wg_fwmark(tunnel) == "off"
    assert "lookup 51820" not in lab.routing_state()["rules4"]
    assert tunnel.name not in lab.router(["ip", "route", "get", "192.0.2.2"]).stdout
    lab.wg_quick_down(tunnel)
    assert_gone(lab, tunnel)


COUNTERS = """table inet wgqcount
delete table inet wgqcount
table inet wgqcount {{
  counter up4 {{ }}
  counter up6 {{ }}
  counter tun4 {{ }}
  counter tun6 {{ }}
  chain in {{ type filter hook input priority -10; policy accept;
    iifname "{q4}" ip daddr {a4} icmp type echo-request counter name "up4"
    iifname "{q6}" ip6 daddr {a6} icmpv6 type echo-request counter name "up6"
    iifname "{wg}" ip daddr {a4} icmp type echo-request counter name "tun4"
    iifname "{wg}" ip6 daddr {a6} icmpv6 type echo-request counter name "tun6"
  }}
}}
"""


def echo_requests(lab: Lab) -> dict[str, int]:
    """Echo requests to the server's underlay addresses that reached the peer namespace,
    by the way they came: the uplinks (up4, up6) or the tunnel (tun4, tun6)."""
    out = {}
    for name in ("up4", "up6", "tun4", "tun6"):
        text = lab.peer(["nft", "list", "counter", "inet", "wgqcount", name]).stdout
        words = text.split()
        out[name] = int(words[words.index("packets") + 1])
    return out


def test_full_tunnel_probes_leave_outside_only_with_the_fwmark(lab: Lab) -> None:
    links = lab.add_quick_uplinks()
    untouched = lab.routing_state()
    tunnel = lab.add_wg_quick(full=True)
    server = tunnel.server
    a4, a6 = server.v4.peer_addr, server.v6.peer_addr

    # what wg-quick set up (wireguard-tools src/wg-quick/linux.bash, add_default)
    up = lab.routing_state()
    assert lab.wg_fwmark(tunnel) == "0xca6c"
    for rules in (up["rules4"], up["rules6"]):
        assert "not from all fwmark 0xca6c lookup 51820" in rules
        assert "from all lookup main suppress_prefixlength 0" in rules
    assert f"default dev {tunnel.name} table 51820" in up["routes4"]
    assert f"default dev {tunnel.name} table 51820" in up["routes6"]
    assert f"table ip wg-quick-{tunnel.name}" in up["nft"]
    assert lab.ping_quick(tunnel, 4, timeout=5) and lab.ping_quick(tunnel, 6)
    # an unmarked packet to the server's own addresses is routed into the tunnel
    assert f"dev {tunnel.name}" in lab.router(["ip", "route", "get", a4]).stdout
    assert f"dev {links['q4'].router_if}" in lab.router(
        ["ip", "route", "get", a4, "mark", str(MARK)]).stdout

    lab.peer(["nft", "-f", "-"], input=COUNTERS.format(
        q4=links["q4"].peer_if, q6=links["q6"].peer_if, wg=server.wg_if, a4=a4, a6=a6))
    # marked: the probes reach the candidates through the uplinks, and are answered
    assert in_router(lab, "probe", [a4, a6], MARK) == {a4: True, a6: True}
    assert echo_requests(lab) == {"up4": 1, "up6": 1, "tun4": 0, "tun6": 0}
    # unmarked: none reaches them outside the tunnel; they went into it
    in_router(lab, "probe", [a4, a6], 0)
    assert echo_requests(lab) == {"up4": 1, "up6": 1, "tun4": 1, "tun6": 1}

    # the danger: the IPv6 path answers no ping; only the marked probe says so
    lab.block(server.v6, "icmp")
    assert in_router(lab, "probe", [a6], MARK) == {a6: False}
    assert in_router(lab, "probe", [a6], 0) == {a6: True}  # answered through the tunnel
    lab.unblock(server.v6)

    # route checks follow the mark too: without an IPv6 uplink only the tunnel has ::/0
    assert in_router(lab, "route", [a4, a6], MARK) == {a4: True, a6: True}
    default6 = ["-6", "route", "default", "via", a6, "dev", links["q6"].router_if, "onlink"]
    lab.router(["ip", *default6[:2], "del", *default6[2:]])
    try:
        assert in_router(lab, "route", [a4, a6], MARK) == {a4: True, a6: False}
        assert in_router(lab, "route", [a6], 0) == {a6: True}
    finally:
        lab.router(["ip", *default6[:2], "add", *default6[2:]])

    # nothing of wg-quick's was touched; `wg-quick down` leaves the namespace as it was
    lab.peer(["nft", "delete", "table", "inet", "wgqcount"])
    assert lab.routing_state() == up and lab.wg_fwmark(tunnel) == "0xca6c"
    lab.wg_quick_down(tunnel)
    assert_gone(lab, tunnel)
    assert lab.routing_state() == untouched
