"""The names the daemon's log lines reach logd under, as procd gives them.

procd relays an instance's stdout and stderr to logd line by line, tagged with
the file name of the `command` param's first word and the pid it started
(openwrt/procd service/instance.c, instance_stdio); tests/shell/procd_instance.py
stands in for it and names lines the same way. These tests take the command the
init script hands procd (recorded by tests/shell/init_harness.sh), run it
through the stand-in with busybox as /bin/sh, and check that:

- the daemon's lines reach logd as wg-endpointd[PID], PID being the daemon's own,
  info at daemon.info and warnings at daemon.err, while the init script's old
  `/bin/sh -c '...; exec "$0" run'` command fails the same check (sh[PID]);
- an early SIGHUP or SIGUSR1 does not kill the daemon started that way;
- the init script (tests/shell/logger stands in for busybox logger), the
  hotplug script and the daemon tell one failover story under the one tag.

Without busybox the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import pkgfiles

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "files"
INIT = FILES / "etc" / "init.d" / "wg-endpointd"
HOTPLUG = FILES / "etc" / "hotplug.d" / "iface" / "20-wg-endpointd"
WRAPPER_PATH = "/usr/libexec/wg-endpointd/wg-endpointd"  # on the router
STUBS = ROOT / "tests" / "shell"
INIT_HARNESS = STUBS / "init_harness.sh"
STANDIN = STUBS / "procd_instance.py"
LOGGER_STUB = STUBS / "logger"
PYTHON = os.path.realpath(sys.executable)
REQUIRE_LAB = os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") == "1"

# The init script's command until issue 16: procd tagged every line sh[PID].
OLD_COMMAND = ["/bin/sh", "-c", 'trap "" HUP USR1; exec "$0" run', "PROG"]

NETWORK = "config interface 'wg0'\n\toption proto 'wireguard'\n"
# A typo the daemon warns about (on stderr) and runs anyway.
OWN_WARNS = "config globals 'globals'\n\toption chek_interval '5'\n"
# A value the daemon's check refuses, so the init script does not start it.
OWN_REFUSED = "config globals 'globals'\n\toption family 'ipv5'\n"

# Stand-in for /usr/bin/wg-endpointd: answers `config --check`; `run` says its
# pid on stdout and on stderr, sleeps FAKE_SLOW_START seconds (Python's imports
# on a router) before it installs its handlers and writes its pid file, as the
# daemon does, then reports each signal on stdout until SIGTERM.
FAKE_DAEMON = '''#!{python}
import os, signal, sys, time
args = sys.argv[1:]
if args[:2] == ["config", "--check"]:
    print("enabled")
    sys.exit(0)
if args[:1] != ["run"]:
    sys.exit(2)
pid = os.getpid()
print(f"INFO: started, pid {{pid}}", flush=True)
print(f"WARNING: a warning, pid {{pid}}", file=sys.stderr, flush=True)
time.sleep(float(os.environ.get("FAKE_SLOW_START", "0")))
got = []
for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM):
    signal.signal(signum, lambda n, _f: got.append(n))
pidfile = os.path.join(os.environ["WG_ENDPOINTD_RUN_DIR"], "wg-endpointd.pid")
with open(pidfile + ".tmp", "w") as f:
    f.write(f"{{pid}}\\n")
os.replace(pidfile + ".tmp", pidfile)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    while got:
        signum = got.pop(0)
        if signum == signal.SIGTERM:
            os.unlink(pidfile)
            print("INFO: stopped", flush=True)
            sys.exit(0)
        print(f"INFO: got {{signal.Signals(signum).name}}", flush=True)
    time.sleep(0.01)
sys.exit(3)
'''

# The real daemon from this checkout, reading UCI from {config}.
REAL_DAEMON = '''#!/bin/sh
PYTHONPATH={src} exec {python} -m wg_endpointd "$@" --config-dir {config}
'''

LINE = re.compile(r"^(?P<priority>\w+\.\w+) (?P<tag>[^:]+): (?P<text>.*)$")


@dataclass(frozen=True, slots=True)
class Line:
    """One syslog line as logread shows it, without the time."""

    priority: str  # facility.level
    tag: str  # ident: wg-endpointd, wg-endpointd[1234], sh[1234]
    text: str

    @property
    def program(self) -> str:
        """The tag without its [pid]: what a syslog filter on the program name sees."""
        return self.tag.split("[", 1)[0]


def read_syslog(path: Path) -> list[Line]:
    try:
        raw = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    lines = []
    for entry in raw:
        match = LINE.match(entry)
        assert match is not None, entry
        lines.append(Line(**match.groupdict()))
    return lines


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ignores_hup_and_usr1(pid: int) -> bool:
    """True once SIGHUP and SIGUSR1 are ignored in pid (SigIgn in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigIgn:"))
    except (FileNotFoundError, StopIteration):
        return False
    want = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGUSR1 - 1))
    return mask & want == want


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0")[:-1]]
    except FileNotFoundError:
        return []


@pytest.fixture(scope="module")
def busybox() -> str:
    path = shutil.which("busybox")
    if path is None:
        if REQUIRE_LAB:
            pytest.fail("busybox is not installed (WG_ENDPOINTD_REQUIRE_LAB=1)")
        pytest.skip("busybox is not installed")
    return path


class Router:
    """A router's files for the stand-in's --root (/bin/sh is busybox, the start
    wrapper is this checkout's), a config and run directory, and the daemon's
    program (the fake or the real one) that the init script is told to run."""

    def __init__(self, base: Path, busybox: str, daemon: str) -> None:
        self.base, self.busybox = base, busybox
        self.root = base / "root"
        (self.root / "bin").mkdir(parents=True)
        (self.root / "bin" / "sh").symlink_to(busybox)
        wrapper = self.root / WRAPPER_PATH.lstrip("/")
        wrapper.parent.mkdir(parents=True)
        wrapper.symlink_to(FILES / WRAPPER_PATH.lstrip("/"))
        self.config = base / "config"
        self.config.mkdir()
        (self.config / "network").write_text(NETWORK)
        self.run_dir = base / "run"
        self.run_dir.mkdir()
        self.syslog = base / "syslog"
        self.bin = base / "bin"  # the hotplug's PATH: logger only
        self.bin.mkdir()
        (self.bin / "logger").symlink_to(LOGGER_STUB)
        self.prog = base / "prog" / "wg-endpointd"
        self.prog.parent.mkdir()
        text = FAKE_DAEMON if daemon == "fake" else REAL_DAEMON
        self.prog.write_text(text.format(python=PYTHON, src=ROOT / "src", config=self.config))
        self.prog.chmod(0o755)

    def own_config(self, text: str) -> None:
        (self.config / "wg-endpointd").write_text(text)

    def init(self, function: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
        """Run an init script function; return the result and the recorded stub calls."""
        calls = self.base / "calls.log"
        calls.unlink(missing_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STUB_LOG": str(calls),
               "HARNESS_PROG": str(self.prog), "STUB_SYSLOG": str(self.syslog)}
        result = subprocess.run(
            [self.busybox, "sh", str(INIT_HARNESS), str(INIT), str(self.run_dir), function],
            env=env, capture_output=True, text=True, timeout=60)
        recorded = calls.read_text().splitlines() if calls.exists() else []
        return result, [line.split("\t") for line in recorded]

    def procd_instance(self) -> tuple[list[str], dict[str, list[str]]]:
        """Run `start`; return the command procd would get and the other params."""
        result, calls = self.init("start_service")
        assert result.returncode == 0, result.stderr
        command: list[str] = []
        params: dict[str, list[str]] = {}
        for call in calls:
            if call[:2] == ["procd_set_param", "command"]:
                command = call[2:]
            elif call[:2] == ["procd_append_param", "command"]:
                command += call[2:]
            elif call[0] == "procd_set_param":
                params[call[1]] = call[2:]
        assert command, calls
        return command, params

    def old_command(self) -> list[str]:
        return [str(self.prog) if word == "PROG" else word for word in OLD_COMMAND]

    def daemon_pid(self) -> int | None:
        """The pid in the run directory's pid file: the daemon writes its own once ready."""
        try:
            return int((self.run_dir / "wg-endpointd.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def hotplug(self, action: str, interface: str) -> None:
        """Run the hotplug script as hotplug-call does, the daemon woken by kill."""
        env = {"ACTION": action, "INTERFACE": interface, "PATH": str(self.bin),
               "WG_ENDPOINTD_RUN_DIR": str(self.run_dir), "STUB_SYSLOG": str(self.syslog),
               "WG_ENDPOINTD_PROCD_SH": str(self.base / "no-procd.sh")}
        result = subprocess.run(
            [self.busybox, "sh", "-c", '( [ -f "$0" ] && . "$0" )', str(HOTPLUG)],
            env=env, capture_output=True, text=True, timeout=10)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    def lines(self) -> list[Line]:
        return read_syslog(self.syslog)


class Instance:
    """The command run by the procd stand-in, its lines going to the router's syslog."""

    def __init__(self, router: Router, command: list[str], params: dict[str, list[str]],
                 env: dict[str, str] | None = None) -> None:
        self.router = router
        pidfile = router.base / "instance.pid"
        pidfile.unlink(missing_ok=True)
        argv = [PYTHON, str(STANDIN), "--syslog", str(router.syslog), "--root", str(router.root),
                "--pidfile", str(pidfile)]
        if "facility" in params:
            argv += ["--facility", params["facility"][0]]
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "WG_ENDPOINTD_RUN_DIR": str(router.run_dir), **(env or {})}
        self.proc = subprocess.Popen([*argv, "--", *command], env=full_env)

        def started() -> bool:
            if self.proc.poll() is not None and not pidfile.exists():
                raise AssertionError(f"the stand-in failed ({self.proc.returncode})")
            return pidfile.exists()

        try:
            wait_for(started, "the stand-in to start the instance")
        except AssertionError:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        self.pid = int(pidfile.read_text())

    def wait_line(self, text: str, timeout: float = 15.0) -> None:
        wait_for(lambda: any(ln.text == text for ln in self.router.lines()), repr(text), timeout)

    def stop(self) -> int:
        """procd's instance_stop: SIGTERM (the stand-in passes it on), bounded waits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise


@pytest.fixture
def fake_router(tmp_path: Path, busybox: str) -> Router:
    return Router(tmp_path, busybox, "fake")


@pytest.fixture
def real_router(tmp_path: Path, busybox: str) -> Router:
    router = Router(tmp_path, busybox, "real")
    router.own_config(OWN_WARNS)
    return router


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    """Instances started by a test; each is stopped at the end."""
    started: list[Instance] = []
    yield started
    for inst in started:
        inst.stop()


def assert_tagged_as_the_daemon(lines: list[Line], pid: int) -> None:
    """The fake's two lines: tag wg-endpointd[pid] with pid the daemon's own, stdout
    at daemon.info, stderr at daemon.err."""
    assert sorted((ln.priority, ln.tag, ln.text) for ln in lines) == [
        ("daemon.err", f"wg-endpointd[{pid}]", f"WARNING: a warning, pid {pid}"),
        ("daemon.info", f"wg-endpointd[{pid}]", f"INFO: started, pid {pid}"),
    ]


# --- the stand-in itself ------------------------------------------------------


def test_standin_names_lines_as_instance_stdio(tmp_path: Path) -> None:
    syslog, pidfile = tmp_path / "syslog", tmp_path / "pid"
    script = 'echo "out $$"; echo "err $$" >&2; echo; printf "no newline"'
    result = subprocess.run(
        [PYTHON, str(STANDIN), "--syslog", str(syslog), "--pidfile", str(pidfile),
         "--facility", "local3", "--", "/bin/sh", "-c", script],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    pid = int(pidfile.read_text())
    # basename(argv[0])[pid]; info and err in the facility asked for; the
    # empty line relayed, the unterminated rest not.
    assert sorted(read_syslog(syslog), key=lambda ln: ln.text) == [
        Line("local3.info", f"sh[{pid}]", ""),
        Line("local3.err", f"sh[{pid}]", f"err {pid}"),
        Line("local3.info", f"sh[{pid}]", f"out {pid}"),
    ]


def test_standin_reports_a_death_by_signal(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, str(STANDIN), "--syslog", str(tmp_path / "syslog"), "--",
         "/bin/sh", "-c", "kill -HUP $$"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 128 + signal.SIGHUP


# --- the tag ------------------------------------------------------------------


def test_init_gives_procd_the_wrapper_with_stdio_to_logd(fake_router: Router) -> None:
    command, params = fake_router.procd_instance()
    assert command == [WRAPPER_PATH, str(fake_router.prog), "run"]
    assert os.path.basename(command[0]) == "wg-endpointd"
    assert params["stdout"] == ["1"] and params["stderr"] == ["1"]
    assert "facility" not in params  # daemon, procd's default


@pytest.mark.parametrize("which", ["init script", "old sh -c command"])
def test_daemon_lines_reach_logd_under_its_name(
        fake_router: Router, instances: list[Instance], which: str) -> None:
    command, params = fake_router.procd_instance()
    if which == "old sh -c command":
        command = fake_router.old_command()
    inst = Instance(fake_router, command, params)
    instances.append(inst)
    wait_for(lambda: len(fake_router.lines()) == 2, "the fake daemon's two lines")
    lines = fake_router.lines()
    if which == "init script":
        assert_tagged_as_the_daemon(lines, inst.pid)
    else:
        # What a router showed until issue 16: the same lines, all as sh[PID],
        # so `logread -e wg-endpointd` and any filter on the program name miss them.
        with pytest.raises(AssertionError):
            assert_tagged_as_the_daemon(lines, inst.pid)
        assert {ln.tag for ln in lines} == {f"sh[{inst.pid}]"}
    assert inst.stop() == 0


def test_real_daemon_lines_under_its_name_and_pid(
        real_router: Router, instances: list[Instance]) -> None:
    command, params = real_router.procd_instance()
    inst = Instance(real_router, command, params)
    instances.append(inst)
    inst.wait_line("INFO: started: 0 managed peer(s) on wg0")
    assert real_router.daemon_pid() == inst.pid  # os.getpid() in the daemon
    os.kill(inst.pid, signal.SIGHUP)  # procd's reload_signal
    inst.wait_line("INFO: configuration reloaded: 0 managed peer(s)")
    assert inst.stop() == 0
    lines = real_router.lines()
    assert {ln.tag for ln in lines} == {f"wg-endpointd[{inst.pid}]"}
    assert [ln.text for ln in lines if ln.priority == "daemon.info"] == [
        "INFO: started: 0 managed peer(s) on wg0",
        "INFO: configuration reloaded: 0 managed peer(s)",
        "INFO: stopped",
    ]
    warnings = [ln.text for ln in lines if ln.priority == "daemon.err"]
    assert warnings and all(t.startswith("WARNING: ") and "chek_interval" in t
                            for t in warnings)


# --- early signals ------------------------------------------------------------


@pytest.mark.parametrize(("which", "survives"), [
    ("init script", True),
    ("old sh -c command", True),
    ("no wrapper", False),  # why the wrapper is there
])
def test_early_hup_and_usr1_do_not_kill_the_daemon(
        fake_router: Router, instances: list[Instance], which: str, survives: bool) -> None:
    """Signals sent from the moment the command has set them to be ignored (with no
    wrapper: from the moment the daemon's program runs) until the daemon is ready."""
    command, params = fake_router.procd_instance()
    command = {"init script": command, "old sh -c command": fake_router.old_command(),
               "no wrapper": [str(fake_router.prog), "run"]}[which]
    inst = Instance(fake_router, command, params, env={"FAKE_SLOW_START": "0.5"})
    instances.append(inst)
    running_prog = [PYTHON, str(fake_router.prog), "run"]
    wait_for(lambda: ignores_hup_and_usr1(inst.pid) or cmdline(inst.pid) == running_prog,
             "the command to start")
    sent = 0
    deadline = time.monotonic() + 10
    while fake_router.daemon_pid() is None and alive(inst.pid) and time.monotonic() < deadline:
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            try:
                os.kill(inst.pid, signum)
            except ProcessLookupError:
                break
        sent += 1
        time.sleep(0.02)
    assert sent >= 1
    if not survives:
        assert inst.proc.wait(timeout=15) == 128 + signal.SIGHUP
        return
    assert fake_router.daemon_pid() == inst.pid and alive(inst.pid)
    assert sent >= 5, "the signals were not sent before the daemon was ready"
    # The early ones were dropped; the daemon's own handlers took over.
    os.kill(inst.pid, signal.SIGUSR1)
    inst.wait_line("INFO: got SIGUSR1")
    assert inst.stop() == 0
    got = [ln.text for ln in fake_router.lines() if "got" in ln.text]
    # the last loop's pair may land between the handlers and the pid file (the daemon's
    # own order too): handled then, as it should be; every earlier one was dropped
    assert got[-1] == "INFO: got SIGUSR1" and len(got) <= 3, got


def test_early_signals_spare_the_real_daemon(
        real_router: Router, instances: list[Instance]) -> None:
    command, params = real_router.procd_instance()
    inst = Instance(real_router, command, params)
    instances.append(inst)
    wait_for(lambda: ignores_hup_and_usr1(inst.pid), "the wrapper to ignore HUP and USR1")
    sent = 0
    deadline = time.monotonic() + 15
    while real_router.daemon_pid() is None and alive(inst.pid) and time.monotonic() < deadline:
        os.kill(inst.pid, signal.SIGHUP)
        os.kill(inst.pid, signal.SIGUSR1)
        sent += 1
        time.sleep(0.02)
    assert sent >= 1
    assert real_router.daemon_pid() == inst.pid and alive(inst.pid)
    inst.wait_line("INFO: started: 0 managed peer(s) on wg0")
    assert inst.stop() == 0


# --- one story under one tag --------------------------------------------------


def test_one_failover_story_under_one_tag(real_router: Router, instances: list[Instance]) -> None:
    """`logread -e wg-endpointd` after a refused start, a start, an uplink going down
    and a stop: the init script's, the hotplug script's and the daemon's lines."""
    real_router.own_config(OWN_REFUSED)
    result, _ = real_router.init("start_service")
    assert result.returncode == 1
    real_router.own_config(OWN_WARNS)  # the user fixes the value (and makes a typo)
    command, params = real_router.procd_instance()
    inst = Instance(real_router, command, params)
    instances.append(inst)
    inst.wait_line("INFO: started: 0 managed peer(s) on wg0")
    wait_for(real_router.daemon_pid, "the daemon's pid file")
    real_router.hotplug("ifdown", "wan")
    inst.wait_line("INFO: checking 0 peer(s): interface event")
    real_router.hotplug("iflink", "wan")  # not an event the daemon wants: no line
    assert inst.stop() == 0

    lines = real_router.lines()
    ours = [ln for ln in lines if ln.program == "wg-endpointd"]
    assert ours == lines  # nothing under another name
    assert [ln for ln in lines if re.search("wg-endpointd", f"{ln.tag}: {ln.text}")] == lines
    daemon = f"wg-endpointd[{inst.pid}]"
    story = [(ln.priority, ln.tag, ln.text) for ln in lines]
    refused = [s for s in story if s[1] == "wg-endpointd" and s[0] == "daemon.err"]
    assert len(refused) == 2
    assert "family: 'ipv5'" in refused[0][2]
    assert refused[1][2] == "configuration refused, not starting"
    milestones = [
        refused[1],
        ("daemon.info", daemon, "INFO: started: 0 managed peer(s) on wg0"),
        ("daemon.info", "wg-endpointd", "hotplug ifdown wan: waking the daemon"),
        ("daemon.info", daemon, "INFO: checking 0 peer(s): interface event"),
        ("daemon.info", daemon, "INFO: stopped"),
    ]
    positions = [story.index(m) for m in milestones]
    assert positions == sorted(positions), story
    warning = next(s for s in story if s[0] == "daemon.err" and s[1] == daemon)
    assert warning[2].startswith("WARNING: ") and "chek_interval" in warning[2]
    # the two refusal lines, the warning and the four other milestones: nothing else
    assert len(story) == 7, story


def test_the_command_procd_runs_is_in_the_package(fake_router: Router) -> None:
    # The init script names a file that the ipk/apk (and the SDK feed Makefile,
    # tests/test_pkg_version.py) install, executable.
    command, _ = fake_router.procd_instance()
    (wg,) = pkgfiles.packages(ROOT, specs=pkgfiles.SPECS[:1])
    entries = {e.path: e for e in wg.entries}
    wrapper = entries[command[0].lstrip("/")]
    assert wrapper.mode == 0o755
    assert wrapper.data == (FILES / WRAPPER_PATH.lstrip("/")).read_bytes()
