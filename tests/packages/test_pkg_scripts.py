"""Maintainer scripts of both formats, and upgrades and removals in a fake router.

The scripts run under busybox sh against tests/shell/functions.sh (a stub of
base-files' /lib/functions.sh that records what default_postinst and
default_prerm were asked to do), tests/shell/rc.common (rc.common plus a
one-file procd) and tests/shell/uci. Upgrades go from a 0.1.0 build to a
0.2.0 build of a copy of this repository, through tests/pkgroot.py's opkg
and apk, and then ask the procd stub which version it is running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import build_apk, build_ipk, pkgfiles, pkgspec
from tests.pkgroot import Apk, Opkg, Router, read_apk, read_ipk

REPO = Path(__file__).resolve().parents[2]
STUBS = REPO / "tests/shell"
CACHE = REPO / "build/cache"
EDIT = b"\n# edited by the user\n"


def _build(repo: Path, version: str, out: Path) -> dict[str, dict[str, Path]]:
    init = repo / "src/wg_endpointd/__init__.py"
    init.write_text(init.read_text().replace(pkgspec.read_version(repo), version))
    try:
        pkgs = pkgfiles.packages(repo, cache=CACHE)
    except pkgspec.BuildError as exc:
        if "could not download" in str(exc) and os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") != "1":
            pytest.skip(f"icmplib sdist unavailable: {exc}")
        raise
    build_ipk.build(out, pkgs=pkgs, epoch=1)
    build_apk.build(out, pkgs=pkgs, epoch=1)
    return {"ipk": {p.name: out / p.ipk_filename for p in pkgs},
            "apk": {p.name: out / p.apk_filename for p in pkgs}}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Packages of version 0.1.0 ("old-ipk", "old-apk") and 0.2.0 ("new-..."), by name."""
    repo = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in ("src/wg_endpointd", "files", "openwrt/net", "openwrt/lang"):
        shutil.copytree(REPO / rel, repo / rel, ignore=ignore)
    out = {}
    for label, version in (("old", "0.1.0"), ("new", "0.2.0")):
        for fmt, paths in _build(repo, version, tmp_path_factory.mktemp(label)).items():
            out[f"{label}-{fmt}"] = paths
    return out


# -- scripts in an image build (IPKG_INSTROOT set, no chroot) -----------------------


def _image_root(tmp_path: Path) -> Path:
    root = tmp_path / "img"
    for d in ("lib", "etc/rc.d", "usr/lib/python3.11/site-packages", "usr/lib/opkg/info"):
        (root / d).mkdir(parents=True)
    (root / "usr/lib/python3.11/os.pyc").write_bytes(b"")  # the image's Python 3.11
    shutil.copy(STUBS / "functions.sh", root / "lib/functions.sh")
    shutil.copy(STUBS / "rc.common", root / "etc/rc.common")
    return root


def _unpack(root: Path, pkg_path: Path) -> dict[str, bytes]:
    """Write a package's files into root; return its scripts by apk/opkg name."""
    pkg = read_apk(pkg_path) if pkg_path.suffix == ".apk" else read_ipk(pkg_path)
    for rel, (mode, data) in pkg.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        (root / rel).chmod(mode)
    if pkg_path.suffix == ".ipk":
        info = root / "usr/lib/opkg/info"
        (info / f"{pkg.name}.list").write_text("".join(f"/{p}\n" for p in sorted(pkg.files)))
        for key, data in pkg.scripts.items():
            (info / f"{pkg.name}.{key}").write_bytes(data)
    return pkg.scripts


def _busybox(root: Path, script: bytes | Path, *args: str, **env: str) -> str:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox not installed")
    path = script if isinstance(script, Path) else root / "script.sh"
    if not isinstance(script, Path):
        path.write_bytes(script)
    result = subprocess.run([busybox, "sh", str(path), *args], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "IPKG_INSTROOT": str(root), **env},
                            timeout=30, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    log = root / "stub.log"
    text = log.read_text() if log.exists() else ""
    log.unlink(missing_ok=True)
    return text


def test_apk_scripts_in_an_image_build(builds: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    root = _image_root(tmp_path)
    scripts = _unpack(root, builds["new-apk"]["wg-endpointd"])
    assert _busybox(root, scripts["post-install"]).splitlines() == [
        "add_group_and_user wg-endpointd",
        f"default_postinst wg-endpointd upgrade=0 root={root}",
    ]
    assert (root / "etc/rc.d/S95wg-endpointd").is_symlink()
    assert not (root / "var/run/procd-stub").exists()  # nothing started in an image
    assert _busybox(root, scripts["post-upgrade"]).splitlines()[1:] == [
        f"default_postinst wg-endpointd upgrade=1 root={root}"]
    assert _busybox(root, scripts["pre-deinstall"]).splitlines() == [
        f"default_prerm wg-endpointd upgrade=0 root={root}"]
    assert not list((root / "etc/rc.d").iterdir())
    assert _busybox(root, scripts["post-install"], IPKG_NO_SCRIPT="1") == ""
    (root / "lib/functions.sh").unlink()
    assert _busybox(root, scripts["pre-deinstall"]) == ""


def test_ipk_scripts_in_an_image_build(builds: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    root = _image_root(tmp_path)
    _unpack(root, builds["new-ipk"]["wg-endpointd"])
    info = root / "usr/lib/opkg/info"
    assert _busybox(root, info / "wg-endpointd.postinst", "configure").splitlines() == [
        f"default_postinst wg-endpointd upgrade=0 root={root}"]
    assert (root / "etc/rc.d/S95wg-endpointd").is_symlink()
    assert _busybox(root, info / "wg-endpointd.prerm", "remove").splitlines() == [
        f"default_prerm wg-endpointd upgrade=0 root={root}"]
    assert not list((root / "etc/rc.d").iterdir())


@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_icmplib_pth_only_for_pythons_that_exist(builds: dict[str, dict[str, Path]],
                                                 tmp_path: Path, fmt: str) -> None:
    root = _image_root(tmp_path)
    scripts = _unpack(root, builds[f"new-{fmt}"]["python3-icmplib"])
    info = root / "usr/lib/opkg/info"
    if fmt == "apk":
        _busybox(root, scripts["post-install"])
    else:
        _busybox(root, info / "python3-icmplib.postinst", "configure")
    pth = root / "usr/lib/python3.11/site-packages/icmplib.pth"
    assert pth.read_text() == "/usr/lib/python3-icmplib\n"
    assert sorted(p.name for p in (root / "usr/lib").iterdir()) == [
        "opkg", "python3-icmplib", "python3.11"]
    if fmt == "apk":
        _busybox(root, scripts["pre-deinstall"])
    else:
        _busybox(root, info / "python3-icmplib.prerm", "remove")
    assert not pth.exists() and (root / "usr/lib/python3.11/site-packages").is_dir()


# -- upgrades and removal on a live router (chroot) -------------------------------


def _router(tmp_path: Path, fmt: str) -> tuple[Router, Opkg | Apk]:
    router = Router(tmp_path / "router")
    return router, (Opkg(router) if fmt == "ipk" else Apk(router))


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_upgrade_runs_the_new_code(builds: dict[str, dict[str, Path]], tmp_path: Path,
                                   fmt: str, enabled: bool) -> None:
    router, manager = _router(tmp_path, fmt)
    for name in ("python3-icmplib", "wg-endpointd"):
        manager.install(builds[f"old-{fmt}"][name])
    assert router.running() == "0.1.0" and router.enabled()
    if not enabled:
        router.service("disable")
        router.service("stop")
        assert router.running() is None
    config = router.root / "etc/config/wg-endpointd"
    default = config.read_bytes()
    config.write_bytes(default + EDIT)
    router.log()
    for name in ("python3-icmplib", "wg-endpointd"):
        manager.install(builds[f"new-{fmt}"][name])
    log = router.log()
    assert router.running() == ("0.2.0" if enabled else None), log
    assert router.enabled() == enabled
    assert config.read_bytes() == default + EDIT
    assert (router.root / f"etc/config/wg-endpointd{manager.suffix}").read_bytes() == default
    assert (router.root / "usr/lib/python3.11/site-packages/icmplib.pth").is_file()
    if enabled:  # the daemon was stopped (opkg: old prerm) or restarted, then spawned anew
        assert "procd spawn wg-endpointd 0.2.0" in log


@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_removal_leaves_only_the_edited_config(builds: dict[str, dict[str, Path]],
                                               tmp_path: Path, fmt: str) -> None:
    router, manager = _router(tmp_path, fmt)
    for name in ("python3-icmplib", "wg-endpointd"):
        manager.install(builds[f"old-{fmt}"][name])
    (router.root / "etc/config/wg-endpointd").write_bytes(b"config globals 'globals'\n" + EDIT)
    for name in ("python3-icmplib", "wg-endpointd"):
        manager.install(builds[f"new-{fmt}"][name])
    for name in ("wg-endpointd", "python3-icmplib"):
        manager.remove(name)
    assert router.running() is None
    left = {p for p in router.paths() - router.base if not (router.root / p).is_dir()
            and p != "stub.log"}
    assert left == {"etc/config/wg-endpointd", f"etc/config/wg-endpointd{manager.suffix}"}
    assert not [p for p in router.paths() if (router.root / p).is_symlink()
                and not p.startswith("bin/")]
    if fmt == "apk":  # apk removes the directories it created; opkg never records them
        assert {p for p in router.paths() - router.base if (router.root / p).is_dir()} == set()


@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_upgrade_drops_the_links_of_older_builds(builds: dict[str, dict[str, Path]],
                                                 tmp_path: Path, fmt: str) -> None:
    """Builds before 3.0.4-r1 linked icmplib into site-packages of three Pythons."""
    router, manager = _router(tmp_path, fmt)
    manager.install(builds[f"old-{fmt}"]["python3-icmplib"])
    for minor in ("3.11", "3.13", "3.14"):
        site = router.root / f"usr/lib/python{minor}/site-packages"
        site.mkdir(parents=True, exist_ok=True)
        (site / "icmplib").symlink_to("../../python3-icmplib/icmplib")
    manager.install(builds[f"new-{fmt}"]["python3-icmplib"])
    assert sorted(p.name for p in (router.root / "usr/lib").iterdir()) == [
        "opkg", "python3-icmplib", "python3.11"]
    assert sorted(p.name for p in (router.root / "usr/lib/python3.11/site-packages").iterdir()
                  ) == ["icmplib.pth"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_stubs_and_package_scripts_pass_shellcheck(tmp_path: Path) -> None:
    _, defines = pkgspec.parse_makefile(REPO / "openwrt/net/wg-endpointd/Makefile")
    postinst = tmp_path / "wg-endpointd.postinst"
    postinst.write_text(pkgspec.make_unescape(defines["Package/wg-endpointd/postinst"]) + "\n")
    files = [STUBS / "functions.sh", STUBS / "rc.common", STUBS / "uci", postinst,
             *sorted((REPO / "openwrt/lang/python3-icmplib/nosdk").iterdir())]
    result = subprocess.run(["shellcheck", "-s", "sh", *map(str, files)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
