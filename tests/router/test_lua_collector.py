"""The prometheus-node-exporter-lua collector (wg_endpointd.lua) under a real Lua 5.1.

tests/lua/exporter.lua plays the exporter: metric() and the scrape loop written after
the upstream main script, output as its command-line mode prints it. tests/lua/stubs/uci.lua
stands in for libuci-lua. The output is parsed back here with the text format's rules.

Without lua5.1 the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.router.shell_helpers import ROOT, _tool
from wg_endpointd.core import metrics

HARNESS = ROOT / "tests/lua/exporter.lua"
PKG = ROOT / "openwrt/utils/prometheus-node-exporter-lua-wg-endpointd"
LUA_DIR = PKG / "files/usr/lib/lua"
KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

METRICS = rf"""# HELP wg_endpointd_up 1 while the daemon runs.
# TYPE wg_endpointd_up gauge
wg_endpointd_up 1
# TYPE wg_endpointd_peer_state gauge
wg_endpointd_peer_state{{interface="wg0",peer="{KEY}",state="verified"}} 1
wg_endpointd_peer_state{{interface="wg0",peer="{KEY}",state="down"}} 0
# TYPE wg_endpointd_peer_info gauge
wg_endpointd_peer_info{{interface="wg0", peer="{KEY}" ,description="Office \"HQ\" \\ main\nline 2, {{x}}=y"}} 1
# TYPE wg_endpointd_peer_switches_total counter
wg_endpointd_peer_switches_total{{interface="wg0",peer="{KEY}",reason="dead"}} 3 1712345678000
# TYPE wg_endpointd_start_time_seconds gauge
wg_endpointd_start_time_seconds 1712345678.123456789
# TYPE wg_endpointd_rounds counter
wg_endpointd_rounds_total 42
# TYPE wg_endpointd_verify_seconds histogram
wg_endpointd_verify_seconds_bucket{{le="+Inf"}} 2
wg_endpointd_last_verify_seconds NaN
wg_endpointd_empty_labels{{}} -Inf
node_load1 9
wg_endpointd_broken{{x="unterminated}} 1
wg_endpointd_bad_escape{{x="a\tb"}} 1
wg_endpointd_twice{{x="1",x="2"}} 1
wg_endpointd_no_value
wg_endpointd_hex 0x10
garbage {{{{ line
"""

# (name, type, labels as decoded, value) the exporter must print for METRICS.
WANT = [
    ("wg_endpointd_up", "gauge", {}, "1"),
    ("wg_endpointd_peer_state", "gauge",
     {"interface": "wg0", "peer": KEY, "state": "verified"}, "1"),
    ("wg_endpointd_peer_state", "gauge", {"interface": "wg0", "peer": KEY, "state": "down"}, "0"),
    ("wg_endpointd_peer_info", "gauge",
     {"interface": "wg0", "peer": KEY, "description": 'Office "HQ" \\ main\nline 2, {x}=y'}, "1"),
    ("wg_endpointd_peer_switches_total", "counter",
     {"interface": "wg0", "peer": KEY, "reason": "dead"}, "3"),
    ("wg_endpointd_start_time_seconds", "gauge", {}, "1712345678.123456789"),
    ("wg_endpointd_rounds_total", "counter", {}, "42"),
    ("wg_endpointd_verify_seconds_bucket", "untyped", {"le": "+Inf"}, "2"),
    ("wg_endpointd_last_verify_seconds", "untyped", {}, "NaN"),
    ("wg_endpointd_empty_labels", "untyped", {}, "-Inf"),
]

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


@pytest.fixture(scope="session")
def lua() -> str:
    return _tool("lua5.1")


def scrape(lua: str, tmp_path: Path, *, uci: dict[str, str] | str | None = None,
           run_dir: Path | None = None, collectors: tuple[str, ...] = ("wg_endpointd",)
           ) -> subprocess.CompletedProcess[str]:
    """Run the harness once; `uci` is the globals section's options (or "error")."""
    env = {"PATH": os.environ["PATH"], "WG_ENDPOINTD_RUN_DIR": str(run_dir or tmp_path / "run")}
    if isinstance(uci, str):
        env["UCI_STUB"] = uci
    elif uci is not None:
        conf = tmp_path / "uci.lua"
        options = "".join(f"{k} = {lua_string(v)}, " for k, v in uci.items())
        conf.write_text(f'return {{ ["wg-endpointd"] = {{ {{ [".type"] = "globals", '
                        f'[".name"] = "globals", {options}}} }} }}\n')
        env["UCI_STUB"] = str(conf)
    return subprocess.run([lua, str(HARNESS), str(LUA_DIR), *collectors], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(output: str) -> tuple[list[tuple[str, str, dict[str, str], str]], dict[str, str]]:
    """The wg_endpointd_* samples (name, type, labels, value) and the exporter's own
    node_scrape_collector_success values; fails on anything the text format refuses:
    a sample without its family's TYPE line just before the family's samples, a second
    TYPE line for one name, a malformed label."""
    samples, success, typed = [], {}, {}
    current = ""
    for line in output.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, mtype = line.split(" ")
            assert name not in typed, f"second TYPE line for {name}"
            typed[name], current = mtype, name
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        name, raw, value = m.groups()
        labels = {}
        pos = 0
        while raw and pos < len(raw):
            lm = _LABEL.match(raw, pos)
            assert lm, f"bad labels in {line!r}"
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: _UNESCAPE[e.group(1)], lm.group(2))
            pos = lm.end()
        if name.startswith("wg_endpointd_"):
            assert name == current, f"{name} is not right after its TYPE line"
            samples.append((name, typed[name], labels, value))
        elif name == "node_scrape_collector_success":
            success[labels["collector"]] = value
    return samples, success


def write_metrics(path: Path, text: str = METRICS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_sample_reaches_metric_with_its_type(lua: str, tmp_path: Path) -> None:
    metrics = write_metrics(tmp_path / "custom/wg.prom")
    result = scrape(lua, tmp_path, uci={"metrics_file": str(metrics), "enabled": "1"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    samples, success = parse(result.stdout)
    assert samples == WANT
    assert success == {"wg_endpointd": "1"}


def test_label_values_stay_escaped_on_the_wire(lua: str, tmp_path: Path) -> None:
    """The exporter prints label values verbatim, so they must arrive escaped."""
    write_metrics(tmp_path / "run/wg_endpointd.prom")
    out = scrape(lua, tmp_path).stdout
    assert r'description="Office \"HQ\" \\ main\nline 2, {x}=y"' in out
    assert "\nline 2" not in out


def test_without_uci_the_run_directory_file_is_read(lua: str, tmp_path: Path) -> None:
    write_metrics(tmp_path / "run/wg_endpointd.prom")
    samples, success = parse(scrape(lua, tmp_path).stdout)
    assert samples == WANT and success == {"wg_endpointd": "1"}


@pytest.mark.parametrize("uci", [{}, {"metrics_file": ""}, "error"],
                         ids=["no-option", "empty-option", "uci-fails"])
def test_uci_without_a_path_falls_back(lua: str, tmp_path: Path,
                                       uci: dict[str, str] | str) -> None:
    write_metrics(tmp_path / "run/wg_endpointd.prom")
    result = scrape(lua, tmp_path, uci=uci)
    assert result.stderr == ""
    assert parse(result.stdout) == (WANT, {"wg_endpointd": "1"})


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "unreadable-uci-path"])
def test_no_file_gives_no_samples_and_no_failure(lua: str, tmp_path: Path, case: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    uci = None
    if case == "directory":
        (run / "wg_endpointd.prom").mkdir()
    elif case == "empty":
        (run / "wg_endpointd.prom").write_text("")
    elif case == "unreadable-uci-path":
        uci = {"metrics_file": str(tmp_path / "nowhere/wg.prom")}
    result = scrape(lua, tmp_path, uci=uci, collectors=("wg_endpointd", "wg_endpointd"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    samples, success = parse(result.stdout)
    assert samples == [] and success == {"wg_endpointd": "1"}
    assert "wg_endpointd_" not in result.stdout


def test_a_rewritten_file_is_read_at_the_next_scrape(lua: str, tmp_path: Path) -> None:
    path = write_metrics(tmp_path / "run/wg_endpointd.prom", "# TYPE wg_endpointd_up gauge\n"
                         "wg_endpointd_up 1\n")
    assert parse(scrape(lua, tmp_path).stdout)[0] == [("wg_endpointd_up", "gauge", {}, "1")]
    path.write_text("# TYPE wg_endpointd_up gauge\r\nwg_endpointd_up 0\r\n")
    assert parse(scrape(lua, tmp_path).stdout)[0] == [("wg_endpointd_up", "gauge", {}, "0")]


def test_collector_is_the_only_file_of_the_package() -> None:
    files = sorted(p.relative_to(PKG / "files").as_posix()
                   for p in (PKG / "files").rglob("*") if p.is_file())
    assert files == ["usr/lib/lua/prometheus-collectors/wg_endpointd.lua"]
    makefile = (PKG / "Makefile").read_text()
    assert "./files/usr/lib/lua/prometheus-collectors/wg_endpointd.lua" in makefile


def test_the_daemons_own_file_passes_through_whole(lua: str, tmp_path: Path) -> None:
    """Every sample core/metrics.py renders reaches metric() with its type, labels
    (escapes and all) and value."""
    peer = metrics.PeerFacts("wg0", KEY, 'Office "HQ" \\ main\nline 2', "healthy",
                             switches={"failover": 2}, last_switch=1712345678.5,
                             verify_took=0.42)
    group = metrics.GroupFacts("hq", "wg0", (KEY,), KEY, failovers=1)
    daemon = metrics.DaemonFacts("0.1.0", 1712345000.25, rounds=7, last_round=1712345677.0,
                                 round_took=1.5, processes={"wg": 3})
    text = metrics.render(metrics.families([peer], [group], daemon))
    write_metrics(tmp_path / "run/wg_endpointd.prom", text)
    want, _ = parse("\n".join(x for x in text.splitlines() if not x.startswith("# HELP ")))
    assert len(want) > 10 and any(s[2].get("description") == peer.description for s in want)
    result = scrape(lua, tmp_path)
    assert result.stderr == ""
    assert parse(result.stdout) == (want, {"wg_endpointd": "1"})
