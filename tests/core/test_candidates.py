"""Addresses that can never be a remote endpoint (candidates.bogus) and the host's own
addresses they are told apart by (net.local_addresses)."""

import ipaddress

import pytest

from wg_endpointd.core import candidates as cand
from wg_endpointd.system import net

OWN = [ipaddress.ip_interface("203.0.113.7/24"), ipaddress.ip_interface("10.9.0.1/31"),
       ipaddress.ip_interface("2001:db8:77::1/64")]


@pytest.mark.parametrize("address,why", [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("::ffff:192.0.2.2", "IPv4-mapped"),
    ("203.0.113.7", "an address of this host"),
    ("2001:db8:77::1", "an address of this host"),
    ("203.0.113.255", "broadcast address of this host's subnet 203.0.113.0/24"),
])
def test_never_an_endpoint_says_why(address, why):
    assert why in (cand.bogus(address, OWN) or "")


@pytest.mark.parametrize("address", [
    "192.0.2.2", "198.51.100.2", "2001:db8:1::2", "10.0.0.1", "fd00::2", "100.64.0.1",
    "203.0.113.8",  # in this host's subnet, but not its own
    "10.9.0.0",  # a /31 has no broadcast address (RFC 3021)
    "2001:db8:77::ffff",  # IPv6 has no broadcast
    "64:ff9b::c000:202",  # NAT64
    "240.0.0.1", "0.1.2.3",  # unicast to Linux
])
def test_remote_addresses_are_kept(address):
    assert cand.bogus(address, OWN) is None


def test_own_addresses_count_only_when_given():
    assert cand.bogus("203.0.113.7") is None and cand.bogus("203.0.113.255") is None
    assert cand.bogus("127.0.0.1") == "a loopback address"


def test_local_addresses_reads_ipv4_by_ioctl_and_ipv6_from_proc(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "if_inet6").write_text(
        "20010db8007700000000000000000001 03 40 00 80     eth9\n"
        "fe800000000000000000000000000001 03 40 20 80     eth9\n"
        "garbage\n")
    found = net.local_addresses(str(tmp_path))
    assert ipaddress.ip_interface("127.0.0.1/8") in found  # lo, by ioctl
    assert found[-2:] == [ipaddress.ip_interface("2001:db8:77::1/64"),
                          ipaddress.ip_interface("fe80::1/64")]


def test_local_addresses_without_proc_still_gives_ipv4(tmp_path):
    found = net.local_addresses(str(tmp_path / "missing"))
    assert ipaddress.ip_interface("127.0.0.1/8") in found
    assert all(a.version == 4 for a in found)
