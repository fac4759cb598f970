"""A fake router root and two small package managers that act like opkg and apk.

What they do is what openwrt-facts.md §7 records of real opkg-lede and
apk-tools 3.0, reduced to one package at a time:

- opkg: an upgrade runs the old prerm ("upgrade <new version>"), unpacks,
  removes files the new version dropped, then runs the new postinst
  ("configure"); PKG_UPGRADE=1 is set for both. An edited conffile stays,
  the new default lands next to it as <file>-opkg. Removal runs the prerm
  ("remove") and leaves edited conffiles and every directory.
- apk: an upgrade unpacks and runs only the new post-upgrade; edited files
  under /etc stay, the new one lands as <file>.apk-new. Removal runs
  pre-deinstall, leaves edited /etc files and removes the package's
  directories that became empty.

Scripts run chrooted into the root with busybox as /bin/sh, as on a router.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from scripts import build_ipk
from tests import adb_reader

STUBS = Path(__file__).resolve().parent / "shell"
SERVICE_STATE = "var/run/procd-stub/wg-endpointd"


@dataclasses.dataclass
class Pkg:
    """One package as a manager sees it: files, conffiles, scripts."""

    name: str
    version: str
    files: dict[str, tuple[int, bytes]]  # path -> (mode, data)
    dirs: set[str]
    conffiles: set[str]
    scripts: dict[str, bytes]  # ipk: control files; apk: ADB script names


def read_ipk(path: Path) -> Pkg:
    """Return the files and control files of an .ipk."""
    control = build_ipk.read_control(path)
    fields = dict(re.findall(r"^(\w[\w-]*): (.*)$", control["control"].decode(), re.M))
    files, dirs = {}, set()
    with tarfile.open(fileobj=io.BytesIO(build_ipk.read_ipk(path)["data.tar.gz"])) as tar:
        for m in tar.getmembers():
            rel = m.name.removeprefix("./")
            extracted = tar.extractfile(m) if m.isfile() else None
            if extracted is not None:
                files[rel] = (m.mode & 0o7777, extracted.read())
            elif m.isdir() and rel not in (".", ""):
                dirs.add(rel)
    conffiles = {c.lstrip("/") for c in control.get("conffiles", b"").decode().split()}
    return Pkg(fields["Package"], fields["Version"], files, dirs, conffiles, control)


def read_apk(path: Path) -> Pkg:
    """Return the files and scripts of an .apk, read with the test's ADB reader."""
    parsed = adb_reader.parse(path.read_bytes())
    files, dirs = {}, set()
    for rel, f in adb_reader.installed_files(parsed).items():
        if rel.endswith("/"):
            dirs.add(rel.rstrip("/"))
        else:
            files[rel] = (f["acl"]["mode"], f.get("data", b""))
    etc = {p for p in files if p.startswith("etc/")}  # apk protects all of /etc
    info = parsed.root["info"]
    return Pkg(info["name"], info["version"], files, dirs, etc, parsed.root.get("scripts", {}))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Router:
    """A chroot-able root with busybox and the OpenWrt stubs from tests/shell."""

    def __init__(self, root: Path) -> None:
        busybox, chroot = shutil.which("busybox"), shutil.which("chroot")
        if busybox is None or chroot is None or os.geteuid() != 0:
            pytest.skip("needs root, chroot and busybox")
        self.root, self.chroot = root, chroot
        for d in ("bin", "sbin", "lib", "etc/rc.d", "etc/config", "tmp", "var/run/procd-stub",
                  "usr/lib/python3.11/site-packages", "usr/lib/opkg/info"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "usr/lib/python3.11/os.pyc").write_bytes(b"")  # the router's Python 3.11
        (root / "dev").mkdir()
        os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        shutil.copy(busybox, root / "bin/busybox")
        ldd = subprocess.run(["ldd", busybox], capture_output=True, text=True,
                             check=False, timeout=30).stdout
        for lib in re.findall(r"(/\S+) \(0x", ldd):
            (root / lib.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lib, root / lib.lstrip("/"))
        result = subprocess.run([chroot, str(root), "/bin/busybox", "--install", "-s", "/bin"],
                                capture_output=True, text=True, check=False, timeout=30)
        if result.returncode != 0:
            pytest.skip(f"chroot not possible here: {result.stderr.strip()}")
        shutil.copy(STUBS / "functions.sh", root / "lib/functions.sh")
        shutil.copy(STUBS / "rc.common", root / "etc/rc.common")
        shutil.copy(STUBS / "uci", root / "sbin/uci")
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(STUBS / "python3-config-check", root / "usr/bin/python3")
        os.chmod(root / "usr/bin/python3", 0o755)
        self.base = self.paths()

    def paths(self) -> set[str]:
        """Every file, link and directory under the root, relative."""
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*")}

    def service(self, action: str) -> None:
        """Run /etc/init.d/wg-endpointd ACTION through its #! line, as a user would."""
        self.run("/etc/init.d/wg-endpointd", action, direct=True)

    def run(self, script: str, *args: str, env: dict[str, str] | None = None,
            direct: bool = False) -> None:
        """Run a script inside the root with busybox sh; fail the test on error."""
        argv = [script] if direct else ["/bin/sh", script]
        result = subprocess.run([self.chroot, str(self.root), *argv, *args],
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})},
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{script} {args}: {result.stderr}"

    def log(self) -> list[str]:
        """Return and clear what the stubs recorded."""
        path = self.root / "stub.log"
        lines = path.read_text().splitlines() if path.exists() else []
        path.unlink(missing_ok=True)
        return lines

    def running(self) -> str | None:
        """Return the wg-endpointd version procd would be running, or None."""
        state = self.root / SERVICE_STATE
        if not state.exists():
            return None
        return dict(line.split("=", 1) for line in state.read_text().splitlines())["version"]

    def enabled(self) -> bool:
        return any(p.name.startswith("S") for p in (self.root / "etc/rc.d").glob("S*wg-endpointd"))

    def write(self, rel: str, mode: int, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(data)
        path.chmod(mode)

    def modified(self, rel: str, original: bytes) -> bool:
        path = self.root / rel
        return path.is_file() and _sha(path.read_bytes()) != _sha(original)


class Opkg:
    """Installs, upgrades and removes .ipk files the way opkg-lede does."""

    suffix = "-opkg"

    def __init__(self, router: Router) -> None:
        self.router = router
        self.installed: dict[str, Pkg] = {}
        self.info = "usr/lib/opkg/info"

    def _script(self, name: str, script: str, *args: str, upgrade: bool) -> None:
        if (self.router.root / self.info / f"{name}.{script}").exists():
            env = {"PKG_UPGRADE": "1"} if upgrade else {}
            self.router.run(f"/{self.info}/{name}.{script}", *args, env=env)

    def install(self, path: Path) -> None:
        new = read_ipk(path)
        old = self.installed.get(new.name)
        if old:
            self._script(old.name, "prerm", "upgrade", new.version, upgrade=True)
        for rel, (mode, data) in new.files.items():
            original = old.files.get(rel, (0, b""))[1] if old else b""
            if rel in new.conffiles and old and self.router.modified(rel, original):
                self.router.write(rel + self.suffix, mode, data)
            else:
                self.router.write(rel, mode, data)
        dropped = old.files.keys() - new.files.keys() if old else set()
        for rel in dropped:
            assert old is not None
            if not (rel in old.conffiles and self.router.modified(rel, old.files[rel][1])):
                (self.router.root / rel).unlink(missing_ok=True)
        listing = "".join(f"/{p}\n" for p in sorted(new.files))
        self.router.write(f"{self.info}/{new.name}.list", 0o644, listing.encode())
        for key, data in new.scripts.items():
            self.router.write(f"{self.info}/{new.name}.{key}", 0o755, data)
        self.installed[new.name] = new
        self._script(new.name, "postinst", "configure", upgrade=old is not None)

    def remove(self, name: str) -> None:
        pkg = self.installed.pop(name)
        self._script(name, "prerm", "remove", upgrade=False)
        for rel, (_, data) in pkg.files.items():
            if not (rel in pkg.conffiles and self.router.modified(rel, data)):
                (self.router.root / rel).unlink(missing_ok=True)
        for p in (self.router.root / self.info).glob(f"{name}.*"):
            p.unlink()


class Apk:
    """Installs, upgrades and removes .apk files the way apk-tools 3 does."""

    suffix = ".apk-new"

    def __init__(self, router: Router) -> None:
        self.router = router
        self.installed: dict[str, Pkg] = {}

    def _script(self, pkg: Pkg, which: str, *args: str) -> None:
        if which in pkg.scripts:
            self.router.write("tmp/apk-script", 0o755, pkg.scripts[which])
            self.router.run("/tmp/apk-script", *args)
            (self.router.root / "tmp/apk-script").unlink()

    def install(self, path: Path) -> None:
        new = read_apk(path)
        old = self.installed.get(new.name)
        for d in sorted(new.dirs):
            (self.router.root / d).mkdir(parents=True, exist_ok=True)
        for rel, (mode, data) in new.files.items():
            disk = self.router.root / rel
            known = old.files.get(rel, (0, data))[1] if old else data
            if rel in new.conffiles and disk.exists() and self.router.modified(rel, known):
                self.router.write(rel + self.suffix, mode, data)
            else:
                self.router.write(rel, mode, data)
        if old:
            for rel in set(old.files) - set(new.files):
                (self.router.root / rel).unlink(missing_ok=True)
            self._prune(old.dirs - new.dirs)
        self.installed[new.name] = new
        if old:
            self._script(new, "post-upgrade", new.version, old.version)
        else:
            self._script(new, "post-install", new.version)

    def _prune(self, dirs: set[str]) -> None:
        for d in sorted(dirs, key=len, reverse=True):
            path = self.router.root / d
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def remove(self, name: str) -> None:
        pkg = self.installed.pop(name)
        self._script(pkg, "pre-deinstall", pkg.version)
        for rel, (_, data) in pkg.files.items():
            if not (rel in pkg.conffiles and self.router.modified(rel, data)):
                (self.router.root / rel).unlink(missing_ok=True)
        self._prune(pkg.dirs)
