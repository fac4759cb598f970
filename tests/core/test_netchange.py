"""Which rtnetlink changes wake a round (core/netchange.py), on literal messages."""

import pytest

from wg_endpointd.core import netevents as ne
from wg_endpointd.core.netchange import NetWatch
from wg_endpointd.core.netevents import Addr, Link, Route

UP = ne.IFF_UP | ne.IFF_RUNNING | ne.IFF_LOWER_UP
WG = frozenset({"wg0"})
ETH0, ETH1, WG0, LO = (Link(True, 2, "eth0", UP), Link(True, 3, "eth1", UP),
                       Link(True, 4, "wg0", UP), Link(True, 1, "lo", UP | ne.IFF_LOOPBACK))


def default(gw: str | None = "192.0.2.1", oif: int = 2, new: bool = True, **kw: object) -> Route:
    family = ne.AF_INET6 if ":" in (gw or "") else ne.AF_INET
    fields: dict = {"table": ne.RT_TABLE_MAIN, "protocol": 4, "type": ne.RTN_UNICAST,
                    "dst_len": 0, "nexthops": ((gw, oif),), **kw}
    return Route(new, family, **fields)


def addr(address: str, flags: int = 0, new: bool = True, index: int = 2, scope: int = 0,
         plen: int = 64, label: str = "") -> Addr:
    family = ne.AF_INET6 if ":" in address else ne.AF_INET
    return Addr(new, index, family, plen, flags, scope, address, label)


@pytest.fixture
def watch() -> NetWatch:
    w = NetWatch()
    w.seed([LO, ETH0, ETH1, WG0, default()])
    return w


def test_a_seed_reports_nothing_and_sets_the_picture(watch):
    assert set(watch.links) == {1, 2, 3, 4}
    assert watch.feed(default(), WG) is None  # the same route told again


def test_a_default_route_going_coming_and_changing_its_gateway(watch):
    assert watch.feed(default(new=False), WG) == "default route via 192.0.2.1 on eth0 removed"
    assert watch.feed(default(), WG) == "default route via 192.0.2.1 on eth0 added"
    replace = default("192.0.2.9", nlflags=ne.NLM_F_REPLACE)
    assert watch.feed(replace, WG) == ("default route via 192.0.2.9 on eth0 replaces "
                                       "default route via 192.0.2.1 on eth0")
    assert watch.feed(replace, WG) is None  # replaced by itself (a DHCP renewal)
    assert watch.feed(default("fe80::1", 3), WG) == "default route via fe80::1 on eth1 added"
    assert watch.feed(default("fe80::1", 3), WG) is None  # an RA refresh


def test_other_tables_count_only_when_watched():
    watch = NetWatch(tables=[100])
    watch.seed([ETH0])
    assert watch.feed(default(table=200), ()) is None
    assert watch.feed(default(table=100), ()) == ("default route via 192.0.2.1 on eth0 "
                                                  "(table 100) added")


@pytest.mark.parametrize("route", [
    default(protocol=186),  # the daemon's own
    default(dst_len=24),  # not a default route
    default(oif=4),  # through a WireGuard interface
    default(None, 1, type=ne.RTN_UNREACHABLE),  # on loopback
    default(rflags=ne.RTM_F_CLONED),
    default(type=2),  # RTN_LOCAL
    default(table=51820),  # wg-quick's table, not watched
])
def test_routes_that_never_count(watch, route):
    assert watch.feed(route, WG) is None
    assert watch.feed(Route(**{**{f: getattr(route, f) for f in route.__slots__},
                               "new": False}), WG) is None


def test_other_route_types_and_multipath_count(watch):
    assert watch.feed(default(None, 0, type=ne.RTN_BLACKHOLE, nexthops=()), WG) == (
        "blackhole default route added")
    both = default(nexthops=(("192.0.2.1", 2), ("198.51.100.1", 4)), priority=5)
    assert watch.feed(both, WG) == ("default route via 192.0.2.1 on eth0, "
                                    "via 198.51.100.1 on wg0 added")
    assert watch.feed(default(oif=9, priority=7), WG) == (
        "default route via 192.0.2.1 on ifindex 9 added")


def test_addresses_count_when_they_become_usable_or_stop_being(watch):
    assert watch.feed(addr("2001:db8::5", ne.IFA_F_TENTATIVE), WG) is None  # DAD running
    assert watch.feed(addr("2001:db8::5", ne.IFA_F_TENTATIVE), WG) is None
    assert watch.feed(addr("2001:db8::5", 0x80), WG) == "address 2001:db8::5/64 on eth0 usable"
    assert watch.feed(addr("2001:db8::5", 0x80), WG) is None  # a lifetime refresh
    assert watch.feed(addr("2001:db8::5", ne.IFA_F_DEPRECATED), WG) == (
        "address 2001:db8::5/64 on eth0 no longer preferred")
    assert watch.feed(addr("2001:db8::5", 0, new=False), WG) is None  # was not preferred
    assert watch.feed(addr("2001:db8::6"), WG) == "address 2001:db8::6/64 on eth0 added"
    assert watch.feed(addr("2001:db8::6", new=False), WG) == (
        "address 2001:db8::6/64 on eth0 removed")
    assert watch.feed(addr("2001:db8::7", ne.IFA_F_TENTATIVE), WG) is None
    assert watch.feed(addr("2001:db8::7", ne.IFA_F_DADFAILED), WG) is None
    assert watch.feed(addr("2001:db8::7", ne.IFA_F_DADFAILED, new=False), WG) is None
    assert watch.feed(addr("192.0.2.5", plen=24, label="eth0:1"), WG) == (
        "address 192.0.2.5/24 on eth0 added")
    assert watch.feed(addr("2001:db8::9", new=False), WG) == (  # unknown but was usable
        "address 2001:db8::9/64 on eth0 removed")


@pytest.mark.parametrize("a", [
    addr("fe80::1", scope=ne.RT_SCOPE_LINK),
    addr("fe80::2"),  # link-local whatever the scope says
    addr("169.254.1.1", plen=16),
    addr("192.0.2.5", scope=ne.RT_SCOPE_HOST),
    addr("2001:db8::1", index=4),  # on a WireGuard interface
    addr("192.0.2.7", index=99, label="wg0"),  # unknown index, label names it
    addr("192.0.2.8", index=1),  # loopback
])
def test_addresses_that_never_count(watch, a):
    assert watch.feed(a, WG) is None
    assert watch.feed(Addr(False, *[getattr(a, f) for f in a.__slots__][1:]), WG) is None


def test_an_uplink_going_down_and_up(watch):
    no_carrier = Link(True, 2, "eth0", ne.IFF_UP, 2)
    assert watch.feed(Link(True, 2, "eth0", UP), WG) is None  # same state again
    assert watch.feed(no_carrier, WG) == "uplink eth0 down"
    assert watch.feed(no_carrier, WG) is None
    assert watch.feed(Link(True, 2, "eth0", UP), WG) == "uplink eth0 up"  # the route stayed


def test_links_without_a_default_route_or_ignored_never_count(watch):
    assert watch.feed(Link(True, 3, "eth1", ne.IFF_UP), WG) is None  # no default route
    assert watch.feed(default(oif=4, priority=9), WG) is None
    assert watch.feed(Link(True, 4, "wg0", 0), WG) is None
    assert watch.feed(Link(True, 1, "lo", ne.IFF_LOOPBACK), WG) is None
    assert watch.feed(Link(True, 7, "veth7", UP), WG) is None  # new


def test_admin_down_forgets_its_ipv4_routes_as_the_kernel_does(watch):
    """The kernel flushes them without RTM_DELROUTE: their return is new."""
    assert watch.feed(Link(True, 2, "eth0", 0, 2), WG) == "uplink eth0 down"
    assert watch.feed(Link(True, 2, "eth0", UP), WG) is None  # no route through it any more
    assert watch.feed(default(), WG) == "default route via 192.0.2.1 on eth0 added"
    assert watch.feed(addr("192.0.2.2", plen=24, new=False), WG) == (
        "address 192.0.2.2/24 on eth0 removed")
    assert watch.feed(default(), WG) == "default route via 192.0.2.1 on eth0 added"


def test_an_uplink_removed(watch):
    assert watch.feed(Link(False, 2, "eth0", UP), WG) == "uplink eth0 removed"
    assert not watch.routes
    assert watch.feed(Link(False, 3, "eth1", UP), WG) is None


def test_the_ignore_set_is_taken_at_each_message(watch):
    route = default(oif=3, priority=3)
    assert watch.feed(route, frozenset({"eth1"})) is None
    assert watch.feed(Route(**{**{f: getattr(route, f) for f in route.__slots__},
                               "new": False}), ()) == "default route via 192.0.2.1 on eth1 removed"
