"""The procd init script (files/etc/init.d/wg-endpointd) under busybox sh.

It runs inside tests/shell/init_harness.sh with procd and UCI stubbed; its
`config --check` is the real daemon's. tests/router/test_procd_logging.py runs
the command the init script gives procd and checks the names its lines reach
logd under. The stand-ins for the daemon are in tests/router/shell_helpers.py.

Without busybox the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1, which turns
a missing tool into a failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import option_cases
from tests.router import shell_helpers
from tests.router.shell_helpers import INIT, INIT_HARNESS, PYTHON, ROOT, WRAPPER, FakeDaemon

# Fixtures, bound here so that pytest finds them for this module.
busybox = shell_helpers.busybox
fakes = shell_helpers.fakes

INSTANCE = [
    ["procd_open_instance"],
    ["procd_set_param", "command", "/usr/libexec/wg-endpointd/wg-endpointd", "PROG", "run"],
    ["procd_set_param", "respawn", "3600", "5", "5"],
    ["procd_set_param", "stdout", "1"],
    ["procd_set_param", "stderr", "1"],
    ["procd_set_param", "file", "/etc/config/wg-endpointd"],
    ["procd_set_param", "reload_signal", "HUP"],
    ["procd_set_param", "term_timeout", "5"],
    ["procd_close_instance"],
]


class InitRun:
    def __init__(self, result: subprocess.CompletedProcess[str], log: Path, prog: str) -> None:
        self.returncode = result.returncode
        self.stderr = result.stderr
        self.calls = (
            [["PROG" if a == prog else a for a in line.split("\t")]
             for line in log.read_text().splitlines()] if log.exists() else []
        )

    def named(self, name: str) -> list[list[str]]:
        return [call for call in self.calls if call[0] == name]


@pytest.fixture
def init(tmp_path: Path, busybox: str):
    """Runs an init script function; its `config --check` is the real daemon's
    (Python, this checkout) on a config directory that the test writes."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "network").write_text(option_cases.NETWORK)
    prog = tmp_path / "wg-endpointd"
    prog.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {PYTHON} -m wg_endpointd '
                    f'"$@" --config-dir {config_dir}\n')
    prog.chmod(0o755)

    def call(function: str, *, own: str | None = None, env: dict[str, str] | None = None):
        if own is not None:
            (config_dir / "wg-endpointd").write_text(own)
        log = tmp_path / "calls.log"
        log.unlink(missing_ok=True)
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "STUB_LOG": str(log),
            "HARNESS_PROG": str(prog),
            **(env or {}),
        }
        result = subprocess.run(
            [busybox, "sh", str(INIT_HARNESS), str(INIT), str(run_dir), function],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return InitRun(result, log, str(prog))

    call.run_dir = run_dir  # type: ignore[attr-defined]
    return call


def test_init_header() -> None:
    head = INIT.read_text().splitlines()
    assert head[0] == "#!/bin/sh /etc/rc.common"
    for line in ("START=95", "STOP=10", "USE_PROCD=1"):
        assert line in head
    assert "PROG=/usr/bin/wg-endpointd" in head
    # procd tags the daemon's lines with this file's name (test_procd_logging.py)
    assert "WRAPPER=/usr/libexec/wg-endpointd/wg-endpointd" in head
    assert WRAPPER.stat().st_mode & 0o111


def test_init_logs_under_its_name(init, tmp_path: Path) -> None:
    # log_err goes through logger with the daemon's tag, so `logread -e wg-endpointd`
    # shows why a start was refused.
    syslog = tmp_path / "syslog"
    run = init("start_service", own="config globals 'globals'\n\toption family 'ipv5'\n",
               env={"STUB_SYSLOG": str(syslog)})
    assert run.returncode == 1
    lines = syslog.read_text().splitlines()
    assert len(lines) == 2 and lines == [
        "daemon.err wg-endpointd: " + call[-1] for call in run.named("logger")]
    assert lines[-1] == "daemon.err wg-endpointd: configuration refused, not starting"


def test_init_start_default(init) -> None:
    run = init("start_service")  # no wg-endpointd file: defaults
    assert run.returncode == 0, run.stderr
    assert run.calls == INSTANCE
    assert not any(call[1] == "pidfile" for call in run.named("procd_set_param"))


def test_init_start_yes_is_enabled(init) -> None:
    run = init("start_service", own="config globals 'globals'\n\toption enabled 'yes'\n")
    assert run.calls == INSTANCE


def test_init_start_disabled(init) -> None:
    run = init("start_service", own="config globals 'globals'\n\toption enabled '0'\n")
    assert run.returncode == 0
    assert run.calls == []


def test_init_start_invalid_says_which_option(init, tmp_path: Path) -> None:
    # The case: `uci set wg-endpointd.globals.check_interval=0; uci commit`.
    run = init("start_service", own="config globals 'globals'\n\toption check_interval '0'\n")
    assert run.returncode == 1
    assert run.named("procd_open_instance") == []
    reason = (f"error: {tmp_path}/config/wg-endpointd:2: globals.check_interval: "
              "'0' is not a number of seconds above 0 and at most 86400")
    assert run.stderr.splitlines() == [f"wg-endpointd: {reason}",
                                       "wg-endpointd: configuration refused, not starting"]
    assert run.named("logger") == [
        ["logger", "-t", "wg-endpointd", "-p", "daemon.err", reason],
        ["logger", "-t", "wg-endpointd", "-p", "daemon.err", "configuration refused, not starting"],
    ]


def test_init_start_unreadable_network(init, tmp_path: Path) -> None:
    (tmp_path / "config" / "network").write_text("config interface 'wg0'\n option proto 'x\n")
    run = init("start_service")
    assert run.returncode == 1 and run.named("procd_open_instance") == []
    assert "network:2: unterminated ' quote" in run.stderr


@pytest.mark.parametrize("option,value,accepted", option_cases.GLOBAL_CASES)
def test_init_accepts_what_the_daemon_accepts(init, option, value, accepted) -> None:
    # The same table runs through config.load in test_config.py.
    run = init("start_service", own=option_cases.own_file(option, value))
    if accepted:
        assert run.returncode == 0, run.stderr
        disabled = option == "enabled" and value in ("0", "no", "off", "false", "disabled")
        assert len(run.named("procd_open_instance")) == (0 if disabled else 1)
    else:
        assert run.returncode == 1
        assert run.named("procd_open_instance") == []
        assert option in run.stderr.splitlines()[0]


def test_init_respawn_overrides(init) -> None:
    run = init(
        "start_service",
        env={"respawn_threshold": "60", "respawn_timeout": "2", "respawn_retry": "0"},
    )
    assert ["procd_set_param", "respawn", "60", "2", "0"] in run.calls


def test_init_service_triggers(init) -> None:
    run = init("service_triggers")
    assert run.returncode == 0
    assert run.calls == [["procd_add_reload_trigger", "wg-endpointd", "network"]]


def test_init_reload_running_daemon_gets_hup(init, fakes: dict[str, FakeDaemon]) -> None:
    (init.run_dir / "wg-endpointd.pid").write_text(f"{fakes['daemon-procd'].pid}\n")
    run = init("reload_service")
    assert run.returncode == 0, run.stderr
    assert run.named("procd_send_signal") == [["procd_send_signal", "wg-endpointd", "*", "HUP"]]
    assert run.named("start") == []
    assert run.named("procd_open_instance") == []


def test_init_reload_not_running_starts(init) -> None:
    run = init("reload_service")
    assert run.returncode == 0, run.stderr
    assert run.named("procd_send_signal") == []
    assert run.named("start") == [["start"]]
    assert [c for c in run.calls if c[0].startswith("procd_")] == INSTANCE


def test_init_reload_stale_pid_starts(init, fakes: dict[str, FakeDaemon]) -> None:
    (init.run_dir / "wg-endpointd.pid").write_text(f"{fakes['stranger'].pid}\n")
    run = init("reload_service")
    assert run.named("procd_send_signal") == []
    assert run.named("start") == [["start"]]


def test_init_reload_with_a_fifo_pid_file_does_not_block(init) -> None:
    """Issue 18: a FIFO planted as the pid file must not hang `reload` (its `cat`)."""
    os.mkfifo(init.run_dir / "wg-endpointd.pid")
    run = init("reload_service")
    assert run.returncode == 0, run.stderr
    assert run.named("procd_send_signal") == []
    assert run.named("start") == [["start"]]


def test_init_reload_pid_of_a_stranger_starts(init, tmp_path: Path) -> None:
    fake = FakeDaemon(tmp_path / "less", "less")  # `less /etc/config/wg-endpointd`
    try:
        (init.run_dir / "wg-endpointd.pid").write_text(f"{fake.pid}\n")
        run = init("reload_service")
        assert run.named("procd_send_signal") == []
        assert run.named("start") == [["start"]]
    finally:
        fake.stop()


def test_init_reload_disabled_stops(init, fakes: dict[str, FakeDaemon]) -> None:
    # procd drops the instance when start_service no longer declares it.
    (init.run_dir / "wg-endpointd.pid").write_text(f"{fakes['daemon-procd'].pid}\n")
    run = init("reload_service", own="config globals\n\toption enabled 'off'\n")
    assert run.returncode == 0
    assert run.named("procd_send_signal") == []
    assert run.named("start") == [["start"]]
    assert run.named("procd_open_instance") == []


def test_init_reload_invalid_keeps_daemon(init, fakes: dict[str, FakeDaemon]) -> None:
    (init.run_dir / "wg-endpointd.pid").write_text(f"{fakes['daemon-procd'].pid}\n")
    run = init("reload_service", own="config globals\n\toption family 'ipv5'\n")
    assert run.returncode != 0
    assert "family: 'ipv5' is not one of auto, ipv6, ipv4" in run.stderr
    assert "configuration refused, daemon left as it is" in run.stderr
    assert run.named("procd_send_signal") == []
    assert run.named("start") == []


def test_init_service_stopped_cleans_run_dir(init) -> None:
    run_dir: Path = init.run_dir
    for name in ("wg-endpointd.pid", "hotplug.list", "state.json"):
        (run_dir / name).write_text("x\n")
    run = init("service_stopped")
    assert run.returncode == 0
    assert sorted(p.name for p in run_dir.iterdir()) == ["state.json"]
    assert init("service_stopped").returncode == 0  # nothing left to remove
