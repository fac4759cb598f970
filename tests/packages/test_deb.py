"""Issue 20: the .deb (scripts/build_deb.py): format, contents, reproducibility, and a real
dpkg install, upgrade, removal and purge into a scratch root, and lintian.

dpkg runs with `--root` and `--force-script-chrootless`: the maintainer scripts run on
this machine with DPKG_ROOT set to the scratch root, as in a chrootless bootstrap, and
must work there (no running systemd: links and deb-systemd-helper's record only). The
scratch root's status file holds stand-ins for the dependencies at Debian 12's versions,
so dpkg checks Depends instead of being told to ignore them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from scripts import build_deb, pkgspec

REPO = Path(__file__).resolve().parents[2]
BUILD = [sys.executable, str(REPO / "scripts/build_deb.py")]
UNIT = "usr/lib/systemd/system/wg-endpointd.service"
WANTS = "etc/systemd/system/multi-user.target.wants/wg-endpointd.service"
SETTINGS = "etc/wg-endpointd/wg-endpointd.toml"
DSH = "var/lib/systemd/deb-systemd-helper-enabled"
# Debian 12's versions of what the package depends on.
STAND_INS = {"python3": "3.11.2-1+b1", "python3-icmplib": "2.1.1-2",
             "wireguard-tools": "1.0.20210914-1+b1", "iproute2": "6.1.0-3"}

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (path,) = build_deb.build(tmp_path_factory.mktemp("dist"), epoch=1_700_000_000)
    return path


def tar_members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(data))) as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_file(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(data))) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def dpkg(root: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless",
                           "--force-not-root", *args], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def scratch_root(top: Path, stand_ins: dict[str, str] = STAND_INS) -> Path:
    """An empty root with a dpkg database that knows only the stand-ins."""
    root = top / "root"
    admin = root / "var/lib/dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "available").write_text("")
    (admin / "status").write_text("".join(
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        f"Maintainer: test <test@example.org>\nArchitecture: all\nVersion: {version}\n"
        f"Description: stand-in for the test\n\n" for name, version in stand_ins.items()))
    for name in stand_ins:
        (admin / "info" / f"{name}.list").write_text("")
    return root


def compiled_from(py: Path) -> bool:
    """The byte-compiled file beside `py` was made from `py` as it is now (PEP 552 header:
    source mtime and size, or source hash)."""
    pyc = Path(importlib.util.cache_from_source(str(py)))
    header, source = pyc.read_bytes()[:16], py.read_bytes()
    if int.from_bytes(header[4:8], "little") == 0:
        return (int.from_bytes(header[8:12], "little") == int(py.stat().st_mtime)
                and int.from_bytes(header[12:16], "little") == len(source))
    return header[8:16] == importlib.util.source_hash(source)


def files_in(root: Path) -> set[str]:
    """Every file and link under root, dpkg's own database left out."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if (p.is_file() or p.is_symlink()) and "var/lib/dpkg" not in str(p)}


def copy_tree(top: Path) -> Path:
    """What build_deb.py reads, copied to `top`."""
    for part in ("src", "linux", "files", "scripts", "openwrt/net/wg-endpointd/files"):
        shutil.copytree(REPO / part, top / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return top


# -- format and contents --------------------------------------------------


def test_ar_layout_and_name(deb: Path) -> None:
    assert deb.name == f"wg-endpointd_{pkgspec.read_version(REPO)}_all.deb"
    members = build_deb.members(deb)
    assert list(members) == ["debian-binary", "control.tar.xz", "data.tar.xz"]
    assert members["debian-binary"] == b"2.0\n"


def test_dpkg_deb_reads_control_and_contents(deb: Path) -> None:
    field = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True,
                           check=True).stdout
    assert "Package: wg-endpointd\n" in field and "Architecture: all\n" in field
    assert "Depends: python3 (>= 3.11), python3-icmplib, wireguard-tools" in field
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    for name in ("control", "conffiles", "md5sums", "postinst", "prerm", "postrm"):
        assert f" {name} " in info or f"  {name}\n" in info or name in info
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    paths = {line.split()[-1] for line in listing}
    for want in (f"./{UNIT}", "./usr/bin/wg-endpointd", f"./{SETTINGS}",
                 "./usr/lib/wg-endpointd/wg_endpointd/cli.py",
                 "./usr/lib/systemd/system/wg-quick@.service.d/wg-endpointd.conf",
                 "./usr/share/doc/wg-endpointd/copyright",
                 "./usr/share/doc/wg-endpointd/changelog.gz",
                 "./usr/share/man/man8/wg-endpointd.8.gz"):
        assert want in paths
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    assert {line.split()[1] for line in listing} == {"root/root"}


def test_control_members(deb: Path) -> None:
    members = build_deb.members(deb)
    control = tar_members(members["control.tar.xz"])
    assert {n: oct(m.mode) for n, m in control.items() if n.endswith("inst") or "rm" in n} == {
        "./postinst": "0o755", "./prerm": "0o755", "./postrm": "0o755"}
    conffiles = tar_file(members["control.tar.xz"], "./conffiles").decode()
    assert conffiles == f"/{SETTINGS}\n"
    md5sums = tar_file(members["control.tar.xz"], "./md5sums").decode().splitlines()
    data = tar_members(members["data.tar.xz"])
    files = {n[2:] for n, m in data.items() if m.isfile()}
    listed = {line.split("  ", 1)[1] for line in md5sums}
    assert listed == files - {SETTINGS}  # every file but the conffile, as dh_md5sums
    for line in md5sums:
        digest, name = line.split("  ", 1)
        assert hashlib.md5(tar_file(members["data.tar.xz"], f"./{name}")).hexdigest() == digest  # noqa: S324
    assert {m.mtime for m in data.values()} == {1_700_000_000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in data.values()} == {(0, 0, "root", "root")}


def test_same_commit_gives_the_same_bytes(tmp_path: Path) -> None:
    """Two copies of the tree (other paths, other file times) and two builds of each."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    digests = set()
    tree = copy_tree(tmp_path / "tree")  # one snapshot, then two copies of it
    for n, copy in enumerate(("a", "b")):
        top = tmp_path / copy
        shutil.copytree(tree, top)
        for p in top.rglob("*"):
            os.utime(p, (1_000_000 + n, 1_000_000 + n))
        for out in ("x", "y"):
            result = subprocess.run([sys.executable, str(top / "scripts/build_deb.py"), "--out",
                                     str(top / out)], env=env, capture_output=True, text=True,
                                    timeout=120, check=False)
            assert result.returncode == 0, result.stderr
            digests.add(hashlib.sha256(Path(result.stdout.strip()).read_bytes()).hexdigest())
    assert len(digests) == 1


# -- dpkg: install, upgrade, remove, purge --------------------------------


def upgraded(tmp_path: Path, version: str) -> Path:
    """A second version: a changed module and a changed settings file."""
    top = copy_tree(tmp_path / "next")
    with open(top / "src/wg_endpointd/cli.py", "a") as f:
        f.write("# upgraded\n")
    with open(top / "files" / SETTINGS, "a") as f:
        f.write("# a new comment in the shipped settings\n")
    (path,) = build_deb.build(tmp_path / "dist2", repo=top, epoch=1_700_000_100,
                              version=version)
    return path


def test_install_upgrade_remove_purge(deb: Path, tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    out = dpkg(root, "-i", str(deb))
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr, out.stderr
    # enabled the way `systemctl enable` would, and recorded by deb-systemd-helper
    assert os.readlink(root / WANTS) == f"/{UNIT}"
    assert (root / DSH / "wg-endpointd.service.dsh-also").read_text() == f"/{WANTS}\n"
    code = root / "usr/lib/wg-endpointd/wg_endpointd"
    assert (code / "__pycache__").is_dir()  # byte-compiled by postinst
    run = subprocess.run([str(root / "usr/bin/wg-endpointd"), "--version"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.stdout.strip() == f"wg-endpointd {pkgspec.read_version(REPO)}"
    verify = dpkg(root, "--verify", "wg-endpointd")
    assert verify.returncode == 0 and verify.stdout == "", verify.stdout

    settings = root / SETTINGS
    settings.write_text(settings.read_text() + "\n[globals]\nlog_level = \"debug\"\n")
    edited = settings.read_text()
    nxt = upgraded(tmp_path, f"{pkgspec.read_version(REPO)}+up1")
    out = dpkg(root, "--force-confold", "-i", str(nxt))
    assert out.returncode == 0, out.stderr
    assert (code / "cli.py").read_text().endswith("# upgraded\n")
    assert settings.read_text() == edited  # the administrator's settings stay
    assert (root / f"{SETTINGS}.dpkg-dist").is_file()  # the new default beside them
    assert compiled_from(code / "cli.py")  # compiled again, from the new code
    assert os.readlink(root / WANTS) == f"/{UNIT}"

    out = dpkg(root, "-r", "wg-endpointd")
    assert out.returncode == 0, out.stderr
    left = files_in(root)
    assert left == {SETTINGS, f"{SETTINGS}.dpkg-dist", WANTS,
                    "etc/systemd/system/wg-endpointd.service",  # deb-systemd-helper's mask
                    f"{DSH}/wg-endpointd.service.dsh-also",
                    f"{DSH}/multi-user.target.wants/wg-endpointd.service",
                    "var/lib/systemd/deb-systemd-helper-masked/wg-endpointd.service"}
    assert settings.read_text() == edited
    assert not (root / "usr/lib/wg-endpointd").exists()  # __pycache__ went with the code

    out = dpkg(root, "-P", "wg-endpointd")
    assert out.returncode == 0, out.stderr
    assert files_in(root) == set()


def test_dependencies_are_checked(deb: Path, tmp_path: Path) -> None:
    old = {**STAND_INS, "python3": "3.9.2-3"}  # Debian 11's
    out = dpkg(scratch_root(tmp_path, old), "-i", str(deb))
    assert out.returncode != 0 and "python3 (>= 3.11)" in out.stderr


def test_without_deb_systemd_helper_the_link_is_made_by_hand(deb: Path, tmp_path: Path) -> None:
    """A dpkg system without init-system-helpers: postinst makes the [Install] link itself
    and purge removes it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for tool in Path(folder).iterdir() if Path(folder).is_dir() else ():
            if not tool.name.startswith("deb-systemd-") and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    root = scratch_root(tmp_path)
    out = dpkg(root, "-i", str(deb), path=str(bin_dir))
    assert out.returncode == 0, out.stderr
    assert os.readlink(root / WANTS) == f"/{UNIT}"
    assert not (root / DSH).exists()
    assert dpkg(root, "-P", "wg-endpointd", path=str(bin_dir)).returncode == 0
    assert files_in(root) == set()


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian is not installed")
def test_lintian_finds_no_errors_or_warnings(deb: Path) -> None:
    out = subprocess.run(["lintian", "--no-tag-display-limit", str(deb)], capture_output=True,
                         text=True, timeout=600, check=False)
    tags = [line for line in out.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], out.stdout
