"""The OpenWrt .ipk packages: format, contents, maintainer scripts, dependencies.

Builds wg-endpointd and python3-icmplib with scripts/build_ipk.py (no SDK)
and checks them the way opkg and OpenWrt's own tools would see them. The
.apk side is in test_apk.py, scripts and upgrades in test_pkg_scripts.py.
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

from scripts import build_ipk, openwrt_py_split, pkgfiles, pkgspec

REPO = Path(__file__).resolve().parent.parent
BUILD = [sys.executable, str(REPO / "scripts/build_ipk.py")]
OUTER = ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
WG_MAKEFILE = "openwrt/net/wg-endpointd/Makefile"
ICMPLIB_MAKEFILE = "openwrt/lang/python3-icmplib/Makefile"
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


def test_version_is_written_once() -> None:
    """__version__ is the only place: pyproject and the feed Makefile read it."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "wg_endpointd.__version__"}
    variables, _ = pkgspec.parse_makefile(REPO / WG_MAKEFILE)
    assert variables["PKG_VERSION"].startswith(pkgspec.VERSION_FROM_CODE)
    for makefile in (WG_MAKEFILE, ICMPLIB_MAKEFILE):
        text = (REPO / makefile).read_text()
        assert not re.search(r"^PKG_VERSION:=\d", text, re.M) or makefile == ICMPLIB_MAKEFILE
        assert re.search(r"^PKG_RELEASE:=[1-9]\d*$", text, re.M), makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_makefile_version_line_reads_the_code(tmp_path: Path) -> None:
    """GNU make, given the Makefile's PKG_VERSION line, prints __version__."""
    line = next(x for x in (REPO / WG_MAKEFILE).read_text().splitlines()
                if x.startswith("PKG_VERSION:="))
    probe = tmp_path / "probe.mk"
    for version in ("0.1.0", "7.12.3"):
        init = tmp_path / "src/wg_endpointd/__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(f'"""x"""\n\n__version__ = "{version}"\n')
        probe.write_text(f"WG_ENDPOINTD_TOP:={tmp_path}\n{line}\nall:\n\t@echo $(PKG_VERSION)\n")
        out = subprocess.run(["make", "-s", "-f", str(probe)], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
        assert out == version == pkgspec.read_version(tmp_path)


def test_feed_makefiles_are_valid_for_opkg_and_apk() -> None:
    (wg,) = pkgfiles.packages(REPO, specs=pkgfiles.SPECS[:1])
    variables, _ = pkgspec.parse_makefile(REPO / ICMPLIB_MAKEFILE)
    assert pkgspec.pkg_version(REPO, variables, REPO / ICMPLIB_MAKEFILE) == ("3.0.4", "1")
    assert wg.version == f"{pkgspec.read_version(REPO)}-r1"
    assert wg.conffiles == ("/etc/config/wg-endpointd",)
    assert variables["PYPI_NAME"] == "icmplib"
    assert re.fullmatch(r"[0-9a-f]{64}", variables["PKG_HASH"])


def test_feed_makefile_installs_every_router_file_directory() -> None:
    """A new folder under files/ must reach the SDK package too, not only `make ipk`."""
    makefile = (REPO / WG_MAKEFILE).read_text()
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
