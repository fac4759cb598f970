"""Issue 8: warn at start when netifd's host dependency will take a working tunnel down."""

from wg_endpointd import config
from wg_endpointd.config import uci

K = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="


def build(iface_opts="", peer_opts="", own=""):
    net = uci.parse("config interface 'wg0'\n\toption proto 'wireguard'\n" + iface_opts +
                    f"config wireguard_wg0\n\toption public_key '{K}'\n" + peer_opts,
                    "/etc/config/network")
    return config.build(net, uci.parse(own, "/etc/config/wg-endpointd") if own else None)


def test_hostname_endpoint_without_nohostroute_is_advised():
    cfg = build(peer_opts="\toption endpoint_host 'vpn.example.net'\n")
    [line] = cfg.advice
    assert "interface 'wg0' has no option nohostroute '1'" in line
    assert line.startswith("/etc/config/network: ") and "uci set network.wg0.nohostroute=1" in line
    assert cfg.problems == ()  # advice, not an error: `once` still exits 0


def test_nohostroute_set_or_fixed_literal_needs_no_advice():
    assert build("\toption nohostroute '1'\n", "\toption endpoint_host 'vpn.example.net'\n"
                 ).advice == ()
    assert build(peer_opts="\toption endpoint_host '192.0.2.1'\n").advice == ()
    assert build(peer_opts="").advice == ()  # passive peer: nothing to move


def test_full_tunnel_without_any_host_route_is_advised():
    cfg = build("\toption nohostroute '1'\n",
                "\toption endpoint_host 'vpn.example.net'\n\tlist allowed_ips '0.0.0.0/0'\n"
                "\toption route_allowed_ips '1'\n",
                "config globals 'globals'\n\toption host_routes '0'\n")
    [line] = cfg.advice
    assert "nothing routes the endpoint" in line and "host_routes '1'" in line
