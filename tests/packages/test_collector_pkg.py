"""prometheus-node-exporter-lua-wg-endpointd: the collector's package in ipk, apk and the
feed. Its Lua code is tested in tests/router/test_lua_collector.py."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from scripts import build_apk, build_feed, build_ipk, pkgspec
from tests import adb_reader
from tests.apkbuild import CACHE, EPOCH, REPO, packages_or_skip, parsed
from tests.ipkbuild import control_fields, data_members, depends

NAME = "prometheus-node-exporter-lua-wg-endpointd"
FOLDER = REPO / "openwrt/utils" / NAME
COLLECTOR = "usr/lib/lua/prometheus-collectors/wg_endpointd.lua"
DEPENDS = ["libc", "prometheus-node-exporter-lua", "wg-endpointd", "libuci-lua"]


@pytest.fixture(scope="module")
def pkg() -> pkgspec.Package:
    return {p.name: p for p in packages_or_skip()}[NAME]


def test_description(pkg: pkgspec.Package) -> None:
    assert pkg.version == f"{pkgspec.read_version(REPO)}-r1"
    assert list(pkg.depends) == DEPENDS
    assert (pkg.section, pkg.arch, pkg.license) == ("utils", "all", "GPL-2.0-only")
    assert pkg.source == f"feeds/{pkgspec.FEED_NAME}/utils/{NAME}"
    assert [(e.path, e.mode, e.data) for e in pkg.entries] == [
        (COLLECTOR, 0o644, (FOLDER / "files" / COLLECTOR).read_bytes())]
    assert pkg.conffiles == () and pkg.prerm_pkg == ""


def test_ipk(pkg: pkgspec.Package, tmp_path: Path) -> None:
    (ipk,) = build_ipk.build(tmp_path, pkgs=[pkg], epoch=EPOCH)
    assert ipk.name == f"{NAME}_{pkg.version}_all.ipk"
    fields = control_fields(ipk)
    assert (fields["Package"], fields["Section"], fields["Architecture"]) == (NAME, "utils", "all")
    assert depends(ipk) == DEPENDS
    members = data_members(ipk)
    assert stat.S_IMODE(members[COLLECTOR].mode) == 0o644
    assert [n for n, m in members.items() if m.isfile()] == [COLLECTOR]
    control = build_ipk.read_control(ipk)
    assert control["postinst-pkg"].decode() == pkg.postinst_pkg
    assert "conffiles" not in control


def test_apk(pkg: pkgspec.Package, tmp_path: Path) -> None:
    (apk,) = build_apk.build(tmp_path, pkgs=[pkg], epoch=EPOCH)
    f = parsed(apk)
    assert f.root["info"]["name"] == NAME and f.root["info"]["arch"] == "noarch"
    files = {k: v for k, v in adb_reader.installed_files(f).items() if not k.endswith("/")}
    assert files[COLLECTOR]["acl"]["mode"] == 0o644
    assert files[COLLECTOR]["data"] == (FOLDER / "files" / COLLECTOR).read_bytes()
    assert "/etc/init.d/prometheus-node-exporter-lua restart" in \
        f.root["scripts"]["post-install"].decode()


def test_in_the_feed(tmp_path: Path) -> None:
    build_feed.build(tmp_path, cache=CACHE, epoch=EPOCH)
    assert f"Package: {NAME}\n" in (tmp_path / "Packages").read_text()
    names = [p["name"] for p in parsed(tmp_path / "packages.adb").root["packages"]]
    assert NAME in names


def test_postinst_restarts_only_an_enabled_exporter_on_a_live_system(
        pkg: pkgspec.Package, tmp_path: Path) -> None:
    """Run under busybox sh with /etc/init.d/prometheus-node-exporter-lua as a recorder,
    the script's absolute path rewritten into a scratch root."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed")
    init = tmp_path / "etc/init.d/prometheus-node-exporter-lua"
    init.parent.mkdir(parents=True)
    calls = tmp_path / "calls"
    script = pkg.postinst_pkg.replace("/etc/init.d/", f"{tmp_path}/etc/init.d/")
    assert script != pkg.postinst_pkg
    for enabled, instroot, want in ((True, "", ["enabled", "restart"]),
                                    (False, "", ["enabled"]), (True, "/img", [])):
        init.write_text(f'#!/bin/sh\necho "$1" >> {calls}\n[ "$1" != enabled ] || '
                        f'exit {0 if enabled else 1}\n')
        init.chmod(0o755)
        calls.write_text("")
        result = subprocess.run([busybox, "sh", "-c", script], env={
            "PATH": "/usr/bin:/bin", "IPKG_INSTROOT": instroot}, capture_output=True,
            text=True, timeout=10, check=False)
        assert result.returncode == 0, result.stderr
        assert calls.read_text().split() == want


def test_postinst_passes_shellcheck(pkg: pkgspec.Package, tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "postinst"
    script.write_text(pkg.postinst_pkg)
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
