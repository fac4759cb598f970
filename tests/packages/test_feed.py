"""The feed folder (make feed) and the LuCI app, built when its folder exists."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

from scripts import build_feed, build_ipk, pkgspec
from tests import adb_reader
from tests.apkbuild import CACHE, EPOCH, NAMES, REPO, packages_or_skip, parsed

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
    assert [p.name for p in packages_or_skip(_fixture_repo(tmp_path / "a", luci=False))] == [
        "wg-endpointd", "python3-icmplib"]
    repo = _fixture_repo(tmp_path / "b", luci=True)
    luci = {p.name: p for p in packages_or_skip(repo)}["luci-app-wg-endpointd"]
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
    assert text.endswith("\n\n") and len(stanzas) == len(NAMES)
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
    assert [e["name"] for e in entries] == NAMES
    for entry in entries:
        apk = out / f"{entry['name']}-{entry['version']}.apk"
        pkg = adb_reader.parse(apk.read_bytes())
        assert entry["file-size"] == apk.stat().st_size
        assert entry["hashes"] == hashlib.sha256(pkg.adb).digest()
        own = {k: v for k, v in pkg.root["info"].items() if k != "hashes"}
        assert {k: v for k, v in entry.items() if k not in ("hashes", "file-size")} == own
