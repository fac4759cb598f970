"""The way out of the tunnels, from netifd's dump or the kernel's default routes."""

import json

import pytest

from tests import netifd
from tests.runtime.test_routes_status import W0, IpRoutes
from wg_endpointd.core import uplinks
from wg_endpointd.system.routes import PROTO, HostRoutes

WAN = netifd.Iface("wan", "eth1", addresses=[("192.0.2.10", 24)], gateways=["192.0.2.1"])
WWAN = netifd.Iface("wwan", "wwan0", "qmi", metric=20, addresses=[("198.51.100.9", 24)],
                    gateways=["198.51.100.1"])
WAN6 = netifd.Iface("wan6", "eth1", "dhcpv6", addresses=[("2001:db8:5::10", 64)],
                    gateways=["fe80::1"])
WG = netifd.Iface("wg0", "wg0", "wireguard", addresses=[("10.99.0.2", 32)])


def way(*ifaces, address="203.0.113.5", avoid=("wg0",)):
    return uplinks.path_to(uplinks.parse_netifd_dump(netifd.dump(*ifaces)), address, avoid)


def test_the_uplink_gateway_comes_from_netifd():
    assert way(WAN, WG) == uplinks.Path("eth1", "192.0.2.1", "wan")


def test_the_lowest_metric_wins_and_a_down_or_wireguard_interface_never_does():
    assert way(WWAN, WAN, WG) == uplinks.Path("eth1", "192.0.2.1", "wan")
    down = netifd.Iface("wan", "eth1", up=False, gateways=["192.0.2.1"])
    assert way(down, WWAN, WG) == uplinks.Path("wwan0", "198.51.100.1", "wwan")
    full = netifd.Iface("wg1", "wg1", "wireguard", gateways=["10.98.0.1"])
    assert way(full) is None


def test_an_address_on_the_uplinks_own_subnet_needs_no_gateway():
    assert way(WAN, WG, address="192.0.2.77") == uplinks.Path("eth1", None, "wan")


def test_the_gateway_must_be_of_the_address_family():
    assert way(WAN, WAN6, address="2001:db8:9::1") == uplinks.Path("eth1", "fe80::1", "wan6")
    assert way(WAN, address="2001:db8:9::1") is None


def test_the_tunnel_devices_are_avoided_whatever_netifd_calls_them():
    odd = netifd.Iface("vpn", "wg0", "dhcp", gateways=["192.0.2.1"])
    assert way(odd, avoid={"wg0"}) is None


def test_a_point_to_point_default_route_is_on_link():
    ppp = {"interface": [{"interface": "wan", "up": True, "l3_device": "pppoe-wan",
                          "proto": "pppoe", "metric": 0, "ipv4-address": [],
                          "route": [{"target": "0.0.0.0", "mask": 0, "nexthop": "0.0.0.0",
                                     "source": "0.0.0.0/0"}]}]}
    found = uplinks.parse_netifd_dump(json.dumps(ppp))
    assert uplinks.path_to(found, "203.0.113.5", ()) == uplinks.Path("pppoe-wan", None, "wan")


@pytest.mark.parametrize("text", ["", "[]", '{"interface": 3}', "not json"])
def test_a_dump_that_is_not_netifds_is_refused(text):
    with pytest.raises(ValueError):
        uplinks.parse_netifd_dump(text)


def test_kernel_default_routes_lowest_metric_outside_the_tunnel():
    text = ("default dev wg0 proto static scope link\n"
            "default via 192.0.2.1 dev eth1 proto dhcp metric 10\n"
            "default via 198.51.100.1 dev wwan0 metric 5\n")
    found = uplinks.parse_kernel_defaults(text, 4)
    assert uplinks.path_to(found, "203.0.113.5", {"wg0"}) == uplinks.Path(
        "wwan0", "198.51.100.1", "wwan0")
    assert uplinks.path_to(uplinks.parse_kernel_defaults("default dev wg0 scope link\n", 4),
                           "203.0.113.5", {"wg0"}) is None


def test_host_route_uses_netifd_when_the_tunnel_replaced_the_default_route():
    """openwrt-facts.md §10: the kernel has only `default dev wg0`; netifd knows the way."""
    ip = IpRoutes(netifd=netifd.dump(WAN, WG))
    ip.defaults = "default dev wg0 proto static scope link\n"
    routes = HostRoutes(run=ip)
    assert routes.ensure(W0, "wg0", "203.0.113.5")
    assert ip.table["203.0.113.5"] == ("192.0.2.1", "eth1", PROTO)
    assert ["ubus", "call", "network.interface", "dump"] in ip.calls


def test_without_ubus_the_kernel_tables_are_asked():
    ip = IpRoutes()  # no ubus: FileNotFoundError, as on a Linux host
    routes = HostRoutes(run=ip)
    assert routes.ensure(W0, "wg0", "203.0.113.5")
    assert ip.table["203.0.113.5"] == ("198.51.100.1", "wan", PROTO)


def test_probe_routes_go_after_the_probe_unless_they_became_the_endpoint():
    ip = IpRoutes()
    routes = HostRoutes(run=ip)
    for address in ("203.0.113.5", "203.0.113.6"):
        assert routes.ensure(W0, "wg0", address, probe=True)
    routes.end_probes(W0, "203.0.113.6")
    assert "203.0.113.5" not in ip.table and "203.0.113.6" in ip.table
    routes.clear()
    assert not [a for a, v in ip.table.items() if v[2] == PROTO]
