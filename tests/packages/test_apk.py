"""The .apk packages (apk-tools v3 ADB); the feed folder is in test_feed.py.

Every .apk is parsed back with tests/adb_reader.py, written from apk-tools'
definition and not from scripts/adb.py, and compared with the source tree.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from scripts import build_apk, pkgfiles, pkgspec
from tests import adb_reader
from tests.apkbuild import CACHE, EPOCH, NAMES, packages_or_skip, parsed

REPO = Path(__file__).resolve().parents[2]
FIELDS = ("name", "version", "hashes", "description", "arch", "license", "origin",
          "installed-size", "depends")


@pytest.fixture(scope="module")
def pkgs() -> dict[str, pkgspec.Package]:
    return {p.name: p for p in packages_or_skip()}


@pytest.fixture(scope="module")
def apks(pkgs: dict[str, pkgspec.Package], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("apk")
    paths = build_apk.build(out, epoch=EPOCH, pkgs=list(pkgs.values()))
    return {p.name.rsplit("-", 2)[0]: p for p in paths}


# -- fixed bytes ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["wg-endpointd", "python3-icmplib"])
def test_fixed_bytes_follow_the_definition(apks: dict[str, Path], name: str) -> None:
    """Magic, schema and block headers, read with struct alone (adb.h, adb_comp.c)."""
    data = apks[name].read_bytes()
    assert data[:4] == b"ADBd"  # deflate, mkpkg's default compression
    raw = zlib.decompress(data[4:], -15)
    assert raw[:4] == b"ADB." and struct.unpack_from("<I", raw, 0)[0] == 0x2E424441
    assert raw[4:8] == b"pckg" and struct.unpack_from("<I", raw, 4)[0] == 0x676B6370
    pos, kinds = 8, []
    while pos < len(raw):
        (type_size,) = struct.unpack_from("<I", raw, pos)
        size = type_size & 0x3FFFFFFF
        kinds.append(type_size >> 30)
        assert size >= 4 and (pos + size + 7) // 8 * 8 <= len(raw)
        assert raw[pos + size:(pos + size + 7) // 8 * 8].strip(b"\0") == b""
        pos = (pos + size + 7) // 8 * 8
    assert pos == len(raw)
    assert kinds[0] == 0 and set(kinds[1:]) == {2}  # one ADB block, then DATA blocks
    assert raw[12:14] == b"\0\0"  # adb_hdr: compat version 0, version 0


def test_reader_rejects_broken_files(apks: dict[str, Path]) -> None:
    raw = zlib.decompress(apks["wg-endpointd"].read_bytes()[4:], -15)
    broken = {
        "magic": b"ADX." + raw[4:],
        "schema": raw[:4] + b"pkgx" + raw[8:],
        "compat": raw[:12] + b"\1" + raw[13:],
        "block type": raw[:8] + struct.pack("<I", struct.unpack_from("<I", raw, 8)[0]
                                            | 0x40000000) + raw[12:],
        "truncated": raw[:-9],
    }
    for what, data in broken.items():
        with pytest.raises(adb_reader.FormatError):
            adb_reader.installed_files(adb_reader.parse(data))
            pytest.fail(f"{what}: accepted")


# -- info -----------------------------------------------------------------------


def test_info_fields(apks: dict[str, Path], pkgs: dict[str, pkgspec.Package]) -> None:
    for name, path in apks.items():
        pkg = pkgs[name]
        info = parsed(path).root["info"]
        assert set(info) == set(FIELDS) | ({"url"} if pkg.url else set())
        assert path.name == f"{name}-{info['version']}.apk"
        assert info["version"] == f"{pkg.pkg_version}-r{pkg.pkg_release}"
        assert info["arch"] == "noarch"
        assert info["origin"] == pkg.source
        assert info["license"] == pkg.license
        assert "\n" not in info["description"] and len(info["description"].encode()) <= 256
        assert info["description"].split() == pkg.description.split()
        deps = [d["name"] for d in info["depends"]]
        assert deps == sorted(pkg.depends) and "version" not in str(info["depends"])
    wg = parsed(apks["wg-endpointd"]).root["info"]
    assert wg["version"] == f"{pkgspec.read_version(REPO)}-r1"
    assert [d["name"] for d in wg["depends"]] == [
        "libc", "python3-asyncio", "python3-icmplib", "python3-light", "python3-logging",
        "wireguard-tools"]


def test_unique_id_is_the_digest_of_the_adb_block(apks: dict[str, Path]) -> None:
    """mkpkg: sha256 of the ADB payload with the id zeroed, first 20 bytes."""
    for path in apks.values():
        f = parsed(path)
        uid = f.root["info"]["hashes"]
        assert len(uid) == 20 and f.adb.count(uid) == 1
        at = f.adb.index(uid)
        zeroed = f.adb[:at] + bytes(20) + f.adb[at + 20:]
        assert hashlib.sha256(zeroed).digest()[:20] == uid


def test_arrays_are_sorted_as_apk_adb_c_sorts_them(apks: dict[str, Path]) -> None:
    """Paths, files and dependencies are sorted by name bytes (apk_blob_sort), deps unique."""
    for path in apks.values():
        root = parsed(path).root
        dirs = [d.get("name", "").encode() for d in root["paths"]]
        assert dirs == sorted(dirs) and dirs[0] == b""  # the root node comes first
        for d in root["paths"]:
            names = [f["name"].encode() for f in d.get("files", [])]
            assert names == sorted(names)
        deps = [d["name"].encode() for d in root["info"]["depends"]]
        assert deps == sorted(set(deps))


# -- paths ----------------------------------------------------------------------


def _expected_tree(pkg: pkgspec.Package) -> dict[str, bytes]:
    return {e.path: e.data for e in pkg.entries}


def test_every_path_mode_size_and_hash_matches_the_source(apks: dict[str, Path]) -> None:
    files = adb_reader.installed_files(parsed(apks["wg-endpointd"]))
    code = REPO / "src/wg_endpointd"
    want: dict[str, tuple[Path, int]] = {
        f"usr/lib/wg-endpointd/wg_endpointd/{p.relative_to(code).as_posix()}": (p, 0o644)
        for p in code.rglob("*.py") if "__pycache__" not in p.parts}
    want["usr/bin/wg-endpointd"] = (REPO / "openwrt/net/wg-endpointd/files/launcher.py", 0o755)
    for p in (REPO / "files").rglob("*"):
        if p.is_file() and not p.relative_to(REPO / "files").as_posix().startswith(
                pkgfiles.LINUX_ONLY):
            rel = p.relative_to(REPO / "files").as_posix()
            modes = {"etc/config": 0o600, "etc/init.d": 0o755, "etc/uci-defaults": 0o755,
                     "etc/hotplug.d": 0o644, "usr/libexec": 0o755}
            mode = modes[next(k for k in modes if rel.startswith(k))]
            want[rel] = (p, mode)
    regular = {k: v for k, v in files.items() if not k.endswith("/")}
    own = {k for k in regular if not k.startswith("lib/apk/packages/")}
    assert own == set(want)
    for path, (source, mode) in want.items():
        data = source.read_bytes()
        f = regular[path]
        assert (f["acl"]["mode"], f["size"]) == (mode, len(data)), path
        assert f["hash"] == hashlib.sha256(data).digest(), path
        assert f["data"] == data, path
        assert (f["acl"]["user"], f["acl"]["group"], f["mtime"]) == ("root", "root", EPOCH)
    dirs = {k: v for k, v in files.items() if k.endswith("/")}
    assert {v["mode"] for v in dirs.values()} == {0o755}
    assert {p.rsplit("/", 1)[0] + "/" for p in regular} <= set(dirs)
    info = parsed(apks["wg-endpointd"]).root["info"]
    assert info["installed-size"] == sum(f["size"] for f in regular.values())


def test_apk_packages_files_are_what_package_pack_mk_adds(apks: dict[str, Path]) -> None:
    for name, path in apks.items():
        files = adb_reader.installed_files(parsed(path))
        regular = sorted(k for k in files if not k.endswith("/"))
        own = [f"/{k}" for k in regular if not k.startswith("lib/apk/packages/")]
        listing = files[f"lib/apk/packages/{name}.list"]["data"].decode()
        assert listing == "".join(f"{p}\n" for p in sorted(own))
    files = adb_reader.installed_files(parsed(apks["wg-endpointd"]))
    conf = (REPO / "files/etc/config/wg-endpointd").read_bytes()
    base = "lib/apk/packages/wg-endpointd"
    assert files[f"{base}.conffiles"]["data"] == b"/etc/config/wg-endpointd\n"
    assert files[f"{base}.conffiles_static"]["data"].decode() == (
        f"/etc/config/wg-endpointd {hashlib.sha256(conf).hexdigest()}\n")
    icmp = adb_reader.installed_files(parsed(apks["python3-icmplib"]))
    assert "lib/apk/packages/python3-icmplib.conffiles" not in icmp
    assert not [k for k in icmp if k.startswith("usr/lib/python3.")]
    assert "target" not in str(icmp)


def test_icmplib_sources_match_the_sdist(apks: dict[str, Path]) -> None:
    sdist = CACHE / "icmplib-3.0.4.tar.gz"
    if not sdist.is_file():
        pytest.skip("no cached sdist")
    import tarfile

    with tarfile.open(sdist) as tar:
        want = {m.name.split("/", 2)[2]: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile() and m.name.split("/")[1:2] == ["icmplib"] and m.name.endswith(".py")}
    files = adb_reader.installed_files(parsed(apks["python3-icmplib"]))
    got = {k.removeprefix("usr/lib/python3-icmplib/icmplib/"): v["data"]
           for k, v in files.items() if k.startswith("usr/lib/python3-icmplib/icmplib/")
           and not k.endswith("/")}
    assert got == want


# -- scripts --------------------------------------------------------------------


# luci.mk's postinst for an app that defines none.
LUCI_MK_POSTINST = """[ -n "${IPKG_INSTROOT}" ] || {
\trm -f /tmp/luci-indexcache
\trm -rf /tmp/luci-modulecache/
\tkillall -HUP rpcd 2>/dev/null
\texit 0
}
"""


def _package_pack_scripts(name: str, postinst: str, prerm: str) -> dict[str, str]:
    """The three scripts as package-pack.mk's echo lines produce them."""
    head = ("[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
            ". ${IPKG_INSTROOT}/lib/functions.sh\n"
            'export root="${IPKG_INSTROOT}"\n'
            f'export pkgname="{name}"\n')
    body = "\n".join(x for x in postinst.splitlines() if not x.lstrip().startswith("#!"))
    rbody = "\n".join(x for x in prerm.splitlines() if not x.lstrip().startswith("#!"))
    install = ('[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n' + head
               + "add_group_and_user\ndefault_postinst\n" + (body + "\n" if body else ""))
    return {
        "post-install": "#!/bin/sh\n" + install,
        "post-upgrade": "#!/bin/sh\nexport PKG_UPGRADE=1\n" + install,
        "pre-deinstall": "#!/bin/sh\n" + head + "default_prerm\n" + (rbody + "\n" if rbody else ""),
    }


def test_scripts_are_package_pack_mks(apks: dict[str, Path]) -> None:
    _, defines = pkgspec.parse_makefile(REPO / "openwrt/net/wg-endpointd/Makefile")
    postinst = defines["Package/wg-endpointd/postinst"].replace("$$", "$")
    nosdk = REPO / "openwrt/lang/python3-icmplib/nosdk"
    _, collector = pkgspec.parse_makefile(
        REPO / "openwrt/utils/prometheus-node-exporter-lua-wg-endpointd/Makefile")
    want = {
        "wg-endpointd": _package_pack_scripts("wg-endpointd", postinst, ""),
        "luci-app-wg-endpointd": _package_pack_scripts(
            "luci-app-wg-endpointd", LUCI_MK_POSTINST, ""),
        "prometheus-node-exporter-lua-wg-endpointd": _package_pack_scripts(
            "prometheus-node-exporter-lua-wg-endpointd", pkgspec.make_unescape(collector[
                "Package/prometheus-node-exporter-lua-wg-endpointd/postinst"]), ""),
        "python3-icmplib": _package_pack_scripts(
            "python3-icmplib", (nosdk / "postinst-pkg").read_text(),
            (nosdk / "prerm-pkg").read_text()),
    }
    for name, path in apks.items():
        scripts = parsed(path).root["scripts"]
        assert {k: v.decode() for k, v in scripts.items()} == want[name]
    assert "/etc/init.d/wg-endpointd restart" in want["wg-endpointd"]["post-upgrade"]


# -- reproducibility ------------------------------------------------------------


def test_rebuilds_are_byte_identical(tmp_path: Path, apks: dict[str, Path]) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1234567890"}
    digests = []
    for out in ("a", "b"):
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts/build_feed.py"), "--out", str(tmp_path / out)],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in (tmp_path / out).iterdir()})
    assert len(digests[0]) == 2 * len(NAMES) + 3 and digests[0] == digests[1]
    files = adb_reader.installed_files(parsed(tmp_path / "a" / apks["wg-endpointd"].name))
    assert {v["mtime"] for k, v in files.items() if not k.endswith("/")} == {1234567890}
