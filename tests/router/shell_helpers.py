"""What the tests of the router's shell scripts share: the scripts' paths, the
busybox and shellcheck fixtures, live stand-ins for the daemon, and a lab that
runs the iface hotplug script.

The scripts run under busybox sh, as on the router. The stand-in for the daemon
is a small Python process that records the signals it gets. procd is replaced by
tests/shell/procd.sh (a stub that records procd_send_signal) and a parent
process whose name is "procd"; logger by tests/shell/logger, which writes what
busybox logger would send to syslog into a file.

Without busybox or shellcheck the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1,
which turns a missing tool into a failure.

The test modules import the fixtures they use from here (busybox, shellcheck,
fakes, lab).
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
