"""The .apk packages (apk-tools v3 ADB) and the feed folder.

Every .apk is parsed back with tests/adb_reader.py, written from apk-tools'
definition and not from scripts/adb.py, and compared with the source tree.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from scripts import build_apk, build_feed, build_ipk, pkgfiles, pkgspec
from tests import adb_reader

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build/cache"
EPOCH = 1700000000
FIELDS = ("name", "version", "hashes", "description", "arch", "license", "origin",
          "installed-size", "depends")


def _packages(repo: Path = REPO) -> list[pkgspec.Package]:
    try:
        return pkgfiles.packages(repo, cache=CACHE)
    except pkgspec.BuildError as exc:
        if "could not download" in str(exc) and os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") != "1":
            pytest.skip(f"icmplib sdist unavailable: {exc}")
        raise


@pytest.fixture(scope="module")
def pkgs() -> dict[str, pkgspec.Package]:
    return {p.name: p for p in _packages()}


@pytest.fixture(scope="module")
def apks(pkgs: dict[str, pkgspec.Package], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("apk")
    paths = build_apk.build(out, epoch=EPOCH, pkgs=list(pkgs.values()))
    return {p.name.rsplit("-", 2)[0]: p for p in paths}


def parsed(path: Path) -> adb_reader.AdbFile:
    return adb_reader.parse(path.read_bytes())


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
        if p.is_file():
            rel = p.relative_to(REPO / "files").as_posix()
            mode = {"etc/config": 0o600, "etc/init.d": 0o755, "etc/uci-defaults": 0o755,
                    "etc/hotplug.d": 0o644}[next(k for k in ("etc/config", "etc/init.d",
                                                             "etc/uci-defaults", "etc/hotplug.d")
                                                 if rel.startswith(k))]
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
    want = {
        "wg-endpointd": _package_pack_scripts("wg-endpointd", postinst, ""),
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
    assert len(digests[0]) == 7 and digests[0] == digests[1]
    files = adb_reader.installed_files(parsed(tmp_path / "a" / apks["wg-endpointd"].name))
    assert {v["mtime"] for k, v in files.items() if not k.endswith("/")} == {1234567890}


# -- the LuCI app is picked up when its folder exists -----------------------------


def _fixture_repo(tmp_path: Path, *, luci: bool) -> Path:
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in ("src/wg_endpointd", "files", "openwrt/net", "openwrt/lang"):
        shutil.copytree(REPO / rel, repo / rel, ignore=ignore)
    if luci:
        app = repo / "openwrt/luci/luci-app-wg-endpointd"
        (app / "htdocs/luci-static/resources/view/wg-endpointd").mkdir(parents=True)
        (app / "htdocs/luci-static/resources/view/wg-endpointd/status.js").write_text(
            "'use strict';\n")
        (app / "root/usr/libexec/rpcd").mkdir(parents=True)
        rpcd = app / "root/usr/libexec/rpcd/wg-endpointd"
        rpcd.write_text("#!/bin/sh\necho '{}'\n")
        rpcd.chmod(0o755)
        (app / "Makefile").write_text(
            "include $(TOPDIR)/rules.mk\n\nLUCI_TITLE:=LuCI support for wg-endpointd\n"
            "LUCI_DEPENDS:=+luci-base +wg-endpointd\nLUCI_PKGARCH:=all\n\n"
            "PKG_LICENSE:=GPL-2.0-only\n\ninclude $(TOPDIR)/feeds/luci/luci.mk\n")
    return repo


def test_luci_app_is_built_when_its_folder_exists(tmp_path: Path) -> None:
    assert [p.name for p in _packages(_fixture_repo(tmp_path / "a", luci=False))] == [
        "wg-endpointd", "python3-icmplib"]
    repo = _fixture_repo(tmp_path / "b", luci=True)
    luci = {p.name: p for p in _packages(repo)}["luci-app-wg-endpointd"]
    assert luci.version == f"{pkgspec.read_version(REPO)}-r1"
    assert luci.depends == ("libc", "luci-base", "wg-endpointd")
    out = tmp_path / "feed"
    build_feed.build(out, repo=repo, cache=CACHE, epoch=EPOCH)
    ipk = out / luci.ipk_filename
    assert ipk.name == f"luci-app-wg-endpointd_{luci.version}_all.ipk"
    assert "rm -rf /tmp/luci-modulecache/" in build_ipk.read_control(ipk)["postinst-pkg"].decode()
    f = parsed(out / luci.apk_filename)
    files = adb_reader.installed_files(f)
    assert files["usr/libexec/rpcd/wg-endpointd"]["acl"]["mode"] == 0o755
    assert files["www/luci-static/resources/view/wg-endpointd/status.js"]["acl"]["mode"] == 0o644
    assert f.root["info"]["arch"] == "noarch"
    assert "Package: luci-app-wg-endpointd" in (out / "Packages").read_text()
    names = [p["name"] for p in parsed(out / "packages.adb").root["packages"]]
    assert names == ["luci-app-wg-endpointd", "python3-icmplib", "wg-endpointd"]


# -- the feed -------------------------------------------------------------------


def test_feed_indexes(tmp_path: Path) -> None:
    out = tmp_path / "feed"
    build_feed.build(out, cache=CACHE, epoch=EPOCH)
    text = (out / "Packages").read_text()
    assert gzip.decompress((out / "Packages.gz").read_bytes()).decode() == text
    stanzas = [s for s in text.split("\n\n") if s.strip()]
    assert text.endswith("\n\n") and len(stanzas) == 2
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if not line.startswith(" "))
        ipk = out / fields["Filename"]
        assert int(fields["Size"]) == ipk.stat().st_size
        assert fields["SHA256sum"] == hashlib.sha256(ipk.read_bytes()).hexdigest()
        control = build_ipk.read_control(ipk)["control"].decode()
        assert stanza.replace(f"Filename: {ipk.name}\nSize: {fields['Size']}\n"
                              f"SHA256sum: {fields['SHA256sum']}\n", "") + "\n" == control
        assert fields["Version"].endswith("-r1")
    index = adb_reader.parse((out / "packages.adb").read_bytes())
    assert index.schema == "indx" and index.compression == "deflate"
    assert [b.kind for b in index.blocks] == [0]  # unsigned: no signature block
    entries = index.root["packages"]
    assert [e["name"] for e in entries] == ["python3-icmplib", "wg-endpointd"]
    for entry in entries:
        apk = out / f"{entry['name']}-{entry['version']}.apk"
        pkg = adb_reader.parse(apk.read_bytes())
        assert entry["file-size"] == apk.stat().st_size
        assert entry["hashes"] == hashlib.sha256(pkg.adb).digest()
        own = {k: v for k, v in pkg.root["info"].items() if k != "hashes"}
        assert {k: v for k, v in entry.items() if k not in ("hashes", "file-size")} == own
