"""Where once, run, config and a reload read the configuration (runtime/sources.py), and
what the command line says on a host that has neither UCI nor wg-quick files."""

import argparse
import json
import os
from pathlib import Path

import pytest

# `once` imports these: here first, before pyfakefs patches `os` (a module first
# imported under it keeps the fake one)
import wg_endpointd.config.hostload
import wg_endpointd.runtime.engine
import wg_endpointd.system.probe
import wg_endpointd.system.routes
import wg_endpointd.system.wg  # noqa: F401
from wg_endpointd import cli
from wg_endpointd.core.errors import ConfigError, UsageError
from wg_endpointd.runtime import sources

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
PRIV = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="
WG0 = f"""[Interface]
PrivateKey = {PRIV}
Address = 10.99.0.2/24
[Peer]
PublicKey = {K1}
Endpoint = vpn.example.net:51820
AllowedIPs = 0.0.0.0/0, ::/0
"""
NETWORK = "config interface 'wg0'\n\toption proto 'wireguard'\n"


def args(**kw) -> argparse.Namespace:
    base = {"config_dir": "/etc/config", "wireguard_dir": None, "source": None,
            "settings": None}
    return argparse.Namespace(**{**base, **kw})


def test_default_source(fs):
    assert sources.choose(args()).kind == "wg-quick"  # no /etc/config/network
    fs.create_file("/etc/config/network", contents=NETWORK)
    assert sources.choose(args()).kind == "uci"
    chosen = sources.choose(args(wireguard_dir="/srv/wg"))
    assert (chosen.kind, chosen.wireguard_dir, chosen.by_default) == ("wg-quick", "/srv/wg",
                                                                      False)
    chosen = sources.choose(args(source="wg-quick"))
    assert (chosen.wireguard_dir, chosen.settings) == (sources.WIREGUARD_DIR, sources.SETTINGS)
    assert sources.choose(args(config_dir="/elsewhere", source="uci")).kind == "uci"
    with pytest.raises(UsageError, match="go with --source wg-quick"):
        sources.choose(args(source="uci", wireguard_dir="/etc/wireguard"))


def test_wg_quick_reads_the_interfaces_it_is_given(fs):
    fs.create_file("/etc/wireguard/wg0.conf", contents=WG0)
    listed = []

    def interfaces():
        listed.append(1)
        return ["wg0"]

    cfg = sources.load(sources.choose(args()), interfaces)
    assert [p.fwmark for p in cfg.peers] == [51820] and listed == [1]
    fs.create_file("/etc/config/network", contents=NETWORK)  # UCI: `wg` is not asked
    assert sources.load(sources.choose(args()), interfaces).peers == () and listed == [1]


@pytest.mark.parametrize("command", [["config"], ["once", "--dry-run"], ["config", "--check"]])
def test_a_host_with_neither_says_what_it_lacks(fs, capsys, command):
    fs.create_dir("/etc/config")
    assert cli.main([*command, "--config-dir", "/etc/config"]) == 2
    err = capsys.readouterr().err
    assert "cannot read" not in err and err.count("\n") == 1
    assert "this host has no /etc/config/network (OpenWrt's UCI) and no wg-quick files " \
           "(/etc/wireguard/*.conf); pass --wireguard-dir DIR" in err
    assert "--config-dir DIR" in err


def test_an_empty_wireguard_dir_counts_as_none(fs, capsys):
    fs.create_dir("/etc/wireguard")
    fs.create_file("/etc/wireguard/README", contents="x")
    assert cli.main(["config"]) == 2
    assert "this host has no /etc/config/network" in capsys.readouterr().err


def test_a_named_directory_that_is_missing(fs, capsys):
    assert cli.main(["config", "--wireguard-dir", "/srv/wg"]) == 2
    assert "/srv/wg: no such directory" in capsys.readouterr().err


# --- the command line with a `wg` of its own on PATH (no pyfakefs: it runs) ------------


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host with wg0 and wg9 up, wg0.conf in tmp/wireguard, no settings file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wg = bin_dir / "wg"
    wg.write_text('#!/bin/sh\n[ "$*" = "show interfaces" ] || exit 1\necho "wg0 wg9"\n')
    wg.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "wireguard").mkdir()
    (tmp_path / "wireguard" / "wg0.conf").write_text(WG0)
    return tmp_path


def test_config_json_from_wg_quick(host, capsys):
    argv = ["config", "--json", "--wireguard-dir", str(host / "wireguard"),
            "--settings", str(host / "none.toml")]
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    [peer] = json.loads(out.out)
    assert (peer["interface"], peer["public_key"], peer["fwmark"]) == ("wg0", K1, 51820)
    assert peer["route_allowed_ips"] is False and peer["probe_address"] == "10.99.0.1"
    assert peer["section"] == "peer1" and peer["endpoint_host"] == "vpn.example.net"
    assert out.err == (f"wg-endpointd: note: wg9: not managed: there is no "
                       f"{host / 'wireguard' / 'wg9.conf'}\n")
    assert PRIV not in out.out + out.err


def test_a_broken_file_is_a_warning_and_once_exits_1(host, capsys):
    (host / "wireguard" / "wg0.conf").write_text(WG0 + f"PresharedKey = {PRIV[:-3]}\n")
    common = ["--wireguard-dir", str(host / "wireguard"), "--settings", str(host / "x.toml")]
    assert cli.main(["config", *common]) == 1
    err = capsys.readouterr().err
    assert f"{host / 'wireguard' / 'wg0.conf'}:8: PresharedKey is not a key" in err
    assert "wg0 is left alone" in err and PRIV[:-3] not in err
    assert cli.main(["once", "--dry-run", *common]) == 1


def test_settings_errors_name_the_toml_file(host, capsys):
    settings = host / "wg-endpointd.toml"
    settings.write_text('[globals]\n\ncheck_interval = "10"\n')
    assert cli.main(["config", "--wireguard-dir", str(host / "wireguard"),
                     "--settings", str(settings)]) == 2
    assert capsys.readouterr().err == (f"wg-endpointd: error: {settings}:3: globals."
                                       "check_interval: expected a number of seconds, got a "
                                       "string\n")


def test_without_wg_the_interfaces_cannot_be_listed(host, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(host / "nothing"))
    with pytest.raises(ConfigError, match="cannot list the WireGuard interfaces: wg binary"):
        sources.loader(args(wireguard_dir=str(host / "wireguard")))()
    assert cli.main(["config", "--wireguard-dir", str(host / "wireguard")]) == 2


def test_a_reload_reads_again_from_the_same_source(host):
    load = sources.loader(args(wireguard_dir=str(host / "wireguard"),
                               settings=str(host / "s.toml")))
    assert load().settings.family == "auto"
    (host / "s.toml").write_text('[globals]\nfamily = "ipv4"\n')
    assert load().peers[0].family == "ipv4"
