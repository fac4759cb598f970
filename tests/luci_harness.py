"""Runs the rpcd exec plugin of luci-app-wg-endpointd the way rpcd does.

openwrt/rpcd plugin.c: `PLUGIN list` starts with /dev/null on stdin and its
stdout must hold one JSON object; `PLUGIN call METHOD` gets the arguments as
a JSON object on stdin (then end of file) and stdout must hold one JSON
object, or the ubus call fails. `run()` asserts exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "openwrt" / "luci" / "luci-app-wg-endpointd"
DATA = ROOT / "tests" / "data" / "luci"
STUBS = ROOT / "tests" / "luci" / "stubs"

# What the plugin may call besides shell builtins and the stubs.
APPLETS = ("awk", "tr", "date", "timeout", "cat")


PYTHON = os.path.realpath(sys.executable)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") == "1":
            pytest.fail(f"{name} is not installed (WG_ENDPOINTD_REQUIRE_LAB=1)")
        pytest.skip(f"{name} is not installed")
    return path


def busybox_path(base: Path, busybox: str) -> Path:
    """A directory of busybox applet links, and nothing else."""
    bindir = base / "bb"
    if not bindir.exists():
        bindir.mkdir()
        for applet in APPLETS:
            (bindir / applet).symlink_to(busybox)
    return bindir


class Plugin:
    def __init__(self, base: Path, busybox: str, path: Path) -> None:
        self.busybox, self.path, self.base = busybox, path, base
        self.run_dir = base / "run"
        self.run_dir.mkdir()
        self.bb = busybox_path(base, busybox)
        self.logs = {name: base / f"{name}.log" for name in ("ubus", "init")}

    def state(self, data: dict[str, Any]) -> None:
        (self.run_dir / "state.json").write_text(json.dumps(data, indent=1))

    def pid(self, pid: int) -> None:
        (self.run_dir / "wg-endpointd.pid").write_text(f"{pid}\n")

    def calls(self, name: str) -> list[str]:
        path = self.logs[name]
        lines = path.read_text().splitlines() if path.exists() else []
        path.unlink(missing_ok=True)
        return lines

    def _stubs(self, wg: bool, ubus: bool) -> Path:
        tag = f"stubs-{int(wg)}{int(ubus)}"
        stubdir = self.base / tag
        if not stubdir.exists():
            stubdir.mkdir()
            for name, wanted in (("wg", wg), ("ubus", ubus)):
                if wanted:
                    (stubdir / name).symlink_to(STUBS / name)
        return stubdir

    def run_text(self, *argv: str, stdin: str | None = "{ }", wg: bool = True,
                 ubus: bool = True, init: bool = True, env: dict[str, str] | None = None,
                 timeout: float = 30) -> str:
        full = {
            "PATH": f"{self._stubs(wg, ubus)}:{self.bb}",
            "WG_ENDPOINTD_RUN_DIR": str(self.run_dir),
            "WG_ENDPOINTD_INIT": str(STUBS / "init") if init else str(self.base / "no-init"),
            "WG_STUB_DUMP": str(DATA / "wg-show-all-dump.txt"),
            "UBUS_STUB_LOG": str(self.logs["ubus"]),
            "UBUS_STUB_PID": "0",
            "INIT_STUB_LOG": str(self.logs["init"]),
            **(env or {}),
        }
        result = subprocess.run(
            [self.busybox, "sh", str(self.path), *argv],
            input=stdin if stdin is not None else "",
            env=full, capture_output=True, text=True, timeout=timeout,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def run(self, *argv: str, **kw: Any) -> dict[str, Any]:
        text = self.run_text(*argv, **kw)
        out = json.loads(text)  # one JSON value, nothing else
        assert isinstance(out, dict), text
        return out


# A stand-in daemon: records SIGUSR1 (and the SIGUSR2 sentinel) in argv[-1]'s
# directory. Started as [python, <dir>/<name>, <argument>].
FAKE = """import signal, sys, time, os
rec = os.path.join(os.path.dirname(sys.argv[0]), "signals")
h = lambda s, f: open(rec, "a").write(signal.Signals(s).name + "\\n")
signal.signal(signal.SIGUSR1, h)
signal.signal(signal.SIGUSR2, h)
open(rec + ".ready", "w").close()
time.sleep(300)
"""
PARENT = "import subprocess,sys;p=subprocess.Popen(sys.argv[1:]);print(p.pid,flush=True);p.wait()"


def wait_for(pred, what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Fake:
    """A process with a chosen command line, optionally procd's child."""

    def __init__(self, where: Path, argv_tail: list[str], name: str = "wg-endpointd",
                 parent: str | None = None) -> None:
        where.mkdir(parents=True)
        script = where / name
        script.write_text(FAKE)
        self.record = where / "signals"
        argv = [PYTHON, str(script), *argv_tail]
        self.procs: list[subprocess.Popen[str]] = []
        if parent is None:
            self.procs.append(subprocess.Popen(argv, text=True))
            self.pid = self.procs[0].pid
        else:
            link = where / parent
            link.symlink_to(PYTHON)
            p = subprocess.Popen([str(link), "-c", PARENT, *argv], stdout=subprocess.PIPE,
                                 text=True)
            self.procs.append(p)
            assert p.stdout is not None
            self.pid = int(p.stdout.readline())
        wait_for(lambda: (where / "signals.ready").exists(), "the fake daemon")
        self.record.touch()

    def take(self) -> list[str]:
        """Signals received so far (SIGUSR2 is a sentinel: lower numbers arrive first)."""
        os.kill(self.pid, signal.SIGUSR2)
        wait_for(lambda: "SIGUSR2" in self.record.read_text(), "the sentinel")
        got = [s for s in self.record.read_text().split() if s != "SIGUSR2"]
        self.record.write_text("")
        return got

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in self.procs:
            p.wait(timeout=10)
