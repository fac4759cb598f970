"""The iface hotplug script (files/etc/hotplug.d/iface/20-wg-endpointd) under busybox sh.

It wakes real processes: a small Python stand-in for the daemon records the
signals it gets. procd is replaced by tests/shell/procd.sh (a stub that records
procd_send_signal) and a parent process whose name is "procd"; logger by
tests/shell/logger, which writes what busybox logger would send to syslog into
a file. The stand-ins and the lab are in tests/router/shell_helpers.py.

Without busybox the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1, which turns
a missing tool into a failure.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.router import shell_helpers
from tests.router.shell_helpers import HOTPLUG, FakeDaemon, Lab, _quiet

# Fixtures, bound here so that pytest finds them for this module.
busybox = shell_helpers.busybox
fakes = shell_helpers.fakes
lab = shell_helpers.lab

WAKE_ACTIONS = ["ifup", "ifdown", "ifupdate", "ifup-failed", "connected", "disconnected"]
IGNORED_ACTIONS = ["connecting", "disconnecting", "iflink", "free", ""]


# --- hotplug: every ACTION x daemon state x wake path --------------------------


@pytest.mark.parametrize("via", ["kill", "procd"])
@pytest.mark.parametrize("state", ["running", "not-running", "stale-pid"])
@pytest.mark.parametrize("action", WAKE_ACTIONS + IGNORED_ACTIONS)
def test_hotplug_matrix(
    lab: Lab, fakes: dict[str, FakeDaemon], action: str, state: str, via: str
) -> None:
    procd = via == "procd"
    daemon = fakes["daemon-procd" if procd else "daemon"]
    stranger = fakes["stranger-procd" if procd else "stranger"]
    lab.write_pid({"running": daemon.pid, "not-running": None, "stale-pid": stranger.pid}[state])
    # DEVICE comes with ifup/ifupdate (netifd) and connected/disconnected (mwan3)
    device = "eth1" if action in ("ifup", "ifupdate", "connected", "disconnected") else None

    _quiet(lab.hotplug(action, procd=procd, device=device))

    woken = action in WAKE_ACTIONS and state == "running"
    # One line, under the tag the init script and the daemon use, for a wake-up only.
    assert lab.logged() == (
        [f"daemon.info wg-endpointd: hotplug {action} wan: waking the daemon"] if woken else [])
    if procd:
        expected = [
            "sourced initscript=/etc/init.d/wg-endpointd",
            "procd_send_signal wg-endpointd * USR1",
        ]
        assert lab.procd_calls() == (expected if woken else [])
        assert daemon.take() == []
    else:
        assert lab.procd_calls() == []
        assert daemon.take() == (["SIGUSR1"] if woken else [])
    assert stranger.take() == []
    assert stranger.alive()


def test_hotplug_ignores_empty_interface(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    lab.write_pid(fakes["daemon"].pid)
    _quiet(lab.hotplug("ifup", interface=""))
    assert fakes["daemon"].take() == []


def test_hotplug_without_action_variables(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    lab.write_pid(fakes["daemon"].pid)
    result = subprocess.run(
        [lab.busybox, "sh", "-c", '. "$0"', str(HOTPLUG)],
        env={"WG_ENDPOINTD_RUN_DIR": str(lab.run_dir)},
        capture_output=True,
        text=True,
        timeout=10,
    )
    _quiet(result)
    assert fakes["daemon"].take() == []


@pytest.mark.parametrize(
    ("listing", "interface", "woken"),
    [
        (None, "wan", True),  # no list: any interface
        ("*\n", "wan", True),
        ("*\n", "lte0", True),
        ("wan\nwwan\n", "wwan", True),
        ("wan\nwwan\n", "lan", False),
        ("wg0", "wg0", True),  # no final newline
        ("  wan  \n", "wan", True),  # stray blanks
        ("", "wan", False),  # the daemon cares about nothing
        ("wan\n", "wan6", False),  # names match whole
        ("wa?\n", "wan", False),  # and literally
        ("wan\n", "w*", False),
    ],
)
def test_hotplug_interface_list(
    lab: Lab, fakes: dict[str, FakeDaemon], listing: str | None, interface: str, woken: bool
) -> None:
    lab.write_pid(fakes["daemon"].pid)
    lab.write_list(listing)
    _quiet(lab.hotplug("ifup", interface))
    assert fakes["daemon"].take() == (["SIGUSR1"] if woken else [])
    assert len(lab.logged()) == (1 if woken else 0)


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
@pytest.mark.parametrize("name", ["hotplug.list", "wg-endpointd.pid"])
def test_hotplug_reads_regular_files_only_and_never_blocks(
    lab: Lab, fakes: dict[str, FakeDaemon], tmp_path: Path, name: str, kind: str
) -> None:
    # Opening a FIFO blocks until a writer comes, and hotplug-call runs one
    # script at a time: every later script would wait. A link is refused too.
    lab.write_pid(fakes["daemon"].pid)
    lab.write_list("*\n")
    path = lab.run_dir / name
    real = tmp_path / f"real-{name}"  # what the link points at: would wake
    real.write_bytes(path.read_bytes())
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(real)
    try:
        _quiet(lab.hotplug("ifup", timeout=3))
    finally:
        if kind == "fifo":  # let a reader that did block go
            os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))
    assert fakes["daemon"].take() == []
    assert lab.logged() == []


@pytest.mark.parametrize("content", ["", "abc", "12 34", "-1", "0x10"])
def test_hotplug_garbage_pid_file(lab: Lab, fakes: dict[str, FakeDaemon], content: str) -> None:
    (lab.run_dir / "wg-endpointd.pid").write_text(content)
    _quiet(lab.hotplug("ifup"))
    assert fakes["daemon"].take() == []


def test_hotplug_pid_file_without_newline(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    (lab.run_dir / "wg-endpointd.pid").write_text(str(fakes["daemon"].pid))
    _quiet(lab.hotplug("ifupdate"))
    assert fakes["daemon"].take() == ["SIGUSR1"]


def test_hotplug_dead_pid(lab: Lab) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    lab.write_pid(gone.pid)
    _quiet(lab.hotplug("ifup", procd=True))
    assert lab.procd_calls() == []
    assert lab.logged() == []


def test_hotplug_stale_pid_of_unsuspecting_process(lab: Lab) -> None:
    # SIGUSR1 kills sleep: it must survive.
    victim = subprocess.Popen(["sleep", "60"])
    try:
        lab.write_pid(victim.pid)
        _quiet(lab.hotplug("ifdown"))
        time.sleep(0.05)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("tag", ["less", "wg-endpointd status", "/usr/bin/wg-endpointd"])
def test_hotplug_spares_a_stranger_under_a_reused_pid(lab: Lab, tmp_path: Path, tag: str) -> None:
    # `less /etc/config/wg-endpointd`, `wg-endpointd status` and
    # `python3 -c CODE /usr/bin/wg-endpointd` name the daemon, but none of them is it.
    fake = FakeDaemon(tmp_path / "x", tag)
    try:
        lab.write_pid(fake.pid)
        _quiet(lab.hotplug("ifup"))
        _quiet(lab.hotplug("ifdown", procd=True))
        assert fake.take() == []
        assert lab.procd_calls() == []
        assert lab.logged() == []
    finally:
        fake.stop()


def test_hotplug_module_style_command_line(lab: Lab, tmp_path: Path) -> None:
    # `python -m wg_endpointd run` names the package, not the command.
    fake = FakeDaemon(tmp_path / "m", "wg_endpointd")
    try:
        lab.write_pid(fake.pid)
        _quiet(lab.hotplug("connected", interface="wwan"))
        assert fake.take() == ["SIGUSR1"]
        assert lab.logged() == [
            "daemon.info wg-endpointd: hotplug connected wwan: waking the daemon"]
    finally:
        fake.stop()


def test_hotplug_daemon_run_by_hand_next_to_procd(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    # procd.sh and ubus exist, but the daemon is not procd's child: procd
    # knows no instance to signal, so the pid gets it.
    lab.write_pid(fakes["daemon"].pid)
    _quiet(lab.hotplug("ifup", procd=True))
    assert lab.procd_calls() == []
    assert fakes["daemon"].take() == ["SIGUSR1"]


def test_hotplug_procd_without_ubus(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    daemon = fakes["daemon-procd"]
    lab.write_pid(daemon.pid)
    _quiet(lab.hotplug("ifup", procd=True, ubus=False))
    assert lab.procd_calls() == []
    assert daemon.take() == ["SIGUSR1"]


def test_hotplug_procd_sh_missing(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    daemon = fakes["daemon-procd"]
    lab.write_pid(daemon.pid)
    _quiet(lab.hotplug("ifup", procd=False, ubus=True))
    assert lab.procd_calls() == []
    assert daemon.take() == ["SIGUSR1"]


def test_hotplug_lets_later_scripts_run(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    # hotplug-call: for script in $(ls /etc/hotplug.d/iface/*); do ( . $script ); done
    marker = lab.run_dir / "later-ran"
    later = lab.run_dir / "95-later"
    later.write_text(f'echo "$ACTION" > "{marker}"\n')
    lab.write_pid(fakes["daemon"].pid)
    loop = 'for script in "$@"; do ( [ -f "$script" ] && . "$script" ); done'
    for action in ("ifup", "iflink"):
        result = subprocess.run(
            [lab.busybox, "sh", "-c", loop, "hotplug-call", str(HOTPLUG), str(later)],
            env={"ACTION": action, "INTERFACE": "wan", "WG_ENDPOINTD_RUN_DIR": str(lab.run_dir),
                 "PATH": str(lab.empty_bin), "STUB_SYSLOG": str(lab.syslog)},
            capture_output=True,
            text=True,
            timeout=10,
        )
        _quiet(result)
        assert marker.read_text() == f"{action}\n"
    assert fakes["daemon"].take() == ["SIGUSR1"]
    assert lab.logged() == ["daemon.info wg-endpointd: hotplug ifup wan: waking the daemon"]


def test_hotplug_returns_quickly(lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    # Only that it completes; bench/hotplug_bench.py measures it.
    lab.write_pid(fakes["daemon"].pid)
    start = time.monotonic()
    _quiet(lab.hotplug("ifup"))
    assert time.monotonic() - start < 5
    assert fakes["daemon"].take() == ["SIGUSR1"]


def test_hotplug_log_line_cannot_be_forged_by_an_interface_name(
        lab: Lab, fakes: dict[str, FakeDaemon]) -> None:
    """The hotplug list is `*` (every interface wakes the daemon): a name with a newline
    or other odd bytes must not put a line of its own into the log."""
    lab.write_pid(fakes["daemon"].pid)
    (lab.run_dir / "hotplug.list").write_text("*\n")
    _quiet(lab.hotplug("ifup", interface="wan\ndaemon.err wg-endpointd: forged"))
    assert fakes["daemon"].take() == ["SIGUSR1"]
    assert lab.logged() == [
        "daemon.info wg-endpointd: hotplug ifup (an interface with an unusual name): "
        "waking the daemon"]
