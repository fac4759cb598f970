"""wg-quick files read as wg-quick and `wg setconf` read them (config/wgquick.py), and the
configuration of a Linux host built from them (config/hostload.py)."""

import pytest

from wg_endpointd.config import hostload, tomlfile, wgquick
from wg_endpointd.core.errors import ConfigError

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
PRIV = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="
PSK = PRIV[:-2] + "A="
PATH = "/etc/wireguard/wg0.conf"

BASIC = f"""\
# a wg-quick file as people write them
[Interface]
PrivateKey = {PRIV}
Address = 10.99.0.2/24, fd00:99::2/64
DNS = 192.0.2.53, example.net
MTU = 1420
PostUp = iptables -A FORWARD -i %i -j ACCEPT # runs at up
SaveConfig = false

[Peer]  # the office
PublicKey = {K1}
PresharedKey = {PSK}
Endpoint = vpn.example.net:51820
AllowedIPs = 10.1.0.0/16, 10.2.0.0/16
AllowedIPs = 2001:db8:1::/48
PersistentKeepalive = 25
"""


def parse(text: str) -> wgquick.QuickFile:
    return wgquick.parse(text, PATH)


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    message = str(info.value)
    for secret in (PRIV, PSK, K1, K2, PRIV[:20], PSK[:20]):
        assert secret not in message
    assert "\n" not in message
    return info.value


def test_a_plain_file():
    f = parse(BASIC)
    assert f.addresses == ("10.99.0.2/24", "fd00:99::2/64")
    assert f.table == "" and f.fwmark == 0
    [p] = f.peers
    assert (p.line, p.public_key, p.host, p.port, p.keepalive) == (
        10, K1, "vpn.example.net", "51820", 25)
    assert p.allowed_ips == ("10.1.0.0/16", "10.2.0.0/16", "2001:db8:1::/48")  # lines add up
    assert p.lines == {"endpoint": 13, "allowed_ips": 14, "keepalive": 16}
    assert PRIV not in repr(f) and PSK not in repr(f)  # never kept


def test_keys_and_sections_in_any_case_and_blanks_anywhere():
    f = parse(f"[interface]\naddress=10.0.0.2/32\ntable = OFF\n fwmark = 0x10\n"
              f"[ PEER ]\n Public Key = {K1}\nallowed ips=10.0.0.0 / 8 ,10.9.0.1\n"
              f"ENDPOINT = [2001:db8::1]:4500\npersistentkeepalive = OFF\r\n")
    assert f.addresses == ("10.0.0.2/32",) and f.table == "OFF" and f.fwmark == 16
    [p] = f.peers
    assert p.allowed_ips == ("10.0.0.0/8", "10.9.0.1/32")
    assert (p.host, p.port, p.keepalive) == ("2001:db8::1", "4500", None)


@pytest.mark.parametrize("endpoint,host,port", [
    ("vpn.example.net:51820", "vpn.example.net", "51820"),
    ("[2001:db8::1]:51820", "2001:db8::1", "51820"),
    ("2001:db8::1:51820", "2001:db8::1", "51820"),  # wg splits at the last colon
    ("192.0.2.1:443", "192.0.2.1", "443"),
    ("vpn.example.net:https", "vpn.example.net", "https"),  # a service name, as wg takes it
])
def test_endpoints(endpoint, host, port):
    [p] = parse(f"[Peer]\nPublicKey = {K1}\nEndpoint = {endpoint}\n").peers
    assert (p.host, p.port) == (host, port)


def test_comments_cut_the_line_and_wg_quick_keys_stay_in_interface():
    f = parse(f"[Interface] # x = y\n# Address = 192.0.2.9/24\nAddress = 10.0.0.2/24 # 10.0.0.3\n"
              f"Table = 1234\n[Peer]\nPublicKey = {K1} # Endpoint = nowhere\n")
    assert f.addresses == ("10.0.0.2/24",) and f.table == "1234"
    assert f.peers[0].host is None  # passive


def test_a_passive_peer_and_an_empty_file():
    assert parse("").peers == ()
    assert parse("# nothing\n\n[Interface]\n").peers == ()
    [p] = parse(f"[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.2/32\n").peers
    assert p.host is None and p.port == "" and p.keepalive is None


def test_several_peers_and_the_same_key_twice():
    f = parse(f"[Peer]\nPublicKey = {K1}\nEndpoint = a.example:1\nAllowedIPs = 10.0.0.1\n"
              f"[Peer]\nPublicKey = {K2}\nAllowedIPs = 10.0.0.2\n"
              f"[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.3\nPersistentKeepalive = 5\n")
    assert [p.public_key for p in f.peers] == [K1, K2]
    first = f.peers[0]  # the later section updates it; its allowed IPs replace the old
    assert (first.host, first.allowed_ips, first.keepalive) == ("a.example", ("10.0.0.3/32",), 5)


def test_incremental_allowed_ips():
    [p] = parse(f"[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.0/8, +10.1.0.0/16\n"
                "AllowedIPs = -10.0.0.0/8\n").peers
    assert p.allowed_ips == ("10.1.0.0/16",)


@pytest.mark.parametrize("text,line,words", [
    ("[Interface]\nListenPort = 51820\nBogus = 1\n", 3, "Bogus is not a key of [Interface]"),
    ("[Peer]\nPublicKey = {K1}\nEndpiont = a.example:1\n", 3, "did you mean 'Endpoint'"),
    ("[Peers]\nPublicKey = {K1}\n", 1, "unknown section '[Peers]'"),
    ("PublicKey = {K1}\n", 1, "PublicKey before any [Interface] or [Peer] section"),
    ("[Interface]\nEndpoint = a.example:1\n", 2, "Endpoint belongs in a [Peer] section"),
    ("[Peer]\nPublicKey = {K1}\nAddress = 10.0.0.1/24\n", 3, "Address belongs in [Interface]"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint = a.example\n", 3, "has no port"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint = [2001:db8::1:51820\n", 3, "no matching ']'"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint = [2001:db8::1]51820\n", 3, "has no port"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint = :51820\n", 3, "has no host"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint = a.example:5182x\n", 3, "is not a port"),
    ("[Peer]\nPublicKey = {K1}\nEndpoint =\n", 3, "Endpoint has no value"),
    ("[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.0/33\n", 3, "is not ip/cidr"),
    ("[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.0/8,\n", 3, "cannot read IP address ''"),
    ("[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0/8\n", 3, "cannot read IP address"),
    ("[Peer]\nPublicKey = {K1}\nAllowedIPs = fe80::1%eth0/64\n", 3, "cannot read IP address"),
    ("[Peer]\nPublicKey = {K1}\nAllowedIPs = 10.0.0.0/x\n", 3, "is not ip/cidr"),
    ("[Peer]\nPublicKey = {K1}\nPersistentKeepalive = 65536\n", 3, "neither off nor 0-65535"),
    ("[Peer]\nPublicKey = {K1}\nPersistentKeepalive = -1\n", 3, "neither off nor 0-65535"),
    ("[Interface]\nFwMark = 0x100000000\n", 2, "neither off nor 0-0xffffffff"),
    ("[Interface]\nFwMark = 0X10\n", 2, "neither off nor 0-0xffffffff"),
    ("[Interface]\nListenPort = 5182x\n", 2, "is not a port"),
    ("[Interface]\nSaveConfig = yes\n", 2, "SaveConfig 'yes' is neither true nor false"),
    ("[Peer]\nAllowedIPs = 10.0.0.1\n", 1, "[Peer] without PublicKey"),
    ("[Peer]\nPublicKey = {K1}x\n", 2, "PublicKey is not a key"),
    ("[Peer]\nPublicKey = {K1}\nPresharedKey = {PSK}\n[Peer]\nPublicKey = short=\n", 5,
     "PublicKey is not a key"),
    ("[Interface]\nPrivateKey = {PRIV}x\n", 2, "PrivateKey is not a key"),
    ("[Interface]\nPrivateKey = {PRIV}\n{PRIV}\n", 3, "not a section header or a Key = value"),
    ("[Interface]\nPrivatKey = {PRIV}\n", 2, "PrivatKey is not a key of [Interface]"),
    # wg-quick takes Address only under a header it reads as exactly [Interface]
    ("[ Interface ]\nAddress = 10.0.0.2/24\n", 2, "Address is not a key of [Interface]"),
    ("[Interface]\nPost Up = true\n", 2, "PostUp is not a key of [Interface]"),
])
def test_refusals_name_the_line_and_never_a_key(text, line, words):
    text = text.format(K1=K1, PRIV=PRIV, PSK=PSK)
    err = refused(text)
    assert err.path == PATH and err.line == line
    assert str(err).startswith(f"{PATH}:{line}: ")
    assert words in str(err)


def test_a_key_pasted_into_a_value_is_not_shown():
    err = refused(f"[Peer]\nPublicKey = {K1}\nEndpoint = {PRIV}\n")
    assert "hidden" in str(err)


def test_nul_bytes_and_latin1(fs):
    fs.create_file(PATH, contents=f"[Peer]\x00\nPublicKey = {K1}\n# caf\xe9\n".encode("latin-1"))
    assert wgquick.load(PATH).peers[0].public_key == K1


def test_unreadable_file_is_an_error(fs):
    fs.create_dir(PATH)
    with pytest.raises(ConfigError, match="cannot read"):
        wgquick.load(PATH)


# --- the host's configuration ------------------------------------------------------------

FULL = f"""\
[Interface]
PrivateKey = {PRIV}
Address = 10.99.0.2/24
Address = fd00:99::2/64
[Peer]
PublicKey = {K1}
Endpoint = vpn.example.net:51820
AllowedIPs = 0.0.0.0/0, ::/0
[Peer]
PublicKey = {K2}
AllowedIPs = 10.5.0.0/16
"""


def read(iface, text):
    """A file as hostload.load hands it on: parsed, or the refusal's line."""
    if text is None:
        return None
    try:
        return wgquick.parse(text, f"/etc/wireguard/{iface}.conf")
    except ConfigError as exc:
        return str(exc)


def build(files, confs=(), own_text=None):
    own = tomlfile.parse(own_text, "/etc/wg-endpointd/wg-endpointd.toml") if own_text else None
    parsed = {i: read(i, t) for i, t in files.items()}
    return hostload.build("/etc/wireguard", parsed, list(confs) or list(files), own)


def test_full_tunnel_gets_fwmark_probe_address_and_no_host_routes():
    cfg = build({"wg0": FULL})
    server, passive = cfg.peers
    assert server.managed and server.fwmark == 51820 and passive.fwmark == 51820
    assert server.route_allowed_ips is False and cfg.advice == ()
    assert server.probe_address == "10.99.0.1"  # first host of the first Address subnet
    assert server.section == "peer1" and server.endpoint_host == "vpn.example.net"
    assert not passive.managed and passive.reason == "passive (no Endpoint)"
    assert cfg.interfaces == ("wg0",) and cfg.problems == ()


@pytest.mark.parametrize("extra,mark", [
    ("FwMark = 0x1234\n", 0x1234),
    ("FwMark = off\n", 51820),
    ("Table = auto\n", 51820),
    ("Table = off\n", 0),
    ("Table = 1234\n", 0),
    ("Table = off\nFwMark = 77\n", 77),
])
def test_fwmark_follows_wg_quick(extra, mark):
    text = FULL.replace("Address = 10.99.0.2/24\n", f"Address = 10.99.0.2/24\n{extra}")
    assert {p.fwmark for p in build({"wg0": text}).peers} == {mark}


def test_split_tunnel_has_no_fwmark():
    text = FULL.replace("0.0.0.0/0, ::/0", "10.6.0.0/16")
    server = build({"wg0": text}).peers[0]
    assert server.fwmark == 0 and server.probe_address == "10.6.0.1"


@pytest.mark.parametrize("addresses,allowed,probe", [
    ("Address = fd00:99::2/64, 10.99.0.2/24", "::/0", "fd00:99::1"),
    ("Address = 10.99.0.2/32", "0.0.0.0/0", None),  # no other host in it
    ("Address = 10.99.0.2/31", "0.0.0.0/0", "10.99.0.3"),
    ("Address = 10.99.0.1/24", "0.0.0.0/0", None),  # the first host is this one
    ("", "0.0.0.0/0", None),
])
def test_probe_address_of_a_default_only_peer(addresses, allowed, probe):
    text = (f"[Interface]\n{addresses}\n[Peer]\nPublicKey = {K1}\nEndpoint = a.example:1\n"
            f"AllowedIPs = {allowed}\n")
    assert build({"wg0": text}).peers[0].probe_address == probe


def test_settings_probe_address_wins():
    own = f'[[peer]]\ninterface = "wg0"\npublic_key = "{K1}"\nprobe_address = "10.99.0.7"\n'
    assert build({"wg0": FULL}, own_text=own).peers[0].probe_address == "10.99.0.7"


def test_a_broken_file_is_one_problem_and_others_are_managed():
    broken = "[Interface]\nAddress = 10.0.0.2/24\n[Peer]\nPublicKey = nope\n"
    own = f'[[peer]]\ninterface = "wg1"\npublic_key = "{K1}"\ncandidate = ["b.example"]\n'
    cfg = build({"wg0": FULL, "wg1": broken}, own_text=own)
    assert [p.interface for p in cfg.managed()] == ["wg0"]
    [problem] = cfg.problems  # the override of wg1 is left alone with it, not reported
    assert problem.startswith("/etc/wireguard/wg1.conf:4: PublicKey is not a key")
    assert problem.endswith("; wg1 is left alone")


def test_an_interface_without_file_is_one_note():
    cfg = build({"wg0": FULL, "wg9": None})
    assert cfg.notes == ("wg9: not managed: there is no /etc/wireguard/wg9.conf",)
    assert cfg.problems == () and {p.interface for p in cfg.peers} == {"wg0"}


def test_a_file_whose_interface_is_down_is_not_an_error():
    own = '[globals]\ninterface = ["wg0", "wg1"]\n'
    cfg = build({"wg0": FULL}, confs=["wg0", "wg1"], own_text=own)
    assert cfg.interfaces == ("wg0",) and cfg.problems == ()
    assert cfg.notes == ("wg1: /etc/wireguard/wg1.conf is there but the interface is not up; "
                         "it is read at the next start or reload",)
    with pytest.raises(ConfigError, match=r"wg-endpointd.toml:2: globals.interface: 'wg7' is "
                                          r"not a wireguard interface in /etc/wireguard"):
        build({"wg0": FULL}, own_text='[globals]\ninterface = ["wg7"]\n')


def test_overrides_groups_and_settings_apply_as_on_openwrt():
    text = FULL.replace("AllowedIPs = 10.5.0.0/16", "Endpoint = b.example.net:51820\n"
                        "AllowedIPs = 0.0.0.0/0, ::/0")
    own = (f'[globals]\nfamily = "ipv4"\n[[peer]]\ninterface = "wg0"\npublic_key = "{K1}"\n'
           f'candidate = ["c.example.net:4500"]\n[[group]]\ninterface = "wg0"\n'
           f'peer = ["{K1}", "{K2}"]\n')
    cfg = build({"wg0": text}, own_text=own)
    first, second = cfg.peers
    assert first.family == "ipv4" and [str(h) for h in first.hosts] == [
        "vpn.example.net:51820", "c.example.net:4500"]
    [group] = cfg.groups
    assert group.members == (K1, K2) and group.allowed_ips == ("0.0.0.0/0", "::/0")
    assert cfg.problems == ()


def test_per_peer_faults_name_the_wg_quick_file():
    text = (f"[Peer]\nPublicKey = {K1}\nEndpoint = 127.0.0.1:51820\n"
            f"[Peer]\nPublicKey = {K2}\nEndpoint = vpn.example.net:https\n")
    cfg = build({"wg0": text})
    port, loopback = cfg.problems
    assert loopback.startswith("/etc/wireguard/wg0.conf:3: peer1.endpoint_host: "
                               "127.0.0.1 is a loopback address")
    assert port.startswith("/etc/wireguard/wg0.conf:6: Endpoint port 'https'")
    assert [p.public_key for p in cfg.peers] == [K1]


def test_load_reads_only_the_files_of_interfaces_that_exist(fs):
    fs.create_file("/etc/wireguard/wg0.conf", contents=FULL)
    fs.create_file("/etc/wireguard/wg1.conf", contents="garbage\n")  # not up: not read
    cfg = hostload.load("/etc/wireguard", "/etc/wg-endpointd/wg-endpointd.toml", ["wg0"])
    assert [p.public_key for p in cfg.peers] == [K1, K2] and cfg.problems == ()


def test_load_fails_on_a_file_it_cannot_read(fs):
    fs.create_dir("/etc/wireguard/wg0.conf")
    with pytest.raises(ConfigError, match="wg0.conf: cannot read"):
        hostload.load("/etc/wireguard", "/nonexistent.toml", ["wg0"])
