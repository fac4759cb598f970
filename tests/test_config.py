import json

import pytest

from wg_endpointd import cli, config
from wg_endpointd.errors import ConfigError

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
K3 = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="

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
    assert config.default_probe_address(allowed) == expected


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
    ["bogus"],
])
def test_cli_usage_errors(argv, capsys):
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_unknown_interface(etc, capsys):
    assert cli.main(["once", "--config-dir", "/etc/config", "--interface", "wg9"]) == 2
    assert "unknown interface 'wg9'" in capsys.readouterr().err
