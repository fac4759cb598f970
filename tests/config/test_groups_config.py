"""`config group` in /etc/config/wg-endpointd: parsing and validation (groupconf.py)."""

import pytest

from wg_endpointd import cli, config
from wg_endpointd.config import uci

KA = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
KB = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
KC = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="
KD = KC[:-2] + "A="  # a site peer that is no member
KE = KA[:-2] + "A="  # a member of wg1
KF = KB[:-2] + "A="


def peer(iface, key, host="vpn.example.test", ips=("0.0.0.0/0", "::/0"), extra=""):
    lines = "".join(f"\tlist allowed_ips '{a}'\n" for a in ips)
    host_line = f"\toption endpoint_host '{host}'\n" if host else ""
    return f"config wireguard_{iface}\n\toption public_key '{key}'\n{host_line}{lines}{extra}\n"


NETWORK = (
    "config interface 'wg0'\n\toption proto 'wireguard'\n\n"
    "config interface 'wg1'\n\toption proto 'wireguard'\n\n"
    + peer("wg0", KA, ips=("0.0.0.0/0", "::/0", "10.8.0.1/32"))
    + peer("wg0", KB, ips=("10.8.0.2/32", "0.0.0.0/0", "::/0"))
    + peer("wg0", KC)
    + peer("wg0", KD, host="", ips=("192.0.2.0/24",))
    + peer("wg1", KE) + peer("wg1", KF, extra="\toption disabled '1'\n")
)


def build(own_text, network=NETWORK):
    net = uci.parse(network, "/etc/config/network")
    own = uci.parse(own_text, "/etc/config/wg-endpointd")
    return config.build(net, own)


def group(name="vpn", iface="wg0", keys=(KA, KB, KC), extra=""):
    lines = "".join(f"\tlist peer '{k}'\n" for k in keys)
    return f"config group '{name}'\n\toption interface '{iface}'\n{lines}{extra}\n"


def test_a_group_moves_what_its_members_share_by_default():
    cfg = build(group())
    assert cfg.problems == ()
    [g] = cfg.groups
    assert (g.name, g.interface, g.members) == ("vpn", "wg0", (KA, KB, KC))
    assert g.allowed_ips == ("0.0.0.0/0", "::/0")  # 10.8.0.x/32 are each member's own
    assert g.failback_hold == 300


def test_explicit_allowed_ips_and_hold():
    cfg = build("config globals 'globals'\n\toption failback_hold '60'\n\n"
                + group(extra="\tlist allowed_ips '0.0.0.0/0'\n\toption failback_hold '30'\n")
                + group("other", keys=(KC, KB)))
    vpn = next(g for g in cfg.groups if g.name == "vpn")
    assert vpn.allowed_ips == ("0.0.0.0/0",) and vpn.failback_hold == 30
    assert "already in group 'vpn'" in cfg.problems[0]  # KB twice: the second group is left


@pytest.mark.parametrize(("text", "why"), [
    (group(iface="wg7"), "interface 'wg7' is not a managed wireguard interface"),
    (group(iface=""), "option interface is missing"),
    (group(keys=(KA,)), "at least two `list peer` entries"),
    (group(keys=(KA, KA)), "is listed twice"),
    (group(keys=(KA, KE)), f"peer {KE[:8]}… is not a peer of 'wg0'"),
    (group(iface="wg1", keys=(KE, KF)), "is not managed (disabled in network config)"),
    (group(keys=(KA, KD)), "is not managed (passive (no endpoint_host))"),
    (group(extra="\tlist allowed_ips '192.0.2.0/24'\n"), "also peer"),
    (group(extra="\tlist allowed_ips '10.0.0.300/8'\n"), "allowed_ips:"),
    (group(extra="\toption failback_hold '0'\n"), "failback_hold:"),
])
def test_each_mistake_is_one_line_naming_file_and_section(text, why):
    cfg = build(text)
    assert cfg.groups == ()
    [line] = cfg.problems
    assert line.startswith("/etc/config/wg-endpointd:1: vpn: ")
    assert why in line and line.endswith("the group is left alone")


def test_a_broken_group_is_left_alone_while_the_rest_runs():
    cfg = build(group("bad", keys=(KA, "x" * 44)) + group("good"))
    assert [g.name for g in cfg.groups] == ["good"]
    [line] = cfg.problems
    assert "bad" in line and "not a peer of 'wg0'" in line
    assert all(p.managed for p in cfg.peers if p.public_key in (KA, KB, KC))


def test_a_non_member_holding_a_moving_allowed_ip_breaks_the_group():
    cfg = build(group(keys=(KA, KB)))  # KC, left out, has 0.0.0.0/0 of its own
    assert cfg.groups == () and f"also peer {KC[:8]}…'s own" in cfg.problems[0]


def test_no_peer_in_two_groups():
    cfg = build(group("one") + group("two", keys=(KC, KB)))
    assert [g.name for g in cfg.groups] == ["one"]
    [line] = cfg.problems
    assert ": two: " in line and "already in group 'one'" in line


def test_members_that_share_nothing_need_allowed_ips():
    network = ("config interface 'wg0'\n\toption proto 'wireguard'\n\n"
               + peer("wg0", KA, ips=("10.8.0.1/32",)) + peer("wg0", KB, ips=("10.8.0.2/32",)))
    cfg = build(group(keys=(KA, KB)), network)
    assert cfg.groups == () and "share no allowed IPs" in cfg.problems[0]
    cfg = build(group(keys=(KA, KB), extra="\tlist allowed_ips '0.0.0.0/0'\n"), network)
    assert cfg.groups[0].allowed_ips == ("0.0.0.0/0",)  # used, with a warning: no member has it
    assert [p for p in cfg.problems if "no member has" not in p] == []


def test_group_is_a_known_section_and_its_typos_are_warned():
    cfg = build(group(extra="\toption failback_hodl '30'\n"))
    assert len(cfg.groups) == 1
    [line] = cfg.problems
    assert "unknown option 'failback_hodl'" in line and "did you mean 'failback_hold'" in line
    cfg = build(group().replace("config group", "config gruop"))
    assert "unknown section type 'gruop'" in cfg.problems[0] and "'group'" in cfg.problems[0]


def test_config_command_reports_a_broken_group(fs, capsys):
    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=group(keys=(KA,)))
    assert cli.main(["config", "--config-dir", "/etc/config"]) == 1
    err = capsys.readouterr().err
    assert "/etc/config/wg-endpointd:1: vpn: a group needs at least two" in err


def test_a_listed_allowed_ip_no_member_has_is_warned_once():
    network = ("config interface 'wg0'\n\toption proto 'wireguard'\n\n"
               + peer("wg0", KA, ips=("10.8.0.1/32", "::/0"))
               + peer("wg0", KB, ips=("10.8.0.2/32", "10.98.0.0/16")))
    cfg = build(group(keys=(KA, KB), extra="\tlist allowed_ips '10.99.0.0/16'\n"
                      "\tlist allowed_ips '2001:db8::/64 10.98.7.0/24'\n"
                      "\tlist allowed_ips '0.0.0.0/0'\n"), network)
    [g] = cfg.groups  # still used: a route of the user's own may carry the traffic
    assert g.allowed_ips == ("10.99.0.0/16", "2001:db8::/64", "10.98.7.0/24", "0.0.0.0/0")
    [line] = cfg.problems
    assert line.startswith("/etc/config/wg-endpointd:7: vpn: allowed_ips 10.99.0.0/16, "
                           "0.0.0.0/0: no member has it in its own allowed_ips")
    assert "routes no traffic for it into wg0" in line


def test_a_listed_allowed_ip_inside_a_members_own_is_fine():
    network = ("config interface 'wg0'\n\toption proto 'wireguard'\n\n"
               + peer("wg0", KA, ips=("10.8.0.0/16",)) + peer("wg0", KB, ips=("10.8.0.2/32",)))
    cfg = build(group(keys=(KA, KB), extra="\tlist allowed_ips '10.8.1.0/24'\n"), network)
    assert len(cfg.groups) == 1 and cfg.problems == ()
