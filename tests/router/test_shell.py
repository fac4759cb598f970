"""Tests for the shell side: the iface hotplug script and the procd init script.

Both scripts run under busybox sh, as on the router. The hotplug script wakes
real processes: a small Python stand-in for the daemon records the signals it
gets. procd is replaced by tests/shell/procd.sh (a stub that records
procd_send_signal) and a parent process whose name is "procd"; logger by
tests/shell/logger, which writes what busybox logger would send to syslog into
a file; the init script runs inside tests/shell/init_harness.sh with procd and
UCI stubbed. tests/test_procd_logging.py runs the command the init script gives
procd and checks the names its lines reach logd under.

Without busybox or shellcheck the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1,
which turns a missing tool into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import option_cases

ROOT = Path(__file__).resolve().parents[2]
HOTPLUG = ROOT / "files" / "etc" / "hotplug.d" / "iface" / "20-wg-endpointd"
INIT = ROOT / "files" / "etc" / "init.d" / "wg-endpointd"
WRAPPER = ROOT / "files" / "usr" / "libexec" / "wg-endpointd" / "wg-endpointd"
STUBS = ROOT / "tests" / "shell"
PROCD_STUB = STUBS / "procd.sh"
INIT_HARNESS = STUBS / "init_harness.sh"
LOGGER_STUB = STUBS / "logger"

# The real interpreter, not a venv link whose path might name the project:
# the "not our process" cases rely on the stand-ins' command lines.
PYTHON = os.path.realpath(sys.executable)

# The stand-in's code: sys.argv[2] is the record file, sys.argv[3] the ready
# file, whichever command line (see FakeDaemon) makes it look like the daemon
# or not. SIGUSR2 is the tests' sentinel.
FAKE_DAEMON = (
    "import signal,sys,time;r=sys.argv[2];"
    "h=lambda s,f:open(r,'a').write(signal.Signals(s).name+'\\n');"
    "[signal.signal(x,h) for x in (signal.SIGUSR1,signal.SIGUSR2,signal.SIGHUP)];"
    "open(sys.argv[3],'w').close();time.sleep(300)"
)
# Runs argv[1:] as its child, prints the child's pid and waits for it.
PARENT = "import subprocess,sys;p=subprocess.Popen(sys.argv[1:]);print(p.pid,flush=True);p.wait()"

WAKE_ACTIONS = ["ifup", "ifdown", "ifupdate", "ifup-failed", "connected", "disconnected"]
IGNORED_ACTIONS = ["connecting", "disconnecting", "iflink", "free", ""]

REQUIRE_LAB = os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") == "1"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if REQUIRE_LAB:
            pytest.fail(f"{name} is not installed (WG_ENDPOINTD_REQUIRE_LAB=1)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="session")
def busybox() -> str:
    return _tool("busybox")


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return _tool("shellcheck")


def _wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class FakeDaemon:
    """A live process standing in for the daemon; records the signals it gets.

    With parent="procd" it runs as the child of a process named procd, as the
    real daemon does under procd.
    """

    def __init__(self, workdir: Path, tag: str, parent: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.record = workdir / "signals"
        ready = workdir / "ready"
        argv = self._argv(workdir, tag) + [str(self.record), str(ready)]
        self.parent: subprocess.Popen[str] | None = None
        self.proc: subprocess.Popen[str] | None = None
        if parent is None:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            self.proc = subprocess.Popen(argv, text=True, cwd=workdir, env=env)
            self.pid = self.proc.pid
        else:
            bindir = workdir / "parent-bin"
            bindir.mkdir(exist_ok=True)
            link = bindir / parent  # /proc/PID/comm is the executed file's name
            link.symlink_to(PYTHON)
            self.parent = subprocess.Popen(
                [str(link), "-c", PARENT, *argv], stdout=subprocess.PIPE, text=True
            )
            assert self.parent.stdout is not None
            self.pid = int(self.parent.stdout.readline())
        _wait_for(ready.exists, f"stand-in daemon {tag!r} to start")

    @staticmethod
    def _argv(workdir: Path, tag: str) -> list[str]:
        """The command line for TAG, up to the record and ready files:
        `wg-endpointd [CMD]` runs a script of that name as the launcher does
        (`python3 /usr/bin/wg-endpointd run`), `wg_endpointd` runs
        `python3 -m wg_endpointd run`, `less` a program named less, anything
        else `python3 -c CODE TAG`."""
        if tag.startswith("wg-endpointd"):
            script = workdir / "wg-endpointd"
            script.write_text(FAKE_DAEMON + "\n")
            return [PYTHON, str(script), *(tag.split()[1:] or ["run"])]
        if tag == "wg_endpointd":
            (workdir / "wg_endpointd").mkdir(exist_ok=True)
            (workdir / "wg_endpointd" / "__main__.py").write_text(FAKE_DAEMON + "\n")
            return [PYTHON, "-m", "wg_endpointd", "run"]  # found in cwd, first on sys.path
        if tag == "less":
            link = workdir / "less"
            link.symlink_to(PYTHON)
            return [str(link), "-c", FAKE_DAEMON, "/etc/config/wg-endpointd"]
        return [PYTHON, "-c", FAKE_DAEMON, tag]

    def take(self) -> list[str]:
        """Return the signals received since the last call, oldest first.

        A SIGUSR2 sentinel makes this exact without sleeping: kill() leaves a
        signal pending before it returns, the kernel delivers pending signals
        lowest number first, and SIGUSR1 and SIGHUP are below SIGUSR2, so once
        the sentinel is recorded, any earlier SIGUSR1 or SIGHUP is too.
        """
        os.kill(self.pid, signal.SIGUSR2)
        _wait_for(lambda: "SIGUSR2" in self._lines(), "the sentinel signal", 5.0)
        lines = self._lines()
        self.record.write_text("")
        return [line for line in lines if line != "SIGUSR2"]

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for proc in (self.proc, self.parent):
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _lines(self) -> list[str]:
        try:
            return self.record.read_text().splitlines()
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeDaemon]]:
    """Stand-ins shared by the module: the daemon and a stranger holding a
    reused pid, each either started by hand or as procd's child."""
    base = tmp_path_factory.mktemp("fakes")
    made: dict[str, FakeDaemon] = {}
    try:
        made["daemon"] = FakeDaemon(base / "d", "wg-endpointd")
        made["daemon-procd"] = FakeDaemon(base / "dp", "wg-endpointd", parent="procd")
        made["stranger"] = FakeDaemon(base / "s", "other-daemon")
        made["stranger-procd"] = FakeDaemon(base / "sp", "other-daemon", parent="procd")
        yield made
    finally:
        for fake in made.values():
            fake.stop()


def _take_lines(path: Path) -> list[str]:
    """The lines a stub wrote to `path` since the last look (the file is removed)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    path.unlink()
    return lines


class Lab:
    """A run directory, the procd stub's log, a syslog file and a PATH with or
    without ubus (logger is on both)."""

    def __init__(self, root: Path, busybox: str) -> None:
        self.busybox = busybox
        self.run_dir = root / "run"
        self.run_dir.mkdir()
        self.log = root / "procd.log"
        self.syslog = root / "syslog"
        self.ubus_bin = root / "ubus-bin"
        self.ubus_bin.mkdir()
        ubus = self.ubus_bin / "ubus"
        ubus.write_text("#!/bin/sh\nexit 0\n")
        ubus.chmod(0o755)
        self.empty_bin = root / "empty-bin"
        self.empty_bin.mkdir()
        for bindir in (self.ubus_bin, self.empty_bin):
            (bindir / "logger").symlink_to(LOGGER_STUB)

    def write_pid(self, pid: int | str | None) -> None:
        path = self.run_dir / "wg-endpointd.pid"
        if pid is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(f"{pid}\n")

    def write_list(self, text: str | None) -> None:
        path = self.run_dir / "hotplug.list"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)

    def hotplug(
        self,
        action: str,
        interface: str = "wan",
        *,
        procd: bool = False,
        ubus: bool | None = None,
        device: str | None = "eth1",
        timeout: float = 10,
    ) -> subprocess.CompletedProcess[str]:
        """Run the script the way mwan3track runs hotplug-call: env -i, then
        ACTION, INTERFACE and DEVICE only (plus the run dir and procd seam),
        sourced in a subshell as hotplug-call does."""
        env = {"ACTION": action, "INTERFACE": interface}
        if device is not None:
            env["DEVICE"] = device
        env["WG_ENDPOINTD_RUN_DIR"] = str(self.run_dir)
        env["WG_ENDPOINTD_PROCD_SH"] = str(PROCD_STUB if procd else self.run_dir / "no-procd.sh")
        env["WG_ENDPOINTD_TEST_LOG"] = str(self.log)
        env["STUB_SYSLOG"] = str(self.syslog)
        with_ubus = procd if ubus is None else ubus
        env["PATH"] = str(self.ubus_bin if with_ubus else self.empty_bin)
        return subprocess.run(
            [self.busybox, "sh", "-c", '( [ -f "$0" ] && . "$0" )', str(HOTPLUG)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def procd_calls(self) -> list[str]:
        return _take_lines(self.log)

    def logged(self) -> list[str]:
        """The lines sent to syslog since the last call, as logread shows them."""
        return _take_lines(self.syslog)


@pytest.fixture
def lab(tmp_path: Path, busybox: str) -> Lab:
    return Lab(tmp_path, busybox)


def _quiet(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""


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


# --- init script ---------------------------------------------------------------

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


# --- static checks -------------------------------------------------------------


@pytest.mark.parametrize("script", [HOTPLUG, INIT, WRAPPER, PROCD_STUB, INIT_HARNESS, LOGGER_STUB],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(shellcheck: str, script: Path) -> None:
    result = subprocess.run(
        [shellcheck, "-s", "sh", str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [HOTPLUG, INIT, WRAPPER], ids=lambda p: str(p.relative_to(ROOT)))
def test_busybox_parses(busybox: str, script: Path) -> None:
    result = subprocess.run(
        [busybox, "sh", "-n", str(script)], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr


def test_shellcheck_disables_give_reasons() -> None:
    for script in (HOTPLUG, INIT, WRAPPER, LOGGER_STUB):
        for line in script.read_text().splitlines():
            if "shellcheck disable=" in line:
                assert line.split("disable=", 1)[1].split(" ", 1)[1].startswith("# "), line


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
