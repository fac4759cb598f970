"""The OpenWrt packages: ipk format, contents, maintainer scripts, dependencies.

Builds wg-endpointd and python3-icmplib with scripts/build_ipk.py (no SDK)
and checks them the way opkg and OpenWrt's own tools would see them.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from scripts import build_ipk, openwrt_py_split

REPO = Path(__file__).resolve().parent.parent
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

# Stand-in for base-files' /lib/functions.sh: how default_postinst and
# default_prerm treat the package's init scripts (listed in <pkg>.list).
FUNCTIONS_SH = r"""
_initscripts() {
	grep -s '^/etc/init.d/' "${IPKG_INSTROOT}/usr/lib/opkg/info/$(basename "${1%.*}").list"
}
default_postinst() {
	echo "default_postinst $*" >> "${IPKG_INSTROOT}/calls"
	for i in $(_initscripts "$1"); do
		if [ -n "${IPKG_INSTROOT}" ]; then
			sh "${IPKG_INSTROOT}/etc/rc.common" "${IPKG_INSTROOT}$i" enable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" enable
			"$i" start
		fi
	done
}
default_prerm() {
	echo "default_prerm $*" >> "${IPKG_INSTROOT}/calls"
	for i in $(_initscripts "$1"); do
		if [ -n "${IPKG_INSTROOT}" ]; then
			sh "${IPKG_INSTROOT}/etc/rc.common" "${IPKG_INSTROOT}$i" disable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" disable
			"$i" stop
		fi
	done
}
"""
# Stand-in for /etc/rc.common: records "<init script> <action>".
RC_COMMON = '#!/bin/sh\necho "rc.common ${1#${IPKG_INSTROOT}} $2" >> "${IPKG_INSTROOT}/calls"\n'


@pytest.fixture(scope="module")
def ipks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both packages, built once into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    try:
        paths = build_ipk.build(out)
    except build_ipk.BuildError as exc:
        if "could not download" in str(exc) and os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") != "1":
            pytest.skip(f"icmplib sdist unavailable: {exc}")
        raise
    return {p.name.split("_")[0]: p for p in paths}


@pytest.fixture(scope="module")
def root(ipks: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary root with both packages installed (data only, plus opkg info)."""
    top = tmp_path_factory.mktemp("root")
    for ipk in ipks.values():
        build_ipk.extract_into(ipk, top, opkg_info=True)
    return top


def control_fields(ipk: Path) -> dict[str, str]:
    """Parse the control file: "Key: value" lines, continuation lines start with a space."""
    fields: dict[str, str] = {}
    key = ""
    for line in build_ipk.read_control(ipk)["control"].decode().splitlines():
        if line.startswith(" "):
            fields[key] += "\n" + line[1:]
        else:
            key, _, value = line.partition(": ")
            fields[key] = value.strip()
    return fields


def depends(ipk: Path) -> list[str]:
    """Return the Depends field as a list of package names."""
    return [d.strip() for d in control_fields(ipk)["Depends"].split(",")]


def data_members(ipk: Path) -> dict[str, tarfile.TarInfo]:
    """Return data.tar.gz's members by path ("usr/bin/wg-endpointd")."""
    with tarfile.open(ipk, "r:gz") as outer:
        data = outer.extractfile("./data.tar.gz").read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


# -- format ---------------------------------------------------------------


def test_file_names_carry_version_and_arch(ipks: dict[str, Path]) -> None:
    version = build_ipk.read_version(REPO)
    assert ipks["wg-endpointd"].name == f"wg-endpointd_{version}-1_all.ipk"
    assert ipks["python3-icmplib"].name == "python3-icmplib_3.0.4-1_all.ipk"


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
    expected = ["./", "./control", "./postinst", "./prerm"]
    if name == "wg-endpointd":
        expected.insert(1, "./conffiles")
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
    assert fields["Version"] == f"{build_ipk.read_version(REPO)}-1"
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
    assert fields["Version"] == "3.0.4-1"
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


def test_feed_makefiles_agree_with_the_code() -> None:
    """PKG_VERSION/PKG_RELEASE are valid for opkg and apk and match __version__."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wg = build_ipk.read_feed_package(REPO, build_ipk.WG_MAKEFILE)
    icmp = build_ipk.read_feed_package(REPO, build_ipk.ICMPLIB_MAKEFILE)
    assert wg.pkg_version == build_ipk.read_version(REPO) == pyproject["project"]["version"]
    for pkg in (wg, icmp):
        assert re.fullmatch(r"\d+\.\d+\.\d+", pkg.pkg_version)
        assert re.fullmatch(r"[1-9]\d*", pkg.pkg_release)
    assert wg.conffiles == ("/etc/config/wg-endpointd",)
    assert icmp.variables["PYPI_NAME"] == "icmplib"
    assert re.fullmatch(r"[0-9a-f]{64}", icmp.variables["PKG_HASH"])


def test_feed_makefile_installs_every_router_file_directory() -> None:
    """A new folder under files/ must reach the SDK package too, not only `make ipk`."""
    makefile = (REPO / build_ipk.WG_MAKEFILE).read_text()
    folders = {str(p.parent.relative_to(REPO)) for p in (REPO / "files").rglob("*")
               if p.is_file()}
    assert [f for f in sorted(folders) if f"$(PKG_BUILD_DIR)/{f}" not in makefile] == []


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
        if path.is_file():
            assert path.relative_to(REPO / "files").as_posix() in members
    modes = {n: stat.S_IMODE(m.mode) for n, m in members.items() if m.isfile()}
    assert modes["usr/bin/wg-endpointd"] == 0o755
    assert modes["etc/config/wg-endpointd"] == 0o600
    assert modes["etc/init.d/wg-endpointd"] == 0o755
    assert {modes[n] for n in modes if n.startswith("etc/hotplug.d/iface/")} == {0o644}
    assert {modes[n] for n in modes if n.startswith("etc/uci-defaults/")} <= {0o755}
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())


def test_icmplib_is_installed_once_and_linked_for_each_python(ipks: dict[str, Path]) -> None:
    members = data_members(ipks["python3-icmplib"])
    assert "usr/lib/python3-icmplib/icmplib/__init__.py" in members
    for minor in ("3.11", "3.13", "3.14"):
        link = members[f"usr/lib/python{minor}/site-packages/icmplib"]
        assert link.issym() and link.linkname == "../../python3-icmplib/icmplib"
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
        assert len(result.stdout.split()) == 2
    first = _sha256s(tmp_path / "a")
    assert len(first) == 2
    assert first == _sha256s(tmp_path / "b")


def test_source_date_epoch_sets_every_timestamp(ipks: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1234567890"}
    subprocess.run([*BUILD, "--out", str(tmp_path)], env=env, check=True, capture_output=True)
    ipk = tmp_path / ipks["wg-endpointd"].name
    assert control_fields(ipk)["SourceDateEpoch"] == "1234567890"
    with tarfile.open(ipk, "r:gz") as outer:
        assert {m.mtime for m in outer.getmembers()} == {1234567890}
    assert {m.mtime for m in data_members(ipk).values()} == {1234567890}


# -- installed behaviour ----------------------------------------------------


def test_installed_launcher_runs_with_this_python(root: Path, tmp_path: Path) -> None:
    if not (REPO / "src/wg_endpointd/cli.py").is_file():
        pytest.skip("src/wg_endpointd/cli.py is not written yet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([sys.executable, str(root / "usr/bin/wg-endpointd"), "--help"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    assert not list((root / "usr/lib").rglob("__pycache__")), "bytecode written to /usr/lib"


def test_launcher_imports_the_installed_copies(root: Path, tmp_path: Path) -> None:
    """Both wg_endpointd and icmplib come from the install root, not from the checkout."""
    if not (REPO / "src/wg_endpointd/cli.py").is_file():
        pytest.skip("src/wg_endpointd/cli.py is not written yet")
    launcher = root / "usr/bin/wg-endpointd"
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(launcher)!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(launcher)!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import icmplib, wg_endpointd\n"
        "print('@@', wg_endpointd.__file__, icmplib.__file__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    wg_file, icmp_file = result.stdout.split("@@")[1].split()
    assert Path(wg_file).is_relative_to(root / "usr/lib/wg-endpointd")
    assert Path(icmp_file).is_relative_to(root / "usr/lib/python3-icmplib")


def test_icmplib_is_importable_through_site_packages(root: Path, tmp_path: Path) -> None:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = root / f"usr/lib/python{minor}/site-packages"
    if minor not in build_ipk.PYTHON_MINORS:
        pytest.skip(f"no OpenWrt release ships Python {minor}")
    code = (f"import sys; sys.path.insert(0, {str(site)!r}); "
            "import icmplib; print(icmplib.__version__, icmplib.__file__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    version, where = result.stdout.split()
    assert version == "3.0.4"
    assert Path(where).is_relative_to(site)


# -- maintainer scripts -----------------------------------------------------


def _run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(script), *args], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30, check=False)


def _fake_router(root: Path, ipk: Path) -> Path:
    build_ipk.extract_into(ipk, root, opkg_info=True)
    (root / "lib").mkdir(exist_ok=True)
    (root / "lib/functions.sh").write_text(FUNCTIONS_SH)
    (root / "etc/rc.common").write_text(RC_COMMON)
    return root / "usr/lib/opkg/info/wg-endpointd.postinst"


def test_postinst_without_functions_sh_exits_quietly(ipks: dict[str, Path],
                                                     tmp_path: Path) -> None:
    build_ipk.extract_into(ipks["wg-endpointd"], tmp_path, opkg_info=True)
    info = tmp_path / "usr/lib/opkg/info"
    for script in ("wg-endpointd.postinst", "wg-endpointd.prerm"):
        result = _run(info / script, env={"IPKG_INSTROOT": str(tmp_path)})
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_postinst_honours_ipkg_no_script(ipks: dict[str, Path], tmp_path: Path) -> None:
    postinst = _fake_router(tmp_path, ipks["wg-endpointd"])
    result = _run(postinst, env={"IPKG_INSTROOT": str(tmp_path), "IPKG_NO_SCRIPT": "1"})
    assert result.returncode == 0
    assert not (tmp_path / "calls").exists()


def test_image_build_only_enables_the_service(ipks: dict[str, Path], tmp_path: Path) -> None:
    """With IPKG_INSTROOT set nothing runs; the init script is only enabled in the image."""
    postinst = _fake_router(tmp_path, ipks["wg-endpointd"])
    result = _run(postinst, "configure", env={"IPKG_INSTROOT": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"default_postinst {postinst} configure",
        "rc.common /etc/init.d/wg-endpointd enable",
    ]


def _busybox_chroot(root: Path) -> str:
    """Make `root` usable with chroot (busybox as /bin/sh); return the chroot command."""
    busybox, chroot = shutil.which("busybox"), shutil.which("chroot")
    if busybox is None or chroot is None or os.geteuid() != 0:
        pytest.skip("needs root, chroot and busybox")
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy(busybox, root / "bin/busybox")
    ldd = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False).stdout
    for lib in re.findall(r"(/\S+) \(0x", ldd):
        (root / lib.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, root / lib.lstrip("/"))
    result = subprocess.run([chroot, str(root), "/bin/busybox", "--install", "-s", "/bin"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"chroot not possible here: {result.stderr.strip()}")
    return chroot


def _in_chroot(chroot: str, root: Path, script: str, *args: str, **env: str) -> str:
    result = subprocess.run([chroot, str(root), "/bin/sh", script, *args],
                            env={"PATH": "/bin", **env}, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    calls = root / "calls"
    text = calls.read_text() if calls.exists() else ""
    calls.unlink(missing_ok=True)
    return text


def test_live_install_enables_and_starts_and_removal_stops(ipks: dict[str, Path],
                                                           tmp_path: Path) -> None:
    _fake_router(tmp_path, ipks["wg-endpointd"])
    chroot = _busybox_chroot(tmp_path)
    info = "/usr/lib/opkg/info"
    assert _in_chroot(chroot, tmp_path, f"{info}/wg-endpointd.postinst", "configure").splitlines() == [
        f"default_postinst {info}/wg-endpointd.postinst configure",
        "rc.common /etc/init.d/wg-endpointd enable",
        "rc.common /etc/init.d/wg-endpointd start",
    ]
    # opkg sets PKG_UPGRADE=1 on upgrades: keep the user's enable/disable choice.
    assert _in_chroot(chroot, tmp_path, f"{info}/wg-endpointd.postinst", "configure",
                      PKG_UPGRADE="1").splitlines()[1:] == [
        "rc.common /etc/init.d/wg-endpointd start"]
    assert _in_chroot(chroot, tmp_path, f"{info}/wg-endpointd.prerm", "remove").splitlines() == [
        f"default_prerm {info}/wg-endpointd.prerm remove",
        "rc.common /etc/init.d/wg-endpointd disable",
        "rc.common /etc/init.d/wg-endpointd stop",
    ]


# -- uci-defaults migration -------------------------------------------------

FAKE_UCI = r'''#!PYTHON
"""Just enough of uci(1) for the migration: -q get/set/delete/commit on one flat file."""
import json, os, sys
store = os.environ["FAKE_UCI_STORE"]
data = json.load(open(store))
args = [a for a in sys.argv[1:] if a != "-q"]
cmd, arg = args[0], (args[1] if len(args) > 1 else "")
if cmd == "get":
    if arg not in data:
        sys.exit(1)
    print(data[arg])
elif cmd == "set":
    key, _, value = arg.partition("=")
    if key.count(".") == 2 and key.rsplit(".", 1)[0] not in data:
        sys.exit(1)
    data[key] = value
elif cmd == "delete":
    data = {k: v for k, v in data.items() if k != arg and not k.startswith(arg + ".")}
elif cmd == "commit":
    data.setdefault("#commits", 0)
    data["#commits"] += 1
json.dump(data, open(store, "w"))
'''


def _migrate(tmp_path: Path, state: dict[str, str], runs: int = 2) -> dict[str, object]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    uci = bindir / "uci"
    uci.write_text(FAKE_UCI.replace("PYTHON", sys.executable))
    uci.chmod(0o755)
    store = tmp_path / "store.json"
    store.write_text(json.dumps(state))
    script = REPO / "files/etc/uci-defaults/90-wg-endpointd"
    for _ in range(runs):
        result = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False,
                                env={"PATH": f"{bindir}:{os.environ['PATH']}",
                                     "FAKE_UCI_STORE": str(store)})
        assert result.returncode == 0, result.stderr
    data = json.loads(store.read_text())
    data.pop("#commits", None)
    return data


def test_migration_renames_timeout_and_is_idempotent(tmp_path: Path) -> None:
    before = {"wg-endpointd.globals": "globals", "wg-endpointd.globals.timeout": "3"}
    assert _migrate(tmp_path, before) == {
        "wg-endpointd.globals": "globals", "wg-endpointd.globals.probe_timeout": "3"}


def test_migration_keeps_a_value_set_under_the_new_name(tmp_path: Path) -> None:
    before = {"wg-endpointd.globals": "globals", "wg-endpointd.globals.timeout": "3",
              "wg-endpointd.globals.probe_timeout": "1.5"}
    assert _migrate(tmp_path, before) == {
        "wg-endpointd.globals": "globals", "wg-endpointd.globals.probe_timeout": "1.5"}


def test_migration_adds_a_missing_globals_section(tmp_path: Path) -> None:
    assert _migrate(tmp_path, {}) == {"wg-endpointd.globals": "globals"}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_migration_passes_shellcheck() -> None:
    script = REPO / "files/etc/uci-defaults/90-wg-endpointd"
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout


# -- declared dependencies ----------------------------------------------------


def _needs(code_root: Path, package_dir: str) -> tuple[set[str], set[str]]:
    """Return (stdlib modules, other top-level modules) imported by an installed package."""
    own = package_dir.split("/")[-1]
    found = openwrt_py_split.code_imports(code_root, [code_root / own])
    stdlib = {m for m in found if openwrt_py_split.is_stdlib(m)}
    removed = {m for m in stdlib if openwrt_py_split.top(m) in openwrt_py_split.REMOVED}
    assert not removed, f"{own} imports modules gone by Python 3.14: {sorted(removed)}"
    stdlib = {m for m in stdlib if openwrt_py_split.exists(m)}
    others = {openwrt_py_split.top(m) for m in found
              if not openwrt_py_split.is_stdlib(m)} - {own}
    return stdlib, others


@pytest.mark.parametrize(("name", "code_root", "package_dir", "third_party"), [
    ("wg-endpointd", "usr/lib/wg-endpointd", "wg_endpointd", {"icmplib": "python3-icmplib"}),
    ("python3-icmplib", "usr/lib/python3-icmplib", "icmplib", {}),
])
def test_declared_depends_provide_every_imported_module(
        ipks: dict[str, Path], root: Path, name: str, code_root: str, package_dir: str,
        third_party: dict[str, str]) -> None:
    """Every stdlib module the installed code loads comes from a declared package.

    Imports are followed through the stdlib (asyncio loads logging, for
    example), mapped to OpenWrt's python3 split packages, and compared with
    Depends. Declared python3-* packages that nothing needs fail too.
    """
    stdlib, others = _needs(root / code_root, package_dir)
    print(f"\n{name} imports from the stdlib: {' '.join(sorted(stdlib))}")
    assert others <= set(third_party), f"undeclared third-party imports: {others}"
    closure = openwrt_py_split.stdlib_closure(stdlib)
    required = openwrt_py_split.required_packages(closure)
    for pkg, modules in sorted(required.items()):
        print(f"  {pkg}: {' '.join(sorted(m for m in modules if m in stdlib) or ['(indirect)'])}")
    declared = set(depends(ipks[name])) - {"libc"}
    needed = set(required) | {third_party[m] for m in others}
    provided = openwrt_py_split.expand(declared)
    missing = {pkg: sorted(required.get(pkg, [pkg])) for pkg in needed - provided}
    assert not missing, f"{name}: Depends lacks {missing}"
    split = {d for d in declared if d.startswith("python3-") and d != "python3-light"}
    assert split <= needed, f"{name}: Depends has unneeded {sorted(split - needed)}"
