"""Shared by the Linux-host lab tests (tests/e2e/test_linux_host.py) and their benchmarks
(bench/linux_host.py): the daemon on a wg-quick tunnel (tests/lab/wgquick.py), its
settings file, and what WireGuard shows of the tunnel's one peer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.helpers import SRC, stop, wait_for
from tests.lab import Lab, QuickTunnel

# `run` with the rtnetlink listener off (the idle baseline): runtime/netwatch.py's
# `wanted` decides, and cmd_run imports it at call time.
WITHOUT_NETLINK = """
import sys
from wg_endpointd.runtime import netwatch
netwatch.wanted = lambda args: False
from wg_endpointd.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_settings(path: Path, **globals_: object) -> Path:
    """A TOML settings file with these [globals] (numbers, booleans, strings)."""
    lines = ["[globals]"]
    for key, value in globals_.items():
        text = (str(value).lower() if isinstance(value, bool)
                else json.dumps(value) if isinstance(value, str) else str(value))
        lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def dump(lab: Lab, tunnel: QuickTunnel) -> list[str]:
    """The peer's line of `wg show IF dump`: key, psk, endpoint, allowed IPs, latest
    handshake, rx, tx, keepalive."""
    lines = lab.router(["wg", "show", tunnel.name, "dump"]).stdout.splitlines()
    return lines[1].split("\t")


def on_endpoint(lab: Lab, tunnel: QuickTunnel, wanted: str) -> bool:
    """The peer sits on `wanted` and has a handshake there: a switch resets the peer (its
    handshake time goes to 0), so a handshake now came over `wanted`."""
    fields = dump(lab, tunnel)
    return fields[2] == wanted and int(fields[4]) > 0


def set_endpoint(lab: Lab, tunnel: QuickTunnel, endpoint: str) -> None:
    lab.router(["wg", "set", tunnel.name, "peer", tunnel.server.public, "endpoint", endpoint])


def state(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "state.json").read_text())
    return data


def phases(run_dir: Path) -> list[str]:
    try:
        return [p["phase"] for p in state(run_dir)["peers"]]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


def healthy(run_dir: Path) -> bool:
    found = phases(run_dir)
    return bool(found) and all(p == "healthy" for p in found)


@contextmanager
def quick_daemon(lab: Lab, tunnel: QuickTunnel, run_dir: Path, log_path: Path,
                 settings: Path | None = None, netlink: bool = True,
                 extra: Sequence[str] = ()) -> Iterator[subprocess.Popen[str]]:
    """`wg-endpointd run --wireguard-dir DIR [--settings FILE]` in the router namespace
    (netlink False: with the rtnetlink listener off) until its state file exists; always
    stopped afterwards (SIGTERM, then SIGKILL)."""
    env = dict(os.environ, PYTHONPATH=SRC, WG_ENDPOINTD_RUN_DIR=str(run_dir))
    argv = ["run", "--wireguard-dir", tunnel.conf_dir, *extra]
    if settings is not None:
        argv += ["--settings", str(settings)]
    python = [sys.executable, "-m", "wg_endpointd"] if netlink else [
        sys.executable, "-c", WITHOUT_NETLINK]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["ip", "netns", "exec", tunnel.ns, *python, *argv],
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, text=True)
    try:
        wait_for(lambda: proc.poll() is not None or (run_dir / "state.json").exists(), 10,
                 "daemon start")
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}): "
                                 f"{log_path.read_text()[-2000:]}")
        yield proc
    finally:
        stop(proc)

