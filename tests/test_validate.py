import pytest

from wg_endpointd.validate import (
    ip_literal,
    is_hostname,
    is_ifname,
    is_public_key,
    parse_hostport,
    parse_port,
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
