"""The rtnetlink decoder, on datagrams built byte by byte (tests/netlink_bytes.py)."""

import struct

from tests import netlink_bytes as nb
from wg_endpointd.core import netevents as ne
from wg_endpointd.core.netevents import Addr, Link, Route, decode


def test_a_link_with_its_name_flags_and_operstate():
    (msg,) = decode(nb.link(3, "eth0", nb.UP, ne.IF_OPER_UP))
    assert msg == Link(True, 3, "eth0", nb.UP, ne.IF_OPER_UP)
    assert msg.usable and not msg.loopback
    no_carrier = decode(nb.link(3, "eth0", ne.IFF_UP, 2))[0]
    assert isinstance(no_carrier, Link) and not no_carrier.usable
    gone = decode(nb.link(3, "eth0", nb.UP, new=False))[0]
    assert isinstance(gone, Link) and not gone.new and not gone.usable
    lo = decode(nb.link(1, "lo", nb.UP | ne.IFF_LOOPBACK, 0))[0]
    assert isinstance(lo, Link) and lo.loopback


def test_an_ipv6_address_takes_its_flags_from_ifa_flags():
    """IFA_FLAGS (u32) replaces the u8 ifa_flags (if_addr.h); tentative is not preferred."""
    (msg,) = decode(nb.addr(3, "2001:db8::5", 64, ne.IFA_F_TENTATIVE | 0x100))
    assert msg == Addr(True, 3, ne.AF_INET6, 64, ne.IFA_F_TENTATIVE | 0x100, 0, "2001:db8::5")
    assert not msg.preferred
    (old_kernel,) = decode(nb.addr(3, "2001:db8::5", 64, ne.IFA_F_DEPRECATED, wide_flags=False))
    assert isinstance(old_kernel, Addr) and old_kernel.flags == ne.IFA_F_DEPRECATED
    assert not old_kernel.preferred
    (done,) = decode(nb.addr(3, "2001:db8::5", 64, 0x80))  # permanent, DAD done
    assert isinstance(done, Addr) and done.preferred


def test_an_ipv4_address_is_its_local_address_with_its_label():
    body = struct.pack("=BBBBI", ne.AF_INET, 32, 0, 0, 4)
    body += nb.attr(ne.IFA_ADDRESS, nb.ip("192.0.2.99"))  # the far end of a point-to-point
    body += nb.attr(ne.IFA_LOCAL, nb.ip("192.0.2.1"))
    body += nb.attr(ne.IFA_LABEL, b"ppp0\0")
    (msg,) = decode(nb.nlmsg(ne.RTM_DELADDR, body))
    assert msg == Addr(False, 4, ne.AF_INET, 32, 0, 0, "192.0.2.1", "ppp0")


def test_a_default_route_with_gateway_device_table_and_metric():
    data = nb.route("192.0.2.1", 3, priority=100, table=1000, protocol=16,
                    nlflags=ne.NLM_F_REPLACE)
    (msg,) = decode(data)
    assert msg == Route(True, ne.AF_INET, 0, 1000, 16, ne.RTN_UNICAST, nlflags=ne.NLM_F_REPLACE,
                        priority=100, nexthops=(("192.0.2.1", 3),))
    (v6,) = decode(nb.route("fe80::1", 5, new=False))
    assert isinstance(v6, Route) and v6.family == ne.AF_INET6 and not v6.new
    assert v6.nexthops == (("fe80::1", 5),) and v6.table == ne.RT_TABLE_MAIN
    (host,) = decode(nb.route("192.0.2.1", 3, dst="203.0.113.7", dst_len=32, protocol=186))
    assert isinstance(host, Route) and (host.dst, host.dst_len, host.protocol) == (
        "203.0.113.7", 32, 186)


def test_multipath_via_and_nexthop_objects():
    hops = nb.nexthop(3, "192.0.2.1") + nb.nexthop(4, "198.51.100.1") + nb.nexthop(5, None)
    (multi,) = decode(nb.route(extra=nb.attr(ne.RTA_MULTIPATH, hops)))
    assert isinstance(multi, Route)
    assert multi.nexthops == (("192.0.2.1", 3), ("198.51.100.1", 4), (None, 5))
    via = struct.pack("=H", ne.AF_INET6) + nb.ip("fe80::1")  # struct rtvia
    (v4_via_v6,) = decode(nb.route(oif=3, extra=nb.attr(ne.RTA_VIA, via)))
    assert isinstance(v4_via_v6, Route) and v4_via_v6.nexthops == (("fe80::1", 3),)
    (nh,) = decode(nb.route(extra=nb.attr(ne.RTA_NH_ID, nb.u32(7))))
    assert isinstance(nh, Route) and nh.nexthops == (("nexthop id 7", None),)
    (blackhole,) = decode(nb.route(rtype=ne.RTN_BLACKHOLE))
    assert isinstance(blackhole, Route) and blackhole.nexthops == ()


def test_several_messages_in_one_datagram_and_what_is_skipped():
    data = (nb.link(2, "eth0", nb.UP) + nb.done(1)  # NLMSG_DONE: skipped
            + nb.nlmsg(ne.RTM_GETLINK, bytes(16))  # not a change
            + nb.nlmsg(ne.RTM_NEWROUTE, bytes(4))  # too short for an rtmsg
            + nb.route("192.0.2.1", 2))
    kinds = [type(m).__name__ for m in decode(data)]
    assert kinds == ["Link", "Route"]
    truncated = nb.route("192.0.2.1", 2)[:-3]
    assert decode(nb.link(2, "eth0", nb.UP) + truncated) == decode(nb.link(2, "eth0", nb.UP))
    assert decode(b"") == [] and decode(b"\xff" * 10) == []


def test_attribute_types_lose_the_nested_and_byte_order_bits():
    raw = nb.attr(ne.IFLA_IFNAME | 0x8000, b"eth0\0") + nb.attr(2 | 0x4000, b"xy")
    assert ne.attributes(raw) == {ne.IFLA_IFNAME: b"eth0\0", 2: b"xy"}
    assert ne.attributes(raw[:-3]) == {ne.IFLA_IFNAME: b"eth0\0"}  # a cut attribute: left out


def test_a_dump_request_is_the_header_and_the_family():
    req = ne.dump_request(ne.RTM_GETROUTE, 7, ne.AF_INET6)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, seq, pid) == (len(req), ne.RTM_GETROUTE, 7, 0)
    assert flags == ne.NLM_F_REQUEST | ne.NLM_F_DUMP and req[16] == ne.AF_INET6
    assert len(ne.dump_request(ne.RTM_GETLINK, 1)) == 16 + 16  # struct ifinfomsg
    assert len(ne.dump_request(ne.RTM_GETADDR, 1)) == 16 + 8  # struct ifaddrmsg
    assert len(req) == 16 + 12  # struct rtmsg


def test_groups_are_link_addresses_and_routes_of_both_families():
    assert ne.GROUPS == 0x1 | 0x10 | 0x40 | 0x100 | 0x400
