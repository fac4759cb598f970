"""Issue 20: `wg-endpointd run` as systemd starts it, in a real process: $NOTIFY_SOCKET (a
datagram socket at a path, as systemd's /run/systemd/notify; an abstract one would not reach
across the network namespace), $WATCHDOG_USEC and $JOURNAL_STREAM naming its stderr pipe. Run in
a network namespace of its own (no WireGuard interface: no peers, the first round is done
at once)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unshare --net needs root")


def wait_for(sock: socket.socket, key: str, seen: list[list[str]], timeout: float = 10.0
             ) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            msg = sock.recv(4096).decode().splitlines()
            seen.append(msg)
            if msg[0] == key:
                return msg
    raise AssertionError(f"no {key} within {timeout} s; heard {seen}")


def test_run_speaks_sd_notify_and_logs_for_journald(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    (tmp_path / "wireguard").mkdir()
    r, w = os.pipe()
    st = os.fstat(w)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NOTIFY_SOCKET": str(tmp_path / "notify"),
           "WATCHDOG_USEC": "2000000", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
           "WG_ENDPOINTD_RUN_DIR": str(tmp_path / "run")}
    env.pop("WATCHDOG_PID", None)
    cmd = ["unshare", "--net", sys.executable, "-m", "wg_endpointd", "run",
           "--wireguard-dir", str(tmp_path / "wireguard"),
           "--settings", str(tmp_path / "settings.toml")]
    proc = subprocess.Popen(cmd, env=env, stderr=w, stdout=subprocess.DEVNULL)
    os.close(w)
    seen: list[list[str]] = []
    try:
        ready = wait_for(sock, "READY=1", seen)
        assert ready == ["READY=1", "STATUS=no managed peers"]
        first = time.monotonic()
        wait_for(sock, "WATCHDOG=1", seen, 3.0)
        wait_for(sock, "WATCHDOG=1", seen, 3.0)  # every half WatchdogSec (1 s here)
        assert time.monotonic() - first < 3.0
        proc.send_signal(signal.SIGHUP)  # systemctl reload
        reloading = wait_for(sock, "RELOADING=1", seen)
        assert reloading[1].startswith("MONOTONIC_USEC=")
        wait_for(sock, "READY=1", seen)
        proc.send_signal(signal.SIGTERM)
        wait_for(sock, "STOPPING=1", seen)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    with os.fdopen(r) as f:
        lines = f.read().splitlines()
    assert lines and all(line[:3] in ("<7>", "<6>", "<4>", "<3>") for line in lines), lines
    assert "<6>stopped" in lines
