"""luci-app-wg-endpointd JavaScript: node's test runner, `node --check`, and the
settings page's option table checked against the shipped config and the daemon.

The node tests (tests/luci/*.test.mjs) run from here so that `make test` and
the pytest summary count them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.luci_harness import APP, ROOT, tool
from wg_endpointd import config
from wg_endpointd.config import uci
from wg_endpointd.core import validate
from wg_endpointd.core.errors import ConfigError

NODE_TESTS = sorted((ROOT / "tests" / "luci").glob("*.test.mjs"))
JS_FILES = sorted(APP.rglob("*.js")) + sorted((ROOT / "tests" / "luci").glob("*.mjs"))
SHIPPED = ROOT / "files" / "etc" / "config" / "wg-endpointd"
LOADER = ROOT / "tests" / "luci" / "luci.mjs"


def _node(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("node"), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def table() -> dict[str, list[dict[str, Any]]]:
    result = _node(str(LOADER), "dump", "wg-endpointd.options")
    assert result.returncode == 0, result.stderr
    data: dict[str, list[dict[str, Any]]] = json.loads(result.stdout)
    return data


def test_node_tests_pass() -> None:
    assert NODE_TESTS
    result = _node("--test", "--test-reporter=tap", *map(str, NODE_TESTS))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout[-2000:]


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_node_check(path: Path) -> None:
    result = _node("--check", str(path))
    assert result.returncode == 0, result.stderr


def _shipped_options() -> dict[str, dict[str, tuple[str, str]]]:
    """Section ("globals" or "peer") -> option -> (help comment, value), including the
    commented-out examples of the shipped file."""
    found: dict[str, dict[str, tuple[str, str]]] = {"globals": {}, "peer": {}, "group": {}}
    section, comment = "", []
    for raw in SHIPPED.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"#?\s*config\s+(\w+)", line)
        if m:
            section, comment = m.group(1), []
            continue
        m = re.match(r"#?\s*(option|list)\s+(\w+)\s+'([^']*)'", line)
        if m and section in found:
            found[section].setdefault(m.group(2), (" ".join(comment), m.group(3)))
            comment = []
        elif line.startswith("#"):
            comment.append(re.sub(r"^[#\s]+", "", line))
        else:
            comment = []
    return found


# A value the shipped file's comment names, as "1 runs the daemon".
UCI_VALUE = re.compile(r"(?<![\w.])[01](?![\w.])")


def _same_help(spec: dict[str, Any], comment: str) -> None:
    """The page shows the shipped file's comment, except for a flag: the file speaks of
    the values 1 and 0, the page shows a checkbox, so its help says what ticking it does."""
    if spec["type"] == "flag":
        assert UCI_VALUE.search(comment), spec["name"]  # the file's wording, for the record
        assert not UCI_VALUE.search(spec["help"]), spec["name"]
        assert "Untick" in spec["help"], spec["name"]
    else:
        assert spec["help"] == comment, spec["name"]


def test_global_options_match_the_shipped_file(table: dict[str, Any]) -> None:
    shipped = _shipped_options()["globals"]
    assert [o["name"] for o in table["GLOBALS"]] == list(shipped)
    for spec in table["GLOBALS"]:
        help_text, value = shipped[spec["name"]]
        _same_help(spec, help_text)
        if "default" in spec:
            assert spec["default"] == value, spec["name"]


def test_global_options_match_the_daemon(table: dict[str, Any]) -> None:
    defaults = config.Settings()
    fields = {f.name for f in dataclasses.fields(config.Settings)}
    names = {o["name"] for o in table["GLOBALS"]}
    # UCI lists `interface` and `trigger` fill the plural fields.
    assert {n if n in fields else n + "s" for n in names} == fields
    for spec in table["GLOBALS"]:
        value = getattr(defaults, spec["name"], None)
        if spec["type"] == "flag":
            assert (spec["default"] == "1") is value
        elif spec["type"] == "number":
            assert float(spec["default"]) == value
        elif spec["type"] == "choice":
            assert spec["default"] == value
            allowed = {"family": config.FAMILIES, "log_level": config.LOG_LEVELS}[spec["name"]]
            assert tuple(spec["choices"]) == allowed


def test_peer_options_match_the_shipped_file(table: dict[str, Any]) -> None:
    shipped = _shipped_options()["peer"]
    # interface and public_key are set by the peer chooser, not typed.
    assert [o["name"] for o in table["PEER"]] == [
        n for n in shipped if n not in ("interface", "public_key")]
    for spec in table["PEER"]:
        help_text = shipped[spec["name"]][0]
        if help_text:
            _same_help(spec, help_text)
        else:
            assert "help" not in spec and spec["inherit"], spec["name"]


def test_group_options_match_the_shipped_file_and_the_daemon(table: dict[str, Any]) -> None:
    from wg_endpointd.core import options as daemon_options

    shipped = _shipped_options()["group"]
    # interface and the members (peer) come from choosers, not typed.
    assert [o["name"] for o in table["GROUP"]] == [
        n for n in shipped if n not in ("interface", "peer")]
    assert {o.name for o in daemon_options.GROUP} == set(shipped)
    for spec in table["GROUP"]:
        assert spec["help"] == shipped[spec["name"]][0], spec["name"]


# --- validators: the page accepts exactly what the daemon accepts ----------------

# An empty value is never written: the page removes the option instead.
NUMBERS = ["1", "1.0", " 2.5 ", ".5", "5.", "+3", "-3", "0", "0.0", "1e3", "1E-2", "1e7", "9999999",
           "1_000", "1__0", "_1", "1_", "inf", "nan", "infinity", "0x10", "1,5", " ", "1e",
           "e1", "1.2.3", "1e1_0", "\u0663", "\uff15", "\U0001d7d9", "\u00b2", "10000000.0",
           "9999999.999"]
HOSTS = ["backup.example.net", "backup.example.net:51821", "host:\u0665\u0661", "host:0", "host:65536", "host:x",
         "192.0.2.1", "192.0.2.1:1", "192.0.2.256", "01.2.3.4", "[2001:db8::10]:51820",
         "2001:db8::10", "[2001:db8::10]", "[2001:db8::10", "[::1]x", "[::1]:", "::", "::1",
         "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", "fe80::1%eth0", "fe80::1%",
         "[fe80::1%eth0]:5", "::ffff:192.0.2.1", "[::ffff:1.2.3.4]:9", "-bad.example",
         "bad-.example", "a..b", "ex ample", "vpn.example.", "a_b.example", "x" * 254,
         ".".join(["a" * 63] * 4), "[example.com]:80", "1:2", "1:2:3", "12345::1",
         "1:2:3:4:5:6:7::", ":1::2", "1::2:",
         # never a remote endpoint (issue 18): the page refuses what the daemon drops
         "127.0.0.1", "127.1.2.3:51820", "0.0.0.0", "224.0.0.1", "239.255.255.250",
         "255.255.255.255", "169.254.1.1", "[::1]:51820", "ff02::1", "[ff05::2]:1",
         "223.255.255.255", "240.0.0.1", "fec0::1"]
ADDRESSES = ["10.0.0.1", "[fd00::1]", "fd00::1", "10.0.0", "fd00::1::", "example.com", "", "[]"]
IFNAMES = ["wg0", "wan", "lan_1", "eth0.2", "a@b", "123456789012345", "1234567890123456",
           "-wg", "wg 0", "wg/0", "", ".x"]
KEYS = ["TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUI=", "TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUIA",
        "TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUJ=", "short=", ""]


def _daemon_number(text: str) -> bool:
    pkg = uci.parse("config globals 'globals'\n\toption probe_timeout '" + text + "'\n", "t")
    try:
        config.read_settings(pkg)
    except ConfigError:
        return False
    return True


def _daemon_hostport(text: str) -> bool:
    """What the daemon keeps as a candidate: it parses, and it can be a remote endpoint."""
    try:
        host, _ = validate.parse_hostport(text, 51820)
    except ValueError:
        return False
    return validate.never_endpoint(host) is None


JUDGE = """
import { load } from %s;
const o = load('wg-endpointd.options');
const cases = JSON.parse(process.argv[process.argv.length - 1]);
const out = {};
for (const [fn, items] of Object.entries(cases)) out[fn] = items.map((s) => o[fn](s));
process.stdout.write(JSON.stringify(out));
"""


PREFIXES = ["0.0.0.0/0", "::/0", "10.0.0.1/24", "10.0.0.0/33", "2001:db8::/32",
            "2001:db8::/129", "192.0.2.1", "2001:db8::1", "192.0.2.256/8", "10.0.0.0/",
            "10.0.0.0/x", "fe80::1%eth0/64", "01.2.3.4/8", "::ffff:192.0.2.1/128", "1.2.3/8"]


def _daemon_prefix(text: str) -> bool:
    from wg_endpointd.config.groupconf import normalise

    try:
        normalise(text)
    except ValueError:
        return False
    return True


def test_validators_agree_with_the_daemon() -> None:
    cases = {"positiveNumber": NUMBERS, "hostPort": HOSTS, "ipLiteral": ADDRESSES,
             "ifname": IFNAMES, "publicKey": KEYS, "prefix": PREFIXES}
    script = JUDGE % json.dumps(LOADER.as_uri())
    result = _node("--input-type=module", "-e", script, json.dumps(cases))
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    daemon = {
        "positiveNumber": [_daemon_number(s) for s in NUMBERS],
        "hostPort": [_daemon_hostport(s) for s in HOSTS],
        "ipLiteral": [validate.ip_literal(s) is not None for s in ADDRESSES],
        "ifname": [validate.is_ifname(s) for s in IFNAMES],
        "publicKey": [validate.is_public_key(s) for s in KEYS],
        "prefix": [_daemon_prefix(s) for s in PREFIXES],
    }
    for fn, items in cases.items():
        wrong = [s for s, a, b in zip(items, page[fn], daemon[fn], strict=True) if a != b]
        assert not wrong, f"{fn} disagrees with the daemon on {wrong}"
    assert any(daemon["positiveNumber"]) and not all(daemon["positiveNumber"])
