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
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "openwrt" / "luci" / "luci-app-wg-endpointd"
DATA = ROOT / "tests" / "data" / "luci"
STUBS = ROOT / "tests" / "luci" / "stubs"

# What the plugin may call besides shell builtins and the stubs.
APPLETS = ("awk", "tr", "date", "timeout", "cat")


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
                 ubus: bool = True, init: bool = True, env: dict[str, str] | None = None) -> str:
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
            env=full, capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def run(self, *argv: str, **kw: Any) -> dict[str, Any]:
        text = self.run_text(*argv, **kw)
        out = json.loads(text)  # one JSON value, nothing else
        assert isinstance(out, dict), text
        return out
