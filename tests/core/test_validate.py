import pytest

from wg_endpointd.config import HostSpec
from wg_endpointd.core.validate import (
    check_host,
    drop_never,
    ip_literal,
    is_hostname,
    is_ifname,
    is_public_key,
    never_endpoint,
    parse_endpoint_host,
    parse_hostport,
    parse_port,
    probe_outside,
)


def test_public_key():
    assert is_public_key("Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI=")
    for bad in ("", "-" * 44, "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI", "--help"):
        assert not is_public_key(bad)


def test_ifname():
    assert is_ifname("wg0") and is_ifname("wg_home.5")
    for bad in ("", "-wg", "a" * 16, "wg 0", "wg/0"):
        assert not is_ifname(bad)


def test_hostnames_never_look_like_options():
    assert is_hostname("peer.wg.test") and is_hostname("a-b.example.") and is_hostname("x")
    for bad in ("-x", "--endpoint", "a..b", "a b", "", "a" * 64 + ".x", "é.test"):
        assert not is_hostname(bad)


@pytest.mark.parametrize("text,expected", [
    ("peer.wg.test", ("peer.wg.test", 51820)),
    ("peer.wg.test:1234", ("peer.wg.test", 1234)),
    ("[2001:db8::1]:7", ("2001:db8::1", 7)),
    ("[2001:db8::1]", ("2001:db8::1", 51820)),
    ("2001:db8::1", ("2001:db8::1", 51820)),
    ("192.0.2.1:9", ("192.0.2.1", 9)),
])
def test_parse_hostport(text, expected):
    assert parse_hostport(text, 51820) == expected


@pytest.mark.parametrize("text", ["-oops", "h:0", "h:65536", "h:x", "[2001:db8::1", "[::1]x", "a b"])
def test_parse_hostport_rejects(text):
    with pytest.raises(ValueError):
        parse_hostport(text, 51820)


def test_port_and_literal():
    assert parse_port("1") == 1 and parse_port("65535") == 65535
    with pytest.raises(ValueError):
        parse_port("-1")
    assert ip_literal("[2001:DB8::1]") == "2001:db8::1" and ip_literal("host") is None


@pytest.mark.parametrize("text", ["1", "0x7f.1", "127.1", "0177.0.0.1", "host.123", "1.2.3.4.5"])
def test_numeric_looking_names_are_refused(text):
    with pytest.raises(ValueError, match="neither an IP address nor a host name"):
        check_host(text)


def test_names_with_digits_are_fine():
    assert check_host("1.example") == "1.example" and check_host("a1") == "a1"
    assert check_host("0x.example") == "0x.example"


@pytest.mark.parametrize("port", ["５１８２０", "²", " 1", "1 ", "+1", "0x10", ""])
def test_ports_are_ascii_digits_only(port):
    with pytest.raises(ValueError):
        parse_port(port)


def test_mapped_and_link_local_addresses_say_why():
    with pytest.raises(ValueError, match="IPv4-mapped address; write 192.0.2.2"):
        check_host("::ffff:192.0.2.2")
    with pytest.raises(ValueError, match="zone are not supported"):
        check_host("fe80::1%eth0")
    assert check_host("fe80::1") == "fe80::1"  # never_endpoint() says why it is dropped
    assert "link-local" in (never_endpoint("fe80::1") or "")
    assert check_host("2001:DB8::1") == "2001:db8::1"


@pytest.mark.parametrize("text", ["192.0.2.1:1234", "[2001:db8::1]:1234", "[2001:db8::1]",
                                  "peer.test:51820"])
def test_endpoint_host_with_a_port_is_refused_as_netifd_would_fail(text):
    with pytest.raises(ValueError, match="endpoint_port"):
        parse_endpoint_host(text)


def test_endpoint_host_accepts_what_wireguard_sh_accepts():
    assert parse_endpoint_host("2001:db8::1") == "2001:db8::1"
    assert parse_endpoint_host("192.0.2.1") == "192.0.2.1"
    assert parse_endpoint_host("peer.wg.test") == "peer.wg.test"
    with pytest.raises(ValueError, match="zone"):
        parse_endpoint_host("fe80::1%eth0")


@pytest.mark.parametrize("host,why", [
    ("127.0.0.1", "a loopback address"), ("[::1]", "a loopback address"),
    ("0.0.0.0", "the unspecified address"), ("::", "the unspecified address"),
    ("224.0.0.251", "a multicast address"), ("ff02::1", "a multicast address"),
    ("255.255.255.255", "the broadcast address"),
    ("169.254.1.1", "a link-local address"), ("fe80::1", "a link-local address"),
])
def test_static_classes_are_never_an_endpoint(host, why):
    assert (never_endpoint(host) or "").startswith(why)


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1", "10.0.0.1", "localhost",
                                  "peer.wg.test", "ff02.example"])
def test_names_and_remote_addresses_pass(host):
    assert never_endpoint(host) is None  # a name is judged when it resolves


def test_drop_never_keeps_the_rest_and_names_where():
    notes: list[str] = []
    hosts = [HostSpec("127.0.0.1", 1), HostSpec("peer.wg.test", 2), HostSpec("ff02::1", 3)]
    assert drop_never(hosts, "f:3: @peer[0].candidate", notes) == [HostSpec("peer.wg.test", 2)]
    assert notes == [
        "f:3: @peer[0].candidate: 127.0.0.1 is a loopback address, never a remote endpoint; "
        "this candidate is dropped",
        "f:3: @peer[0].candidate: ff02::1 is a multicast address, never a remote endpoint; "
        "this candidate is dropped"]


def test_probe_address_must_be_inside_the_allowed_ips():
    assert probe_outside("10.0.0.1", ["10.0.0.0/24"], "w") == []
    assert probe_outside("10.0.0.1", ["2001:db8::/64", "0.0.0.0/0"], "w") == []
    assert probe_outside("2001:db8::1", ["bad", "2001:db8::/64"], "w") == []
    [line] = probe_outside("10.0.1.1", ["10.0.0.0/24", "2001:db8::/64"], "f:9: @peer[0].probe_address")
    assert line.startswith("f:9: @peer[0].probe_address: 10.0.1.1 is outside the peer's allowed "
                           "IPs (10.0.0.0/24, 2001:db8::/64)")
    assert "(none)" in probe_outside("10.0.0.1", [], "w")[0]
