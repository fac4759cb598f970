"""The settings file of a Linux host in TOML (config/tomlfile.py): the same options,
checks and one-line errors with file:line as the UCI file."""

import re
from pathlib import Path

import pytest

from tests import option_cases
from wg_endpointd.config import hostload, ownfile, tomlfile, uci, wgquick
from wg_endpointd.core import options
from wg_endpointd.core.errors import ConfigError

PATH = "/etc/wg-endpointd/wg-endpointd.toml"
SHIPPED = Path(__file__).resolve().parents[2] / "files/etc/wg-endpointd/wg-endpointd.toml"
K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
WG0 = f"""[Interface]
Address = 10.99.0.2/24
[Peer]
PublicKey = {K1}
Endpoint = vpn.example.net:51820
AllowedIPs = 10.1.0.0/16
[Peer]
PublicKey = {K2}
Endpoint = vpn2.example.net:51820
AllowedIPs = 10.1.0.0/16
"""


def parse(text: str) -> uci.Package:
    return tomlfile.parse(text, PATH)


def host(text: str):
    """The configuration of a host with wg0 up and this settings file."""
    quick = wgquick.parse(WG0, "/etc/wireguard/wg0.conf")
    return hostload.build("/etc/wireguard", {"wg0": quick}, ["wg0"], parse(text))


def test_tables_become_sections_with_lines():
    pkg = parse(f"""# settings
[globals]
log_level = "debug"   # more
check_interval = 5
host_routes = false
interface = [
  "wg0",
]

[[peer]]
interface = "wg0"
public_key = "{K1}"
candidate = ["b.example.net", "[2001:db8::9]:4500"]
probe_timeout = 1.5

[[peer]]
interface = "wg0"
public_key = '''{K2}'''

[[group]]
interface = "wg0"
peer = ["{K1}", "{K2}"]
""")
    g, p0, p1, grp = pkg.sections
    assert (g.ref, g.line, dict(g.options)) == ("globals", 2, {
        "log_level": "debug", "check_interval": "5", "host_routes": "0", "interface": ("wg0",)})
    assert g.line_of("interface") == 6
    assert (p0.ref, p0.line, p0.line_of("candidate"), p0.get("probe_timeout")) == (
        "@peer[0]", 10, 13, "1.5")
    assert (p1.ref, p1.line, p1.line_of("public_key")) == ("@peer[1]", 16, 18)
    assert (grp.ref, grp.get_list("peer")) == ("@group[0]", (K1, K2))
    settings = ownfile.read_settings(pkg)
    assert (settings.log_level, settings.check_interval, settings.host_routes) == (
        "debug", 5.0, False)


def test_lines_survive_multi_line_strings_and_arrays():
    pkg = parse('[globals]\ntrigger = """\n[[peer]]\nx = 1\n"""\nfamily = "ipv4"\n'
                '[[peer]]\ninterface = "wg0"\n')
    g, p = pkg.sections
    assert g.line_of("family") == 6 and p.line == 7 and p.line_of("interface") == 8


@pytest.mark.parametrize("text,line,words", [
    ('[globals]\nenabled = "yes"\n', 2, "globals.enabled: expected true or false, got a string"),
    ("[globals]\nenabled = 1\n", 2, "expected true or false, got an integer"),
    ('[globals]\ncheck_interval = "10"\n', 2, "expected a number of seconds, got a string"),
    ("[globals]\ncheck_interval = true\n", 2, "expected a number of seconds, got a boolean"),
    ("[globals]\nlog_level = 3\n", 2, "globals.log_level: expected a string, got an integer"),
    ('[globals]\n\ninterface = ["wg0", 1]\n', 3, "expected an array of strings, got an array"),
    ("[globals]\ninterface = 1979-05-27\n", 2, "got a date or time"),
    ('[[peer]]\ninterface = "wg0"\n[[peer]]\nmanaged = "0"\n', 4,
     "@peer[1].managed: expected true or false"),
    ('[[peer]]\ncandidate = {host = "a"}\n', 2, "@peer[0].candidate: expected an array of "
     "strings, got a table"),
    ('[[group]]\npeer = "a"\nfailback_hold = [1]\n', 3,
     "@group[0].failback_hold: expected a number of seconds, got an array"),
    ('log_level = "debug"\n', 1, "'log_level' is outside any table (settings go under "
     "[globals])"),
    ("[globals]\nlog_level = \n", 2, "Invalid value (column 13)"),
    ('[globals]\nenabled = true\nenabled = false\n', 3, "Cannot overwrite a value"),
    ('[globals]\ninterface = ["wg0",\n', 3, "(at the end)"),
])
def test_type_and_syntax_errors_are_one_line_with_file_and_line(text, line, words):
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith(f"{PATH}:{line}: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def _as_toml(option: str, value: str) -> str | None:
    """A UCI case written as TOML, or None where TOML cannot say it (its booleans are
    only true and false, its numbers have no leading dot or blank)."""
    kind = {o.name: o.kind for o in options.GLOBALS}[option]
    if kind == "bool":
        return None if value in ("On", "TRUE", "maybe") else (
            "true" if value in options.TRUE_WORDS else "false")
    if kind == "seconds":
        return value if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) else None
    return f'["{value}"]' if kind == "names" else f'"{value}"'


TOML_CASES = [(o, _as_toml(o, v), ok) for o, v, ok in option_cases.GLOBAL_CASES
              if _as_toml(o, v) is not None]


@pytest.mark.parametrize("option,toml,accepted", TOML_CASES)
def test_globals_table_through_toml(option, toml, accepted):
    """The UCI table of cases, through the TOML file."""
    text = f"[globals]\n{option} = {toml}\n"
    if accepted:
        host(text)
    else:
        with pytest.raises(ConfigError, match=rf"^{PATH}:2: globals\.{option}: "):
            host(text)


def test_toml_values_unlike_uci_ones():
    """What TOML itself refuses, or reads in its own way, of the UCI table's cases."""
    for text, words in (("enabled = On", "Invalid value"), ("dead_after = 1e3", None),
                        ("backoff_max = -1", "above 0"), ('metrics_file = ""', None)):
        if words is None:
            host(f"[globals]\n{text}\n")
            continue
        with pytest.raises(ConfigError, match=words):
            host(f"[globals]\n{text}\n")


def test_unknown_tables_and_options_are_warned_with_lines():
    cfg = host('[global]\nlog_level = "debug"\n[globals]\nlog_levl = "debug"\n'
               '[[peer]]\ninterface = "wg0"\npublic_key = "nokey"\n')
    assert cfg.problems[0] == (f"{PATH}:1: @global[0]: unknown section type 'global', "
                               "ignored (did you mean 'globals'?)")
    assert cfg.problems[1] == (f"{PATH}:4: globals: unknown option 'log_levl', ignored "
                               "(did you mean 'log_level'?)")
    assert cfg.problems[2].startswith(f"{PATH}:5: @peer[0]: matches no peer")


def test_overrides_and_groups_apply():
    cfg = host(f'[[peer]]\ninterface = "wg0"\npublic_key = "{K2}"\nmanaged = false\n'
               f'[[peer]]\ninterface = "wg0"\npublic_key = "{K1}"\nfamily = "ipv6"\n'
               'verify_timeout = 3\n')
    first, second = cfg.peers
    assert first.family == "ipv6" and first.verify_timeout == 3.0
    assert not second.managed and second.reason == "opted out (managed 0)"
    cfg = host(f'[[group]]\ninterface = "wg0"\npeer = ["{K1}", "{K2}"]\nfailback_hold = 60\n')
    assert cfg.groups[0].failback_hold == 60.0 and cfg.groups[0].name == "@group[0]"
    cfg = host(f'[[group]]\ninterface = "wg0"\npeer = ["{K1}"]\n')
    assert cfg.problems == (f"{PATH}:1: @group[0]: a group needs at least two `list peer` "
                            "entries; the group is left alone",)


def test_shipped_file_documents_every_option_with_its_default():
    text = SHIPPED.read_text()
    assert tomlfile.parse(text, str(SHIPPED)).sections[0].options == {}  # all commented
    uncommented = re.sub(r"(?m)^#(\[\[|[a-z_]+ = )", r"\1", text)
    pkg = tomlfile.parse(uncommented, str(SHIPPED))
    (g,) = pkg.by_type("globals")
    assert set(g.options) == {o.name for o in options.GLOBALS}
    lists = {o.name for o in options.GLOBALS if o.kind == "names"}
    platform = {o.name for o in options.GLOBALS  # a default that depends on the host
                if getattr(options.Settings(), o.field) is None}
    defaults = {k: v for k, v in g.options.items() if k not in lists | platform}
    shipped = uci.Package(pkg.path, (uci.Section("globals", "globals", 0, 1, defaults),))
    assert ownfile.read_settings(shipped) == options.Settings()
    (peer,) = pkg.by_type("peer")
    (group,) = pkg.by_type("group")
    assert set(peer.options) == {o.name for o in options.PEER}
    assert set(group.options) == {o.name for o in options.GROUP}
    assert ownfile.own_warnings(pkg) == []


def test_load_missing_unreadable_and_not_utf8(fs):
    assert hostload.load("/etc/wireguard", PATH, []).settings == options.Settings()
    fs.create_dir(PATH)
    with pytest.raises(ConfigError, match=f"^{PATH}: cannot read"):
        hostload.load("/etc/wireguard", PATH, [])
    fs.remove_object(PATH)
    fs.create_file(PATH, contents=b'[globals]\n# caf\xe9\nlog_level = "debug"\n')
    with pytest.raises(ConfigError, match=f"^{PATH}:2: not UTF-8"):
        tomlfile.load(PATH)
    fs.remove_object(PATH)
    fs.create_file(PATH, contents='\ufeff[globals]\nlog_level = "debug"\n')
    assert tomlfile.load(PATH).sections[0].get("log_level") == "debug"
