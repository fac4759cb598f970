"""The files of each package, and the list of packages (`SPECS`).

To add a package, write a lister (context, Makefile variables, Makefile
path -> entries) and append a `Spec` to `SPECS`.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from scripts.pkgspec import (
    REPO,
    BuildError,
    Context,
    Entry,
    Package,
    Spec,
    literal,
    pkg_version,
    read_package,
)

LAUNCHER = "openwrt/net/wg-endpointd/files/launcher.py"
ICMPLIB_DIR = "usr/lib/python3-icmplib"  # where the launcher looks for icmplib
LINUX_ONLY = "etc/wg-endpointd/"  # files/ that only the .deb installs (build_deb.py)


def tree_files(top: Path, *, python_only: bool = False) -> Iterable[tuple[PurePosixPath, Path]]:
    """Yield (relative path, path) for the files under `top`, sorted, no caches or backups."""
    for path in sorted(top.rglob("*")):
        rel = PurePosixPath(path.relative_to(top).as_posix())
        if not path.is_file() or "__pycache__" in rel.parts or rel.name.endswith("~"):
            continue
        if python_only and path.suffix != ".py":
            continue
        yield rel, path


def _source_mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def _router_file_mode(rel: PurePosixPath, source: Path) -> int:
    """The mode the feed Makefile's install step gives a file from files/."""
    parts = rel.parts
    if parts[:2] == ("etc", "config"):
        return 0o600  # INSTALL_CONF
    if parts[:2] in (("etc", "init.d"), ("etc", "uci-defaults"), ("usr", "bin"),
                     ("usr", "sbin"), ("usr", "libexec")):
        return 0o755  # INSTALL_BIN (usr/libexec: the start wrapper procd runs)
    if parts[:2] == ("etc", "hotplug.d"):
        return 0o644  # sourced, not executed
    return _source_mode(source)


def wg_endpointd_files(ctx: Context, variables: dict[str, str], makefile: Path) -> list[Entry]:
    """The daemon's code under /usr/lib/wg-endpointd, its launcher and files/.

    files/ mirrors the router: the init and hotplug scripts, the config, the
    uci-defaults script and /usr/libexec/wg-endpointd/wg-endpointd, the start
    wrapper the init script hands procd (its file name is the tag of the
    daemon's log lines).
    """
    code = ctx.repo / "src/wg_endpointd"
    entries = [Entry(f"usr/lib/wg-endpointd/wg_endpointd/{rel}", 0o644, path.read_bytes())
               for rel, path in tree_files(code, python_only=True)]
    if not any(e.path.endswith("wg_endpointd/__init__.py") for e in entries):
        raise BuildError(f"{code}: no __init__.py")
    entries.append(Entry("usr/bin/wg-endpointd", 0o755, (ctx.repo / LAUNCHER).read_bytes()))
    entries += [Entry(str(rel), _router_file_mode(rel, path), path.read_bytes())
                for rel, path in tree_files(ctx.repo / "files")
                if not str(rel).startswith(LINUX_ONLY)]
    return entries


def luci_files(ctx: Context, variables: dict[str, str], makefile: Path) -> list[Entry]:
    """luci.mk's layout: htdocs/ under /www, root/ under /, modes kept (cp -pR)."""
    entries = []
    for folder, prefix in (("htdocs", "www/"), ("root", "")):
        for rel, path in tree_files(makefile.parent / folder):
            entries.append(Entry(f"{prefix}{rel}", _source_mode(path), path.read_bytes()))
    if not entries:
        raise BuildError(f"{makefile.parent}: no htdocs/ or root/ files")
    return entries


def collector_files(ctx: Context, variables: dict[str, str], makefile: Path) -> list[Entry]:
    """A prometheus-node-exporter-lua collector: files/ as its install step puts it
    (INSTALL_DATA, 0644: the exporter require()s the .lua files)."""
    entries = [Entry(str(rel), 0o644, path.read_bytes())
               for rel, path in tree_files(makefile.parent / "files")]
    if not entries:
        raise BuildError(f"{makefile.parent}: no files/")
    return entries


# -- icmplib ------------------------------------------------------------------


def fetch_icmplib_sdist(variables: dict[str, str], makefile: Path, cache: Path) -> Path:
    """Return the sdist named in the Makefile, downloaded with pip when not cached.

    Raises BuildError when the download fails or the hash differs from PKG_HASH.
    """
    pypi_name = literal(variables, "PYPI_NAME", makefile)
    want = literal(variables, "PKG_HASH", makefile)
    version = literal(variables, "PKG_VERSION", makefile)
    sdist = cache / f"{pypi_name}-{version}.tar.gz"
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", str(cache), f"{pypi_name}=={version}"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                    timeout=300)
        except subprocess.TimeoutExpired:
            raise BuildError(f"pip download of {sdist.name} timed out") from None
        if result.returncode != 0 or not sdist.is_file():
            raise BuildError(f"could not download {sdist.name} with pip "
                             f"(use --icmplib-src): {result.stderr.strip()[-500:]}")
    got = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if got != want:
        raise BuildError(f"{sdist}: sha256 {got} differs from PKG_HASH {want} in {makefile}")
    return sdist


def _sdist_members(archive: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None and len(parts) >= 3 and parts[1] == "icmplib":
                out["/".join(parts[2:])] = data.read()
    return out


def _wheel_members(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as whl:
        return {name[len("icmplib/"):]: whl.read(name) for name in whl.namelist()
                if name.startswith("icmplib/") and not name.endswith("/")}


def _dir_members(path: Path) -> dict[str, bytes]:
    pkg = path if (path / "__init__.py").is_file() else path / "icmplib"
    return {str(rel): p.read_bytes() for rel, p in tree_files(pkg)}


def icmplib_files(ctx: Context, variables: dict[str, str], makefile: Path) -> list[Entry]:
    """icmplib's sources under /usr/lib/python3-icmplib, where the launcher finds them.

    ctx.icmplib_src may be the sdist, a wheel, the icmplib directory or its
    parent; None means the sdist from the cache (downloaded when missing).
    """
    version, _ = pkg_version(ctx.repo, variables, makefile)
    src = ctx.icmplib_src or fetch_icmplib_sdist(variables, makefile, ctx.cache)
    if src.is_dir():
        members = _dir_members(src)
    elif src.name.endswith(".whl"):
        members = _wheel_members(src)
    elif src.name.endswith((".tar.gz", ".tgz")):
        if src.name == f"icmplib-{version}.tar.gz":
            want = variables.get("PKG_HASH", "")
            if hashlib.sha256(src.read_bytes()).hexdigest() != want:
                raise BuildError(f"{src}: sha256 differs from PKG_HASH in {makefile}")
        members = _sdist_members(src)
    else:
        raise BuildError(f"{src}: expected an sdist, a wheel or a directory")
    members = {k: v for k, v in members.items() if k.endswith(".py") and "__pycache__" not in k}
    if "__init__.py" not in members:
        raise BuildError(f"{src}: no icmplib/__init__.py inside")
    found = re.search(rb"__version__\s*=\s*['\"]([^'\"]+)", members["__init__.py"])
    if found is None or found.group(1).decode() != version:
        raise BuildError(f"{src}: icmplib version is not {version} ({makefile})")
    return [Entry(f"{ICMPLIB_DIR}/icmplib/{name}", 0o644, data)
            for name, data in sorted(members.items())]


SPECS: tuple[Spec, ...] = (
    Spec("openwrt/net/wg-endpointd/Makefile", wg_endpointd_files),
    # The SDK builds python3-icmplib with python3-package.mk into the router's
    # site-packages; without the SDK the sources go where the launcher looks,
    # and these scripts add a .pth for each Python the router has.
    Spec("openwrt/lang/python3-icmplib/Makefile", icmplib_files,
         scripts_dir="openwrt/lang/python3-icmplib/nosdk"),
    Spec("openwrt/luci/luci-app-wg-endpointd/Makefile", luci_files, luci=True,
         optional=True),
    Spec("openwrt/utils/prometheus-node-exporter-lua-wg-endpointd/Makefile",
         collector_files, optional=True),
)


def packages(repo: Path = REPO, icmplib_src: Path | None = None,
             cache: Path | None = None, specs: Iterable[Spec] = SPECS) -> list[Package]:
    """Describe every package of the tree; raise BuildError on bad inputs."""
    ctx = Context(repo, icmplib_src, cache or repo / "build/cache")
    out = []
    for spec in specs:
        if not (repo / spec.makefile).is_file():
            if spec.optional:
                continue
            raise BuildError(f"{repo / spec.makefile}: missing")
        out.append(read_package(spec, ctx))
    return out
