"""Issue 20: the .deb's maintainer scripts (linux/debian/) where systemd runs: start on
install, restart on upgrade, stop on removal, and never a start without a running
systemd or under DPKG_ROOT. The tools they call are stubs that record their arguments;
/run/systemd/system is faked in a private mount namespace, the host's /run is not touched.
The real dpkg runs are in test_deb.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "linux/debian"
STUBS = ("deb-systemd-helper", "deb-systemd-invoke", "systemctl", "python3")
UNIT = "wg-endpointd.service"


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    return bin_dir


def run(tmp_path: Path, stubs: Path, script: str, *args: str, systemd: bool = True,
        dpkg_root: str = "") -> list[str]:
    """Run a maintainer script as dpkg would; returns the stubs' calls."""
    calls = tmp_path / "calls"
    calls.write_text("")
    fake = "mount -t tmpfs tmpfs /run && " + ("mkdir -p /run/systemd/system && " if systemd
                                             else "")
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "DPKG_ROOT": dpkg_root}
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          fake + 'exec sh "$0" "$@"', str(SCRIPTS / script), *args],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [c for c in calls.read_text().splitlines() if not c.startswith("python3 ")]


pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="a private mount namespace needs root")


def test_install_enables_and_starts(tmp_path: Path, stubs: Path) -> None:
    assert run(tmp_path, stubs, "postinst", "configure", "") == [
        f"deb-systemd-helper unmask {UNIT}", f"deb-systemd-helper --quiet was-enabled {UNIT}",
        f"deb-systemd-helper enable {UNIT}", "systemctl --system daemon-reload",
        f"deb-systemd-invoke start {UNIT}"]


def test_upgrade_restarts(tmp_path: Path, stubs: Path) -> None:
    assert run(tmp_path, stubs, "postinst", "configure", "0.1.0")[-1] == \
        f"deb-systemd-invoke restart {UNIT}"
    assert run(tmp_path, stubs, "prerm", "upgrade", "0.2.0") == []  # no stop in between


def test_removal_stops_and_purge_forgets(tmp_path: Path, stubs: Path) -> None:
    assert run(tmp_path, stubs, "prerm", "remove") == [f"deb-systemd-invoke stop {UNIT}"]
    assert run(tmp_path, stubs, "postrm", "remove") == [
        "systemctl --system daemon-reload", f"deb-systemd-helper mask {UNIT}"]
    assert run(tmp_path, stubs, "postrm", "purge") == [
        f"deb-systemd-helper purge {UNIT}", f"deb-systemd-helper unmask {UNIT}"]


@pytest.mark.parametrize(("systemd", "dpkg_root"), [(False, ""), (True, "/srv/image")])
def test_no_start_or_stop_without_a_running_systemd(tmp_path: Path, stubs: Path,
                                                    systemd: bool, dpkg_root: str) -> None:
    """A chroot or container build (no /run/systemd/system), or a bootstrap into another
    root: the unit is enabled (links only) but nothing is started or stopped."""
    calls = run(tmp_path, stubs, "postinst", "configure", "", systemd=systemd,
                dpkg_root=dpkg_root)
    assert calls == [f"deb-systemd-helper unmask {UNIT}",
                     f"deb-systemd-helper --quiet was-enabled {UNIT}",
                     f"deb-systemd-helper enable {UNIT}"]
    assert run(tmp_path, stubs, "prerm", "remove", systemd=systemd, dpkg_root=dpkg_root) == []


def test_a_disabled_service_stays_disabled_on_upgrade(tmp_path: Path, stubs: Path) -> None:
    (stubs / "deb-systemd-helper").write_text(
        f'#!/bin/sh\necho "deb-systemd-helper $*" >> "{tmp_path}/calls"\n'
        '[ "$2" != was-enabled ]\n')  # the administrator ran `systemctl disable`
    calls = run(tmp_path, stubs, "postinst", "configure", "0.1.0")
    assert f"deb-systemd-helper update-state {UNIT}" in calls
    assert f"deb-systemd-helper enable {UNIT}" not in calls


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck() -> None:
    out = subprocess.run(["shellcheck", "-s", "sh", *(str(SCRIPTS / n) for n in
                                                      ("postinst", "prerm", "postrm"))],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout
