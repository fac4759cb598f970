"""luci-app-wg-endpointd: the rpcd plugin under busybox.

The plugin runs as rpcd runs an exec plugin (openwrt/rpcd plugin.c): `list`
with nothing on stdin, `call METHOD` with the arguments as JSON on stdin, and
stdout must be one JSON object. PATH holds only busybox applets and the stubs
in tests/luci/stubs, so the plugin gets busybox's awk, as on a router.
Fake daemons are real processes whose command lines look like the daemon's
(or not), started by hand or under a parent named "procd".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.luci_harness import (
    APP,
    DATA,
    PYTHON,
    STUBS,
    Fake,
    Plugin,
    busybox_path,
    tool,
    wait_for,
)

PLUGIN_PATH = APP / "root" / "usr" / "libexec" / "rpcd" / "wg-endpointd"
KEYS = json.loads((DATA / "keys.json").read_text())
SECRETS = [KEYS["iface-priv-wg0"], KEYS["iface-priv-wg1"], KEYS["psk-home"], KEYS["psk-vpn-a"]]


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Fake]]:
    base = tmp_path_factory.mktemp("fakes")
    made: dict[str, Fake] = {}
    try:
        made["daemon"] = Fake(base / "d", ["run"])
        made["procd"] = Fake(base / "p", ["run", "--config-dir", "/etc/config"], parent="procd")
        made["status"] = Fake(base / "s", ["status"])  # the daemon's CLI, not the daemon
        made["other"] = Fake(base / "o", ["run"], name="wg-endpointd-helper")
        made["substring"] = Fake(base / "x", ["--tag=wg-endpointd", "run"], name="worker")
        yield made
    finally:
        for f in made.values():
            f.stop()


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path, tool("busybox"), PLUGIN_PATH)


# --- list -----------------------------------------------------------------------


def test_list_names_the_methods_with_table_signatures(plugin: Plugin) -> None:
    out = plugin.run("list", stdin=None)
    assert set(out) == {"status", "check"}
    assert all(isinstance(sig, dict) for sig in out.values())  # rpcd skips anything else
    assert out["check"] == {"start": True}  # a boolean argument


# --- status ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["healthy", "fallback", "down", "empty", "today"])
def test_status_passes_the_state_and_live_counters(plugin: Plugin, fakes: dict[str, Fake],
                                                   fixture: str) -> None:
    state = json.loads((DATA / f"{fixture}.json").read_text())
    plugin.state(state)
    plugin.pid(fakes["daemon"].pid)
    out = plugin.run("call", "status")
    assert out["running"] is True and out["pid"] == fakes["daemon"].pid
    assert out["state"] == state
    assert out["wg"] == "ok" and "state_error" not in out
    assert out["interfaces"] == [{"name": "wg0", "listen_port": 51820},
                                 {"name": "wg1", "listen_port": 51821}]
    named = {(p["interface"], p["public_key"]) for p in state["peers"]}
    for g in state.get("groups", []):
        named |= {(g["interface"], m["public_key"]) for m in g["members"]}
    assert {(x["interface"], x["public_key"]) for x in out["live"]} == named
    assert abs(out["now"] - time.time()) < 5


def test_status_live_fields_come_from_the_dump(plugin: Plugin) -> None:
    plugin.state(json.loads((DATA / "healthy.json").read_text()))
    live = {x["public_key"]: x for x in plugin.run("call", "status")["live"]}
    assert live[KEYS["home"]] == {
        "interface": "wg0", "public_key": KEYS["home"], "endpoint": "[2001:db8:1::2]:51820",
        "latest_handshake": 1795302990, "rx_bytes": 123456, "tx_bytes": 654321,
        "persistent_keepalive": 25}
    assert live[KEYS["office"]]["persistent_keepalive"] is None  # "off"
    assert live[KEYS["vpn-b"]]["latest_handshake"] == 0
    assert KEYS["passive"] not in live  # not in the state file


@pytest.mark.parametrize("fixture", ["healthy", "fallback", "down", "empty", "today"])
def test_status_never_returns_a_private_or_preshared_key(plugin: Plugin, fixture: str) -> None:
    state = json.loads((DATA / f"{fixture}.json").read_text())
    state["private_key"] = "LEAKED-PRIVATE"
    for p in state["peers"]:
        p["preshared_key"] = "LEAKED-PSK"
    plugin.state(state)
    text = plugin.run_text("call", "status")
    for secret in [*SECRETS, "LEAKED-PRIVATE", "LEAKED-PSK"]:
        assert secret not in text
    assert json.loads(text)["state"]["peers"] == json.loads(
        (DATA / f"{fixture}.json").read_text())["peers"]


def test_status_without_a_daemon(plugin: Plugin, fakes: dict[str, Fake]) -> None:
    plugin.state(json.loads((DATA / "healthy.json").read_text()))
    out = plugin.run("call", "status")  # no pid file
    assert out["running"] is False and out["pid"] is None
    assert out["state"]["peers"]  # the last known state is still shown


@pytest.mark.parametrize("who", ["status", "other", "substring"])
def test_status_a_reused_pid_is_not_the_daemon(plugin: Plugin, fakes: dict[str, Fake],
                                               who: str) -> None:
    plugin.pid(fakes[who].pid)
    assert plugin.run("call", "status")["running"] is False


@pytest.mark.parametrize("planted", ["wg-endpointd.pid", "state.json"])
def test_status_never_blocks_on_a_fifo(plugin: Plugin, planted: str) -> None:
    """Issue 18: a FIFO in place of the pid or state file must not hang the page."""
    import os

    os.mkfifo(plugin.run_dir / planted)
    out = json.loads(plugin.run_text("call", "status", timeout=5))
    assert out["running"] is False


@pytest.mark.parametrize("content", ["", "abc", "-1", "12 34", "99999999"])
def test_status_garbage_pid_file(plugin: Plugin, content: str) -> None:
    (plugin.run_dir / "wg-endpointd.pid").write_text(content)
    assert plugin.run("call", "status")["running"] is False


def test_status_module_style_command_line(plugin: Plugin, tmp_path: Path) -> None:
    proc = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    (tmp_path / "wg_endpointd.py").write_text("import time\ntime.sleep(60)\n")
    mod = subprocess.Popen([PYTHON, "-m", "wg_endpointd", "run"], cwd=tmp_path,
                           env={"PYTHONPATH": str(tmp_path)}, stderr=subprocess.DEVNULL)
    try:
        plugin.pid(proc.pid)
        assert plugin.run("call", "status")["running"] is False
        plugin.pid(mod.pid)
        wait_for(lambda: Path(f"/proc/{mod.pid}/cmdline").read_bytes().endswith(b"run\0"), "-m")
        assert plugin.run("call", "status")["running"] is True
    finally:
        for p in (proc, mod):
            p.kill()
            p.wait()


def test_status_missing_state_file(plugin: Plugin) -> None:
    out = plugin.run("call", "status")
    assert out["state"] is None and out["state_error"] == "missing"


def _cuts() -> list[int]:
    size = len((DATA / "healthy.json").read_bytes())
    return [0, 1, 2, 10, size // 3, size // 2, size - 3, size - 2]


@pytest.mark.parametrize("cut", _cuts())
def test_status_half_written_state_file(plugin: Plugin, cut: int) -> None:
    (plugin.run_dir / "state.json").write_bytes((DATA / "healthy.json").read_bytes()[:cut])
    out = plugin.run("call", "status")
    assert out["state"] is None and out["state_error"] == "corrupt"
    assert out["live"] == []


@pytest.mark.parametrize("text", [
    "[]", '"peers"', "{} {}", '{"peers": [}', "{'peers': []}", '{"a": 01}', '{"a": "\\x"}',
    '{"a": "tab\there"}', "\x00\x01", '{"a": [' * 40 + "]" * 40 + "}", "garbage",
])
def test_status_corrupt_state_file(plugin: Plugin, text: str) -> None:
    (plugin.run_dir / "state.json").write_text(text)
    out = plugin.run("call", "status")
    assert out["state"] is None and out["state_error"] == "corrupt"


def test_status_keeps_escapes_and_maps_nan_to_null(plugin: Plugin) -> None:
    (plugin.run_dir / "state.json").write_text(
        '{"peers": [], "d": "caf\\u00e9 \\"q\\" \\\\ \\/", "r": NaN, "i": -Infinity, '
        '"n": [1.5e3, -0, true, false, null, {}]}')
    state = plugin.run("call", "status")["state"]
    assert state == {"peers": [], "d": 'café "q" \\ /', "r": None, "i": None,
                     "n": [1500.0, 0, True, False, None, {}]}


def test_status_without_wg(plugin: Plugin) -> None:
    plugin.state(json.loads((DATA / "healthy.json").read_text()))
    out = plugin.run("call", "status", wg=False)
    assert out["wg"] == "missing" and out["live"] == [] and out["interfaces"] == []
    assert out["state"]["peers"]


def test_status_wg_fails(plugin: Plugin) -> None:
    plugin.state(json.loads((DATA / "healthy.json").read_text()))
    out = plugin.run("call", "status", env={"WG_STUB_FAIL": "1"})
    assert out["wg"] == "failed" and out["live"] == []


def test_status_no_wireguard_interface(plugin: Plugin) -> None:
    plugin.state(json.loads((DATA / "empty.json").read_text()))
    empty = plugin.run_dir.parent / "empty-dump"
    empty.write_text("")
    out = plugin.run("call", "status", env={"WG_STUB_DUMP": str(empty)})
    assert out["wg"] == "ok" and out["interfaces"] == [] and out["live"] == []


def test_status_escapes_what_wg_prints(plugin: Plugin) -> None:
    odd = 'w"g\\0'
    dump = plugin.run_dir.parent / "odd-dump"
    dump.write_text(f"{odd}\tPRIV\tPUB\t1\toff\n"
                    f"{odd}\t{KEYS['home']}\tPSK\t[fe80::1%e\"th]:1\t(none)\t7\t8\t9\toff\n")
    plugin.state({"peers": [{"interface": odd, "public_key": KEYS["home"]}]})
    text = plugin.run_text("call", "status", env={"WG_STUB_DUMP": str(dump)})
    out = json.loads(text)
    assert out["interfaces"] == [{"name": odd, "listen_port": 1}]
    assert out["live"][0]["endpoint"] == '[fe80::1%e"th]:1'
    assert "PRIV" not in text and "PSK" not in text


# --- check ----------------------------------------------------------------------


def test_check_wakes_a_daemon_run_by_hand(plugin: Plugin, fakes: dict[str, Fake]) -> None:
    d = fakes["daemon"]
    d.take()
    plugin.pid(d.pid)
    out = plugin.run("call", "check", stdin="{ }")
    assert out["result"] == "woken" and out["via"] == "signal" and out["pid"] == d.pid
    assert abs(out["at"] - time.time()) < 5
    assert d.take() == ["SIGUSR1"]
    assert plugin.calls("ubus") == []


def test_check_wakes_through_procd(plugin: Plugin, fakes: dict[str, Fake]) -> None:
    d = fakes["procd"]
    d.take()
    plugin.pid(d.pid)
    out = plugin.run("call", "check", stdin="{ }", env={"UBUS_STUB_PID": str(d.pid)})
    assert out["result"] == "woken" and out["via"] == "procd"
    assert plugin.calls("ubus") == [
        f'call service signal {{"name":"wg-endpointd","signal":{int(signal.SIGUSR1)}}}']
    assert d.take() == ["SIGUSR1"]


def test_check_procd_child_without_ubus_gets_the_signal(plugin: Plugin,
                                                        fakes: dict[str, Fake]) -> None:
    d = fakes["procd"]
    d.take()
    plugin.pid(d.pid)
    assert plugin.run("call", "check", stdin="{ }", ubus=False)["via"] == "signal"
    assert d.take() == ["SIGUSR1"]


@pytest.mark.parametrize("who", ["status", "other", "substring"])
def test_check_never_signals_a_stranger(plugin: Plugin, fakes: dict[str, Fake], who: str) -> None:
    fakes[who].take()
    plugin.pid(fakes[who].pid)
    assert plugin.run("call", "check", stdin="{ }")["result"] == "not running"
    assert fakes[who].take() == []
    assert plugin.calls("init") == []


@pytest.mark.parametrize("args", ['{ "start": true }', '{"start":true}', '{ "start": 1 }'])
def test_check_starts_a_stopped_service_when_asked(plugin: Plugin, args: str) -> None:
    text = plugin.run_text("call", "check", stdin=args)
    assert json.loads(text)["result"] == "started"
    assert plugin.calls("init") == ["start"]
    assert "starting" not in text  # the init script's chatter stays out of the answer


@pytest.mark.parametrize("args", ["{ }", '{ "start": false }', '{ "start": 0 }',
                                  '{ "start": false, "x": true }', ""])
def test_check_does_not_start_unless_asked(plugin: Plugin, args: str) -> None:
    assert plugin.run("call", "check", stdin=args)["result"] == "not running"
    assert plugin.calls("init") == []


def test_check_start_does_not_restart_a_running_daemon(plugin: Plugin,
                                                       fakes: dict[str, Fake]) -> None:
    fakes["daemon"].take()
    plugin.pid(fakes["daemon"].pid)
    assert plugin.run("call", "check", stdin='{ "start": true }')["result"] == "woken"
    assert plugin.calls("init") == []
    assert fakes["daemon"].take() == ["SIGUSR1"]


def test_check_start_failures(plugin: Plugin) -> None:
    out = plugin.run("call", "check", stdin='{"start":true}', env={"INIT_STUB_RC": "1"})
    assert out["result"] == "failed" and out["error"]
    out = plugin.run("call", "check", stdin='{"start":true}', init=False)
    assert out["result"] == "failed" and out["error"]


def test_unknown_method_and_usage_answer_json(plugin: Plugin) -> None:
    assert "error" in plugin.run("call", "nope")
    assert "error" in plugin.run("help", stdin=None)


def test_shell_is_clean() -> None:
    files = [PLUGIN_PATH, APP / "root" / "etc" / "uci-defaults" / "80_luci-app-wg-endpointd",
             *sorted(STUBS.iterdir())]
    subprocess.run([tool("shellcheck"), "-s", "sh", *map(str, files)], check=True, timeout=60)
    assert os.access(PLUGIN_PATH, os.X_OK)  # rpcd only runs executable plugins


def test_busybox_path_has_no_foreign_tools(tmp_path: Path) -> None:
    # The plugin must get busybox's awk, not gawk or mawk.
    bindir = busybox_path(tmp_path, tool("busybox"))
    assert os.path.realpath(bindir / "awk") == os.path.realpath(tool("busybox"))
