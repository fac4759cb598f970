"""The OpenWrt .ipk packages: format, control files, contents, reproducibility.

Builds wg-endpointd and python3-icmplib with scripts/build_ipk.py (no SDK)
and checks them the way opkg and OpenWrt's own tools would see them. The
.apk side is in test_apk.py, scripts and upgrades in test_pkg_scripts.py.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from scripts import build_ipk, pkgfiles, pkgspec
from tests.apkbuild import NAMES
from tests.ipkbuild import control_fields, data_members, depends

REPO = Path(__file__).resolve().parents[2]
BUILD = [sys.executable, str(REPO / "scripts/build_ipk.py")]
OUTER = ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
REQUIRED_FIELDS = ["Package", "Version", "Depends", "Source", "License", "Section",
                   "Architecture", "Installed-Size", "Description"]

# What include/package-pack.mk writes as every ipk's postinst and prerm.
OPENWRT_POSTINST = (
    '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
    "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
    ". ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n")
OPENWRT_PRERM = (
    "#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
    ". ${IPKG_INSTROOT}/lib/functions.sh\ndefault_prerm $0 $@\n")


# -- format ---------------------------------------------------------------


def test_file_names_carry_version_and_arch(ipks: dict[str, Path]) -> None:
    version = pkgspec.read_version(REPO)
    assert ipks["wg-endpointd"].name == f"wg-endpointd_{version}-r1_all.ipk"
    assert ipks["python3-icmplib"].name == "python3-icmplib_3.0.4-r1_all.ipk"


@pytest.mark.parametrize("name", ["wg-endpointd", "python3-icmplib"])
def test_outer_archive_is_what_ipkg_build_writes(ipks: dict[str, Path], name: str,
                                                 tmp_path: Path) -> None:
    raw = ipks[name].read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"  # gzip, deflate; not an ar archive
    assert raw[3] & 0x08 == 0  # no file name in the gzip header (gzip -n)
    assert raw[4:8] == b"\0\0\0\0"  # no timestamp either
    listing = subprocess.run(["tar", "-tzf", str(ipks[name])], capture_output=True,
                             text=True, check=True).stdout.split()
    assert listing == OUTER
    subprocess.run(["tar", "-xzf", str(ipks[name]), "-C", str(tmp_path)], check=True)
    assert (tmp_path / "debian-binary").read_text() == "2.0\n"
    control = subprocess.run(["tar", "-tzf", str(tmp_path / "control.tar.gz")],
                             capture_output=True, text=True, check=True).stdout.split()
    expected = {
        "wg-endpointd": ["./", "./conffiles", "./control", "./postinst", "./postinst-pkg",
                         "./prerm"],
        "python3-icmplib": ["./", "./control", "./postinst", "./postinst-pkg", "./prerm",
                            "./prerm-pkg"],
    }[name]
    assert control == expected
    with tarfile.open(ipks[name], "r:gz") as outer:
        assert all(m.uid == 0 and m.gid == 0 for m in outer.getmembers())


def _gnu_tar_sorts() -> bool:
    try:
        out = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return False
    return "GNU tar" in out.stdout and subprocess.run(
        ["tar", "--sort=name", "-cf", os.devnull, "--files-from", os.devnull],
        capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _gnu_tar_sorts(), reason="needs GNU tar with --sort")
@pytest.mark.parametrize("name", ["wg-endpointd", "python3-icmplib"])
def test_tars_match_gnu_tar_as_ipkg_build_runs_it(ipks: dict[str, Path], name: str,
                                                  tmp_path: Path) -> None:
    """Unpack, re-create each tar with ipkg-build's tar flags, compare bytes."""
    epoch = control_fields(ipks[name])["SourceDateEpoch"]
    flags = ["--format=gnu", "--numeric-owner", "--owner=0", "--group=0", "--sort=name",
             f"--mtime=@{epoch}", "-cpf", "-"]
    outer = tmp_path / "outer"
    outer.mkdir()
    subprocess.run(["tar", "-xzf", str(ipks[name]), "-C", str(outer)], check=True)
    for inner in ("data.tar.gz", "control.tar.gz"):
        tree = tmp_path / inner.split(".")[0]
        tree.mkdir()
        subprocess.run(["tar", "-xpzf", str(outer / inner), "-C", str(tree)], check=True)
        gnu = subprocess.run(["tar", *flags, "."], cwd=tree, capture_output=True,
                             check=True).stdout
        assert gzip.decompress((outer / inner).read_bytes()) == gnu, inner
    gnu = subprocess.run(["tar", *flags, *OUTER], cwd=outer, capture_output=True,
                         check=True).stdout
    assert gzip.decompress(ipks[name].read_bytes()) == gnu


# -- control --------------------------------------------------------------


def test_wg_endpointd_control(ipks: dict[str, Path]) -> None:
    fields = control_fields(ipks["wg-endpointd"])
    assert [k for k in REQUIRED_FIELDS if k not in fields] == []
    assert fields["Package"] == "wg-endpointd"
    assert fields["Version"] == f"{pkgspec.read_version(REPO)}-r1"
    assert fields["Architecture"] == "all"
    assert fields["Section"] == "net"
    assert fields["License"] == "GPL-2.0-only"
    assert fields["Source"] == "feeds/wgendpointd/net/wg-endpointd"
    assert depends(ipks["wg-endpointd"]) == [
        "libc", "python3-light", "python3-logging", "python3-asyncio", "python3-icmplib",
        "wireguard-tools"]
    assert "WireGuard" in fields["Description"]


def test_python3_icmplib_control(ipks: dict[str, Path]) -> None:
    fields = control_fields(ipks["python3-icmplib"])
    assert [k for k in REQUIRED_FIELDS if k not in fields] == []
    assert fields["Package"] == "python3-icmplib"
    assert fields["Version"] == "3.0.4-r1"
    assert fields["Architecture"] == "all"
    assert fields["Section"] == "lang"
    assert fields["License"] == "LGPL-3.0-or-later"
    assert depends(ipks["python3-icmplib"]) == [
        "libc", "python3-light", "python3-asyncio", "python3-logging"]


@pytest.mark.parametrize("name", ["wg-endpointd", "python3-icmplib"])
def test_installed_size_is_the_unpacked_data_tar(ipks: dict[str, Path], name: str) -> None:
    data = build_ipk.read_ipk(ipks[name])["data.tar.gz"]
    assert int(control_fields(ipks[name])["Installed-Size"]) == len(gzip.decompress(data))


def test_only_the_uci_config_is_a_conffile(ipks: dict[str, Path]) -> None:
    control = build_ipk.read_control(ipks["wg-endpointd"])
    assert control["conffiles"] == b"/etc/config/wg-endpointd\n"
    assert "etc/config/wg-endpointd" in data_members(ipks["wg-endpointd"])
    assert "conffiles" not in build_ipk.read_control(ipks["python3-icmplib"])


@pytest.mark.parametrize("name", ["wg-endpointd", "python3-icmplib"])
def test_maintainer_scripts_are_openwrts_defaults(ipks: dict[str, Path], name: str) -> None:
    control = build_ipk.read_control(ipks[name])
    assert control["postinst"].decode() == OPENWRT_POSTINST
    assert control["prerm"].decode() == OPENWRT_PRERM
    # Package/<name>/postinst is stored as postinst-pkg, sourced by default_postinst.
    _, defines = pkgspec.parse_makefile(REPO / "openwrt/net/wg-endpointd/Makefile")
    if name == "wg-endpointd":
        want = defines["Package/wg-endpointd/postinst"].replace("$$", "$") + "\n"
        assert control["postinst-pkg"].decode() == want
        assert "prerm-pkg" not in control


# -- data -----------------------------------------------------------------


def test_wg_endpointd_data_layout(ipks: dict[str, Path]) -> None:
    members = data_members(ipks["wg-endpointd"])
    code = REPO / "src/wg_endpointd"
    for path in code.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        installed = f"usr/lib/wg-endpointd/wg_endpointd/{path.relative_to(code).as_posix()}"
        assert stat.S_IMODE(members[installed].mode) == 0o644, installed
    assert not [n for n in members if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    for path in (REPO / "files").rglob("*"):
        rel = path.relative_to(REPO / "files").as_posix()
        if path.is_file() and not rel.startswith(pkgfiles.LINUX_ONLY):
            assert rel in members
        elif path.is_file():
            assert rel not in members  # the Linux host's settings: the .deb's alone
    modes = {n: stat.S_IMODE(m.mode) for n, m in members.items() if m.isfile()}
    assert modes["usr/bin/wg-endpointd"] == 0o755
    assert modes["etc/config/wg-endpointd"] == 0o600
    assert modes["etc/init.d/wg-endpointd"] == 0o755
    assert {modes[n] for n in modes if n.startswith("etc/hotplug.d/iface/")} == {0o644}
    assert {modes[n] for n in modes if n.startswith("etc/uci-defaults/")} <= {0o755}
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())


def test_icmplib_is_installed_once_without_links(ipks: dict[str, Path]) -> None:
    """opkg cannot remove links to directories, nor should trees for absent Pythons ship."""
    members = data_members(ipks["python3-icmplib"])
    assert "usr/lib/python3-icmplib/icmplib/__init__.py" in members
    assert not [n for n, m in members.items() if m.issym() or m.islnk()]
    assert not [n for n in members if re.match(r"usr/lib/python3\.\d+", n)]
    assert not [n for n in members if n.endswith(".pyc")]


def test_installed_code_parses_as_python_3_11(root: Path) -> None:
    """The oldest Python on a supported OpenWrt is 3.11 (23.05, 24.10)."""
    files = [*(root / "usr/lib/wg-endpointd").rglob("*.py"),
             *(root / "usr/lib/python3-icmplib").rglob("*.py"), root / "usr/bin/wg-endpointd"]
    for path in files:
        ast.parse(path.read_text(), str(path), feature_version=(3, 11))


# -- reproducibility ------------------------------------------------------


def _sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ipk")}


def test_building_twice_gives_identical_bytes(ipks: dict[str, Path], tmp_path: Path) -> None:
    for out in ("a", "b"):
        result = subprocess.run([*BUILD, "--out", str(tmp_path / out)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.split()) == len(NAMES)
    first = _sha256s(tmp_path / "a")
    assert len(first) == len(NAMES)
    assert first == _sha256s(tmp_path / "b")


def test_source_date_epoch_sets_every_timestamp(ipks: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1234567890"}
    subprocess.run([*BUILD, "--out", str(tmp_path)], env=env, check=True, capture_output=True)
    ipk = tmp_path / ipks["wg-endpointd"].name
    assert control_fields(ipk)["SourceDateEpoch"] == "1234567890"
    with tarfile.open(ipk, "r:gz") as outer:
        assert {m.mtime for m in outer.getmembers()} == {1234567890}
    assert {m.mtime for m in data_members(ipk).values()} == {1234567890}
