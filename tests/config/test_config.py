import json
import os

import pytest

from tests import option_cases
from wg_endpointd import cli, config
from wg_endpointd.config import uci
from wg_endpointd.core import allowed as allowed_ips
from wg_endpointd.core import options
from wg_endpointd.core.errors import ConfigError

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
K3 = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="
K4 = K3[:-2] + "A="

NETWORK = f"""
config interface 'lan'
	option proto 'static'

config interface 'wg0'
	option proto 'wireguard'
	option private_key 'SECRETSECRETSECRETSECRETSECRETSECRETSECRE0='
	list addresses '198.51.100.130/25'

config wireguard_wg0
	option description 'home'
	option public_key '{K1}'
	option endpoint_host 'peer.wg.test'
	option persistent_keepalive '25'
	list allowed_ips '198.51.100.128/25'
	list allowed_ips '198.51.100.129/32'

config wireguard_wg0
	option public_key '{K2}'
	option endpoint_host '2001:db8::7'
	option endpoint_port '4500'
	option disabled '1'

config wireguard_wg0
	option public_key '{K3}'
	list allowed_ips '0.0.0.0/0'

config wireguard_wg0
	option description 'keyless'
"""

OWN = f"""
config globals 'globals'
	option family 'ipv4'
	option verify_timeout '1.5'
	list trigger 'wan'
	list trigger 'wan6'

config peer
	option interface 'wg0'
	option public_key '{K1}'
	list candidate 'backup.wg.test:51821'
	list candidate '[2001:db8::9]'
	option family 'ipv6'
"""


@pytest.fixture
def etc(fs):
    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=OWN)
    return fs


def test_peers_and_overrides(etc):
    cfg = config.load("/etc/config")
    assert cfg.interfaces == ("wg0",)
    assert cfg.settings.family == "ipv4" and cfg.settings.verify_timeout == 1.5
    assert cfg.settings.triggers == ("wan", "wan6")
    home, disabled, passive = cfg.peers
    assert home.managed and home.name == "home" and home.section == "@wireguard_wg0[0]"
    assert [str(h) for h in home.hosts] == ["peer.wg.test:51820", "backup.wg.test:51821",
                                           "[2001:db8::9]:51820"]
    assert home.family == "ipv6" and home.verify_timeout == 1.5 and home.keepalive == 25
    assert home.probe_address == "198.51.100.129"
    assert not disabled.managed and "disabled" in disabled.reason
    assert disabled.endpoint_port == 4500
    assert not passive.managed and "passive" in passive.reason
    assert passive.probe_address is None
    assert [p.public_key for p in cfg.managed()] == [K1]
    assert len(cfg.problems) == 1 and "without public_key" in cfg.problems[0]
    assert "@wireguard_wg0[3]" in cfg.problems[0]


def test_defaults_without_own_file(fs):
    fs.create_file("/etc/config/network", contents=NETWORK)
    cfg = config.load("/etc/config")
    assert cfg.settings == config.Settings()
    assert cfg.peers[0].family == "auto" and len(cfg.peers[0].hosts) == 1


def test_opt_out(fs):
    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=f"config peer\n option interface wg0\n"
                   f" option public_key '{K1}'\n option managed 0\n")
    cfg = config.load("/etc/config")
    assert cfg.managed() == [] and "opted out" in cfg.peers[0].reason


@pytest.mark.parametrize("own,where", [
    ("config globals globals\n option probe_timeout abc\n", ":2:"),
    ("config globals globals\n option family ipv5\n", ":2:"),
    ("config globals globals\n option enabled maybe\n", ":2:"),
    ("config globals globals\n list interface wg7\n", "wg7"),
    ("config globals globals\n list trigger '-wan'\n", ":2:"),
])
def test_bad_globals_name_file_and_line(fs, own, where):
    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=own)
    with pytest.raises(ConfigError, match=where):
        config.load("/etc/config")


@pytest.mark.parametrize("peer_lines,needle", [
    ("option public_key 'not-a-key'", "not a WireGuard public key"),
    (f"option public_key '{K1}'\n option endpoint_port '99999'", "endpoint_port"),
    (f"option public_key '{K1}'\n option endpoint_host '-oops'", "endpoint_host"),
])
def test_bad_peer_is_a_problem_not_fatal(fs, peer_lines, needle):
    net = NETWORK + f"\nconfig wireguard_wg0\n {peer_lines}\n"
    fs.create_file("/etc/config/network", contents=net)
    cfg = config.load("/etc/config")
    assert any(needle in p and "/etc/config/network:" in p for p in cfg.problems)
    assert K1 in [p.public_key for p in cfg.managed()] or needle != "not a WireGuard public key"


def test_bad_candidate_in_override(fs):
    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=f"config peer\n option interface wg0\n"
                   f" option public_key '{K1}'\n list candidate '--inject'\n")
    cfg = config.load("/etc/config")
    assert cfg.managed() == [] and "candidate" in cfg.problems[0]
    assert "/etc/config/wg-endpointd:4:" in cfg.problems[0]


def test_malformed_uci_is_an_error_with_line(fs):
    fs.create_file("/etc/config/network", contents="config interface 'wg0'\n option proto 'wire\n")
    with pytest.raises(ConfigError, match="/etc/config/network:2"):
        config.load("/etc/config")


def test_missing_network_file(fs):
    fs.create_dir("/etc/config")
    with pytest.raises(ConfigError, match="/etc/config/network"):
        config.load("/etc/config")


@pytest.mark.parametrize("allowed,expected", [
    (("0.0.0.0/0", "::/0"), None),
    (("198.51.100.128/25",), "198.51.100.129"),
    (("198.51.100.0/24", "2001:db8::5/128"), "2001:db8::5"),
    (("junk",), None),
])
def test_default_probe_address(allowed, expected):
    assert allowed_ips.default_probe_address(allowed) == expected


def test_config_json_cli(etc, capsys):
    rc = cli.main(["config", "--config-dir", "/etc/config", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1  # the keyless peer is a problem
    assert [p["public_key"] for p in out] == [K1, K2, K3]
    first = out[0]
    for field in ("interface", "public_key", "endpoint_host", "endpoint_port", "disabled",
                  "description", "section"):
        assert field in first
    assert first["endpoint_port"] == 51820 and first["disabled"] is False
    assert "SECRET" not in json.dumps(out)


def test_cli_errors_are_one_line_exit_2(fs, capsys):
    fs.create_file("/etc/config/network", contents="option x y\n")
    assert cli.main(["config", "--config-dir", "/etc/config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "network:1" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["once", "--peer", "--bogus"],
    ["once", "--interface", "-x"],
    ["once", "--host", "peer.wg.test"],
    ["once", "--interface", "wg0", "--peer", K1, "--host", "-evil"],
    ["once", "--interface", "wg0", "--peer", K1, "--host", "h.test", "--port", "0"],
    ["once", "--interface", "wg0", "--peer", K1, "--host", "127.0.0.1"],  # never an endpoint
    ["once", "--interface", "wg0", "--peer", K1, "--host", "ff02::1"],
    ["bogus"],
])
def test_cli_usage_errors(argv, capsys):
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_unknown_interface(etc, capsys):
    assert cli.main(["once", "--config-dir", "/etc/config", "--interface", "wg9"]) == 2
    assert "unknown interface 'wg9'" in capsys.readouterr().err


# --- one table of values, shared with the init script's test --------------------


@pytest.mark.parametrize("option,value,accepted", option_cases.GLOBAL_CASES)
def test_globals_table(fs, option, value, accepted):
    fs.create_file("/etc/config/network", contents=option_cases.NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents=option_cases.own_file(option, value))
    if accepted:
        config.load("/etc/config")
    else:
        with pytest.raises(ConfigError, match=rf"^/etc/config/wg-endpointd:2: globals\.{option}: "):
            config.load("/etc/config")


def test_settings_defaults_match_the_shipped_file():
    shipped = uci.load("files/etc/config/wg-endpointd")
    assert config.read_settings(shipped) == config.Settings()
    (globals_,) = shipped.by_type("globals")
    # lists are examples; metrics_file is one too: its default depends on the platform
    assert set(globals_.options) == {o.name for o in options.GLOBALS} - {
        "interface", "trigger", "metrics_file"}


def test_config_check_cli(fs, capsys):
    fs.create_file("/etc/config/network", contents=option_cases.NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents="config globals\n option enabled no\n")
    assert cli.main(["config", "--check", "--config-dir", "/etc/config"]) == 0
    assert capsys.readouterr().out == "disabled\n"
    fs.remove_object("/etc/config/wg-endpointd")
    fs.create_file("/etc/config/wg-endpointd", contents="config globals\n option dead_after 0\n")
    assert cli.main(["config", "--check", "--config-dir", "/etc/config"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip().count("\n") == 0 and ":2: @globals[0].dead_after: '0'" in out.err


# --- wrong configuration is never silently ignored ---------------------------


def _load(fs, own, net=NETWORK):
    fs.create_file("/etc/config/network", contents=net)
    fs.create_file("/etc/config/wg-endpointd", contents=own)
    return config.load("/etc/config")


@pytest.mark.parametrize("iface,key,needle", [
    ("wg0", K1[:-2] + "X=", "no peer of 'wg0' has that public_key (did you mean"),
    ("wg0", K1 + " ", "blanks around it"),
    ("wg1", K1, "there is no wireguard interface 'wg1' (did you mean 'wg0'?)"),
    ("lan", K1, "no wireguard interface 'lan'"),
])
def test_override_matching_no_peer_is_reported(fs, iface, key, needle):
    own = f"config peer 'optout'\n option interface '{iface}'\n option public_key '{key}'\n" \
          " option managed 0\n"
    cfg = _load(fs, own)
    assert cfg.peers[0].managed  # the override does nothing
    (hit,) = [p for p in cfg.problems if "optout" in p]
    assert hit.startswith("/etc/config/wg-endpointd:1: optout: matches no peer")
    assert needle in hit


def test_override_for_a_key_on_another_interface(fs):
    net = NETWORK + f"config interface 'wg1'\n option proto 'wireguard'\n" \
                    f"config wireguard_wg1\n option public_key '{K4}'\n"
    own = f"config globals\n list interface wg0\n" \
          f"config peer\n option interface 'wg0'\n option public_key '{K4}'\n"
    cfg = _load(fs, own, net)
    assert any("that public_key is a peer of 'wg1', not of 'wg0'" in p for p in cfg.problems)
    own = f"config globals\n list interface wg0\n" \
          f"config peer\n option interface 'wg1'\n option public_key '{K4}'\n"
    fs.remove_object("/etc/config/wg-endpointd")
    fs.remove_object("/etc/config/network")
    cfg = _load(fs, own, net)
    assert any("'wg1' is not in the globals' list interface" in p for p in cfg.problems)


def test_unknown_sections_and_options_name_the_closest(fs):
    own = "config globls\n option x 1\nconfig globals\n option chek_interval 5\n" \
          " option log_level debug\nconfig globals second\n"
    cfg = _load(fs, own)
    assert cfg.settings.log_level == "debug" and cfg.settings.check_interval == 10
    assert "/etc/config/wg-endpointd:1: @globls[0]: unknown section type 'globls', ignored " \
           "(did you mean 'globals'?)" in cfg.problems
    assert "/etc/config/wg-endpointd:4: @globals[0]: unknown option 'chek_interval', ignored " \
           "(did you mean 'check_interval'?)" in cfg.problems
    assert any("second: only the first globals section is read" in p for p in cfg.problems)


def test_contradicting_duplicate_overrides_leave_the_peer_alone(fs):
    head = f"config peer\n option interface wg0\n option public_key '{K1}'\n"
    cfg = _load(fs, head + " option managed 0\n" + head + " option managed 1\n")
    assert not cfg.peers[0].managed and cfg.peers[0].reason == "contradicting overrides"
    (hit,) = [p for p in cfg.problems if "contradicts" in p]
    assert hit.startswith("/etc/config/wg-endpointd:8: @peer[1].managed contradicts "
                          "@peer[0].managed (line 4)")


def test_agreeing_duplicate_overrides_merge(fs):
    head = f"config peer\n option interface wg0\n option public_key '{K1}'\n"
    own = head + " option family ipv4\n list candidate b.wg.test\n" \
        + head + " option family ipv4\n list candidate c.wg.test\n"
    cfg = _load(fs, own)
    home = cfg.peers[0]
    assert home.managed and home.family == "ipv4"
    assert [h.host for h in home.hosts] == ["peer.wg.test", "b.wg.test", "c.wg.test"]
    assert not [p for p in cfg.problems if "wg-endpointd" in p]


def test_repeated_list_interface_manages_a_peer_once(fs):
    cfg = _load(fs, "config globals\n list interface wg0\n list interface wg0\n"
                    " list interface 'wg0 wg0'\n")
    assert cfg.interfaces == ("wg0",)
    assert [p.public_key for p in cfg.managed()] == [K1]


@pytest.mark.parametrize("host,needle", [
    ("192.0.2.1:1234", "endpoint_port"),
    ("[2001:db8::1]:1234", "endpoint_port"),
    ("0x7f.1", "neither an IP address nor a host name"),
    ("1", "neither an IP address nor a host name"),
    ("::ffff:192.0.2.2", "IPv4-mapped address; write 192.0.2.2"),
    ("fe80::1%eth0", "link-local addresses with a zone are not supported"),
])
def test_endpoint_values_netifd_would_not_use_as_written(fs, host, needle):
    net = NETWORK + f"\nconfig wireguard_wg0\n option public_key '{K4}'\n" \
                    f" option endpoint_host '{host}'\n"
    fs.create_file("/etc/config/network", contents=net)
    cfg = config.load("/etc/config")
    (hit,) = [p for p in cfg.problems if "endpoint_host" in p]
    assert hit.startswith("/etc/config/network:33: @wireguard_wg0[4].endpoint_host: ")
    assert needle in hit
    assert K4 not in [p.public_key for p in cfg.peers]


def test_fullwidth_port_is_refused(fs):
    net = NETWORK + f"\nconfig wireguard_wg0\n option public_key '{K4}'\n" \
                    " option endpoint_host h.test\n option endpoint_port '５１８２０'\n"
    fs.create_file("/etc/config/network", contents=net)
    assert any("endpoint_port: invalid port" in p for p in config.load("/etc/config").problems)


def test_network_booleans_are_read_like_netifd(fs):
    net = NETWORK.replace("option disabled '1'", "option disabled 'On'")
    cfg = _load(fs, "", net)
    second = cfg.peers[1]
    assert second.managed and not second.disabled  # netifd brings it up: so do we
    assert any("'On' is not a boolean netifd knows" in p for p in cfg.problems)


def test_own_booleans_are_strict(fs):
    with pytest.raises(ConfigError, match=r"wg-endpointd:2: @globals\[0\]\.enabled: 'On'"):
        _load(fs, "config globals\n option enabled 'On'\n")


@pytest.mark.parametrize("make", ["dangling", "loop", "directory", "fifo"])
def test_unreadable_own_file_is_an_error(tmp_path, make):
    (tmp_path / "network").write_text(NETWORK)
    own = tmp_path / "wg-endpointd"
    if make == "dangling":
        own.symlink_to(tmp_path / "gone")
    elif make == "loop":
        own.symlink_to(own)
    elif make == "directory":
        own.mkdir()
    else:
        os.mkfifo(own)
    with pytest.raises(ConfigError, match=f"^{own}: cannot read: "):
        config.load(str(tmp_path))


def test_unreadable_own_file_without_permission(fs):
    from pyfakefs.fake_filesystem import reset_ids, set_uid

    fs.create_file("/etc/config/network", contents=NETWORK)
    fs.create_file("/etc/config/wg-endpointd", contents="config globals\n", st_mode=0o100000)
    set_uid(1000)  # as a user: root reads any file
    try:
        with pytest.raises(ConfigError, match="wg-endpointd: cannot read: Permission denied"):
            config.load("/etc/config")
    finally:
        reset_ids()


def test_latin1_description_is_kept_and_printable(fs, capsys):
    fs.create_file("/etc/config/network",
                   contents=NETWORK.replace("'home'", "'B\xfcro'").encode("latin-1"))
    cfg = config.load("/etc/config")
    assert cfg.peers[0].description == "B\xfcro"  # read as Latin-1 for display
    assert cli.main(["config", "--config-dir", "/etc/config", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["description"] == "B\xfcro"
    assert cli.main(["config", "--config-dir", "/etc/config"]) == 1
    assert "B\xfcro" in capsys.readouterr().out


def test_display_text_keeps_logs_on_one_line():
    assert config.display_text("a\nb\x1b[0m\udce9") == "a\\nb\\x1b[0m\xe9"
    assert config.display_text("\u20ac ok") == "\u20ac ok"


def test_every_option_is_documented_in_the_shipped_file_and_readme():
    lines = open("files/etc/config/wg-endpointd", encoding="utf-8").read().splitlines()
    seen: dict[str, set[str]] = {"globals": set(), "peer": set(), "group": set()}
    kind = ""
    for i, line in enumerate(lines):
        words = line.strip().lstrip("#").split()
        if words[:1] == ["config"]:
            kind = words[1]
        elif words[:1] in (["option"], ["list"]):
            seen[kind].add(words[1])
            j = i - 1  # up through a group of options to the comment above them
            while lines[j].strip().lstrip("#").split()[:1] in (["option"], ["list"]):
                j -= 1
            above = lines[j].strip()
            assert above.startswith("#") and above.lstrip("#").split()[:1] != ["config"], \
                f"no comment above line {i + 1}"
    readme = open("README.md", encoding="utf-8").read()
    for kind, table in options.SECTIONS.items():
        assert seen[kind] == {o.name for o in table}
        after = readme.split(f"### `config {kind}")[1].split("\n\n")
        part = next(p for p in after if p.startswith("| option"))
        assert {row.split("`")[1] for row in part.splitlines()[2:]} == {o.name for o in table}


def _with_k4(host):
    return NETWORK + f"\nconfig wireguard_wg0\n option public_key '{K4}'\n" \
                     f" option endpoint_host '{host}'\n"


def _k4(cfg):
    [found] = [p for p in cfg.peers if p.public_key == K4]
    return found


@pytest.mark.parametrize("host,why", [
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("0.0.0.0", "the unspecified address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("255.255.255.255", "the broadcast address"),
    ("169.254.7.7", "a link-local address"),
    ("fe80::1", "a link-local address"),
])
def test_endpoint_host_literal_that_is_never_an_endpoint_is_dropped(fs, host, why):
    own = f"config peer\n option interface wg0\n option public_key '{K4}'\n" \
          " list candidate backup.wg.test\n"
    cfg = _load(fs, own, _with_k4(host))
    (hit,) = [p for p in cfg.problems if "endpoint_host" in p]
    assert hit.startswith(f"/etc/config/network:33: @wireguard_wg0[4].endpoint_host: {host} "
                          f"is {why}")
    assert hit.endswith("never a remote endpoint; this candidate is dropped")
    k4 = _k4(cfg)
    assert k4.managed and [h.host for h in k4.hosts] == ["backup.wg.test"]  # the rest is used
    assert k4.endpoint_host == host  # as configured (shown by `config`)


def test_a_peer_left_without_candidates_is_not_managed(fs, capsys):
    cfg = _load(fs, "config globals\n", _with_k4("127.0.0.1"))
    k4 = _k4(cfg)
    assert not k4.managed and k4.reason == "no usable candidate" and k4.hosts == ()
    assert cli.main(["config", "--config-dir", "/etc/config"]) == 1
    err = capsys.readouterr().err
    assert "network:33: @wireguard_wg0[4].endpoint_host: 127.0.0.1 is a loopback" in err


def test_candidate_literals_that_are_never_an_endpoint_are_dropped(fs):
    own = f"config peer\n option interface wg0\n option public_key '{K1}'\n" \
          " list candidate '[::1]:51820'\n list candidate '255.255.255.255'\n" \
          " list candidate '239.1.1.1:9 [ff05::2]'\n list candidate '169.254.0.9'\n" \
          " list candidate '0.0.0.0' \n list candidate '[2001:db8::9]'\n"
    cfg = _load(fs, own)
    home = cfg.peers[0]
    assert home.managed
    assert [str(h) for h in home.hosts] == ["peer.wg.test:51820", "[2001:db8::9]:51820"]
    hits = [p for p in cfg.problems if ".candidate:" in p]
    assert [h.split(": ", 2)[2].split(" is ")[0] for h in hits] == [
        "::1", "255.255.255.255", "239.1.1.1", "ff05::2", "169.254.0.9", "0.0.0.0"]
    # the line uci keeps for a list is that of its last item (as for other candidate errors)
    assert all(h.startswith("/etc/config/wg-endpointd:9: @peer[0].candidate: ") for h in hits)
    assert all(h.endswith("never a remote endpoint; this candidate is dropped") for h in hits)


def test_probe_address_outside_the_allowed_ips_is_warned(fs):
    head = f"config peer\n option interface wg0\n option public_key '{K1}'\n"
    cfg = _load(fs, head + " option probe_address 10.64.0.1\n")
    [hit] = [p for p in cfg.problems if "probe_address" in p]
    assert hit.startswith("/etc/config/wg-endpointd:4: @peer[0].probe_address: 10.64.0.1 is "
                          "outside the peer's allowed IPs (198.51.100.128/25, 198.51.100.129/32)")
    assert cfg.peers[0].managed and cfg.peers[0].probe_address == "10.64.0.1"  # still used

    own = uci.parse(head + " option probe_address 198.51.100.200\n", "/etc/config/wg-endpointd")
    cfg = config.build(uci.parse(NETWORK, "/etc/config/network"), own)
    assert not [p for p in cfg.problems if "probe_address" in p]
