#!/usr/bin/env python3
"""Build wg-endpointd and python3-icmplib .ipk packages without the OpenWrt SDK.

    python3 scripts/build_ipk.py --out dist [--icmplib-src PATH]

The output has the layout of OpenWrt's scripts/ipkg-build: a gzip'd GNU tar
holding ./debian-binary, ./data.tar.gz and ./control.tar.gz (in that order),
members sorted by name, owned by 0:0, every timestamp the same. Package
metadata (version, release, DEPENDS, section, texts, icmplib's sdist hash)
comes from the feed Makefiles under openwrt/, the version also from
src/wg_endpointd/__init__.py; the two must agree.

Timestamps come from SOURCE_DATE_EPOCH, else the last git commit, else 0,
so the same inputs always give the same bytes.

Only the standard library is used. `pip` is run once to download the icmplib
sdist into build/cache when no --icmplib-src is given.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
FEED_NAME = "wgendpointd"  # the name used in feeds.conf (docs/install-openwrt.md)
WG_MAKEFILE = "openwrt/net/wg-endpointd/Makefile"
ICMPLIB_MAKEFILE = "openwrt/lang/python3-icmplib/Makefile"
LAUNCHER = "openwrt/net/wg-endpointd/files/launcher.py"
# Python minors of OpenWrt 23.05/24.10 (3.11), 25.12 (3.13) and master (3.14).
PYTHON_MINORS = ("3.11", "3.13", "3.14")

# What include/package-pack.mk generates for every package: hand over to
# base-files' default_postinst/default_prerm (enable + start the package's
# init scripts on a live system, only enable in an image; disable + stop).
POSTINST = """\
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
"""
PRERM = """\
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
"""


class BuildError(Exception):
    """The inputs are missing or inconsistent; the message says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One member of data.tar.gz: a file, a directory or a symlink."""

    path: str  # relative, no leading "./"
    mode: int
    data: bytes = b""
    kind: str = "file"  # "file", "dir" or "symlink"
    target: str = ""  # for symlinks


@dataclasses.dataclass(frozen=True, slots=True)
class Package:
    """What goes into one .ipk."""

    name: str
    version: str
    depends: tuple[str, ...]
    source: str
    license: str
    license_files: str
    section: str
    url: str
    description: str
    conffiles: tuple[str, ...]
    entries: tuple[Entry, ...]
    arch: str = "all"

    @property
    def filename(self) -> str:
        """Return the ipk file name, <Package>_<Version>_<Arch>.ipk."""
        return f"{self.name}_{self.version}_{self.arch}.ipk"


# -- metadata -------------------------------------------------------------


def parse_makefile(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read `VAR:=value` assignments and `define NAME ... endef` blocks.

    Assignments inside a define are returned as "<define name>/<VAR>".
    This is not make; it only reads the literal parts the feed Makefiles keep.
    """
    variables: dict[str, str] = {}
    defines: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if current is not None:
            if line.strip() == "endef":
                defines[current] = "\n".join(body)
                current = None
                continue
            body.append(line)
            m = re.match(r"\s*([A-Z_]+)\s*:=\s*(.*?)\s*$", line)
            if m:
                variables[f"{current}/{m.group(1)}"] = m.group(2)
            continue
        m = re.match(r"define\s+(\S+)\s*$", line)
        if m:
            current, body = m.group(1), []
            continue
        m = re.match(r"([A-Z0-9_]+)\s*:=\s*(.*?)\s*$", line)
        if m:
            variables[m.group(1)] = m.group(2)
    return variables, defines


def _literal(variables: dict[str, str], key: str, path: Path) -> str:
    value = variables.get(key, "")
    if not value or "$" in value:
        raise BuildError(f"{path}: {key} must be set to a literal value")
    return value


def _depends(spec: str, path: Path) -> tuple[str, ...]:
    deps = ["libc"]  # PKG_DEFAULT_DEPENDS, which package-defaults.mk adds to every package
    for word in spec.split():
        if word.startswith("@"):
            continue
        if not word.startswith("+") or ":" in word:
            raise BuildError(f"{path}: unsupported DEPENDS entry {word!r}")
        deps.append(word[1:])
    return tuple(deps)


def read_version(repo: Path) -> str:
    """Return __version__ from src/wg_endpointd/__init__.py."""
    init = repo / "src/wg_endpointd/__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__version__"
                and isinstance(node.value, ast.Constant)):
            return str(node.value.value)
    raise BuildError(f"{init}: no __version__ = '...' assignment")


@dataclasses.dataclass(frozen=True, slots=True)
class FeedPackage:
    """The fields of one feed Makefile that the ipk needs."""

    makefile: Path
    name: str
    pkg_version: str
    pkg_release: str
    license: str
    license_files: str
    section: str
    url: str
    depends: tuple[str, ...]
    description: str
    conffiles: tuple[str, ...]
    variables: dict[str, str]

    @property
    def version(self) -> str:
        """Return the opkg version, PKG_VERSION-PKG_RELEASE."""
        return f"{self.pkg_version}-{self.pkg_release}"


def read_feed_package(repo: Path, rel: str) -> FeedPackage:
    """Read a feed Makefile; raise BuildError when a needed field is not literal."""
    path = repo / rel
    if not path.is_file():
        raise BuildError(f"{path}: missing")
    variables, defines = parse_makefile(path)
    name = _literal(variables, "PKG_NAME", path)
    pkg = f"Package/{name}"
    version = _literal(variables, "PKG_VERSION", path)
    release = _literal(variables, "PKG_RELEASE", path)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version) or not release.isdigit():
        raise BuildError(f"{path}: PKG_VERSION must be N.N.N and PKG_RELEASE an integer (apk)")
    if variables.get(f"{pkg}/PKGARCH") != "all":
        raise BuildError(f"{path}: {pkg} must set PKGARCH:=all")
    description = defines.get(f"{pkg}/description", "").strip("\n")
    if not description.strip():
        raise BuildError(f"{path}: {pkg}/description is empty")
    return FeedPackage(
        makefile=path,
        name=name,
        pkg_version=version,
        pkg_release=release,
        license=_literal(variables, "PKG_LICENSE", path),
        license_files=variables.get("PKG_LICENSE_FILES", ""),
        section=_literal(variables, f"{pkg}/SECTION", path),
        url=variables.get(f"{pkg}/URL", ""),
        depends=_depends(variables.get(f"{pkg}/DEPENDS", ""), path),
        description=description,
        conffiles=tuple(defines.get(f"{pkg}/conffiles", "").split()),
        variables=variables,
    )


def source_date_epoch(repo: Path) -> int:
    """Return the timestamp for every tar member and SourceDateEpoch."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env:
        if not env.isdigit():
            raise BuildError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds")
        return int(env)
    git = shutil.which("git")
    if git is None:
        return 0
    try:
        out = subprocess.run([git, "-C", str(repo), "log", "-1", "--format=%ct"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    value = out.stdout.strip()
    return int(value) if out.returncode == 0 and value.isdigit() else 0


# -- contents -------------------------------------------------------------


def _router_file_mode(rel: PurePosixPath, source: Path) -> int:
    parts = rel.parts
    if parts[:2] == ("etc", "config"):
        return 0o600  # INSTALL_CONF
    if parts[:2] in (("etc", "init.d"), ("etc", "uci-defaults"), ("usr", "bin"),
                     ("usr", "sbin")):
        return 0o755
    if parts[:2] == ("etc", "hotplug.d"):
        return 0o644  # sourced, not executed
    return 0o755 if source.stat().st_mode & 0o111 else 0o644


def _tree_files(top: Path, *, python_only: bool = False) -> Iterable[tuple[PurePosixPath, Path]]:
    for path in sorted(top.rglob("*")):
        rel = PurePosixPath(path.relative_to(top).as_posix())
        if not path.is_file() or "__pycache__" in rel.parts or rel.name.endswith("~"):
            continue
        if python_only and path.suffix != ".py":
            continue
        yield rel, path


def wg_endpointd_entries(repo: Path) -> list[Entry]:
    """Return the data files of wg-endpointd, globbed from src/ and files/."""
    code = repo / "src/wg_endpointd"
    entries = [Entry(f"usr/lib/wg-endpointd/wg_endpointd/{rel}", 0o644, path.read_bytes())
               for rel, path in _tree_files(code, python_only=True)]
    if not any(e.path.endswith("wg_endpointd/__init__.py") for e in entries):
        raise BuildError(f"{code}: no __init__.py")
    entries.append(Entry("usr/bin/wg-endpointd", 0o755, (repo / LAUNCHER).read_bytes()))
    files = repo / "files"
    entries += [Entry(str(rel), _router_file_mode(rel, path), path.read_bytes())
                for rel, path in _tree_files(files)]
    return entries


def _sdist_members(archive: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[1] == "icmplib":
                out["/".join(parts[2:])] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return out


def _wheel_members(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as whl:
        return {name[len("icmplib/"):]: whl.read(name) for name in whl.namelist()
                if name.startswith("icmplib/") and not name.endswith("/")}


def _dir_members(path: Path) -> dict[str, bytes]:
    pkg = path if (path / "__init__.py").is_file() else path / "icmplib"
    return {str(rel): p.read_bytes() for rel, p in _tree_files(pkg)}


def fetch_icmplib_sdist(feed: FeedPackage, cache: Path) -> Path:
    """Return the icmplib sdist named in the feed Makefile, downloading it with pip if needed.

    Raises BuildError when the download fails or the hash differs from PKG_HASH.
    """
    pypi_name = _literal(feed.variables, "PYPI_NAME", feed.makefile)
    want = _literal(feed.variables, "PKG_HASH", feed.makefile)
    sdist = cache / f"{pypi_name}-{feed.pkg_version}.tar.gz"
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", str(cache), f"{pypi_name}=={feed.pkg_version}"]
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
        raise BuildError(f"{sdist}: sha256 {got} differs from PKG_HASH {want} "
                         f"in {feed.makefile}")
    return sdist


def icmplib_entries(feed: FeedPackage, src: Path | None, cache: Path) -> list[Entry]:
    """Return the data files of python3-icmplib.

    `src` may be the sdist, a wheel, the icmplib package directory or its
    parent; None means the sdist from the cache (downloaded when missing).
    """
    if src is None:
        src = fetch_icmplib_sdist(feed, cache)
    if src.is_dir():
        members = _dir_members(src)
    elif src.name.endswith(".whl"):
        members = _wheel_members(src)
    elif src.name.endswith((".tar.gz", ".tgz")):
        if src.name == f"icmplib-{feed.pkg_version}.tar.gz":
            want = feed.variables.get("PKG_HASH", "")
            if hashlib.sha256(src.read_bytes()).hexdigest() != want:
                raise BuildError(f"{src}: sha256 differs from PKG_HASH in {feed.makefile}")
        members = _sdist_members(src)
    else:
        raise BuildError(f"{src}: expected an sdist, a wheel or a directory")
    members = {k: v for k, v in members.items() if k.endswith(".py") and "__pycache__" not in k}
    if "__init__.py" not in members:
        raise BuildError(f"{src}: no icmplib/__init__.py inside")
    version = re.search(rb"__version__\s*=\s*['\"]([^'\"]+)", members["__init__.py"])
    if version is None or version.group(1).decode() != feed.pkg_version:
        raise BuildError(f"{src}: icmplib version is not {feed.pkg_version} "
                         f"({feed.makefile})")
    entries = [Entry(f"usr/lib/python3-icmplib/icmplib/{name}", 0o644, data)
               for name, data in sorted(members.items())]
    for minor in PYTHON_MINORS:
        entries.append(Entry(f"usr/lib/python{minor}/site-packages/icmplib", 0o777,
                             kind="symlink", target="../../python3-icmplib/icmplib"))
    return entries


# -- archive format -------------------------------------------------------


def _with_dirs(entries: Iterable[Entry]) -> list[Entry]:
    """Add a 0755 directory entry for every parent and sort like GNU tar --sort=name."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            if str(parent) != "." and str(parent) not in by_path:
                by_path[str(parent)] = Entry(str(parent), 0o755, kind="dir")
    # GNU tar sorts each directory's entries and recurses depth-first, so
    # "a/x" comes before "a-b" even though "-" sorts before "/".
    return sorted(by_path.values(), key=lambda e: PurePosixPath(e.path).parts)


def tar_bytes(entries: Iterable[Entry], mtime: int, *, root: bool = True) -> bytes:
    """Return an uncompressed GNU tar, as `tar --format=gnu --numeric-owner --sort=name`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        members = _with_dirs(entries)
        if root:
            members.insert(0, Entry(".", 0o755, kind="dir"))
        for entry in members:
            info = tarfile.TarInfo("." if entry.path == "." else f"./{entry.path}")
            info.mode, info.mtime = entry.mode, mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """Compress like `gzip -n`: no file name, header time 0."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def control_text(pkg: Package, installed_size: int, epoch: int) -> str:
    """Return the control file, fields in include/package-pack.mk's order."""
    name = pkg.source.rsplit("/", 1)[-1]
    fields = [
        ("Package", pkg.name), ("Version", pkg.version), ("Depends", ", ".join(pkg.depends)),
        ("Source", pkg.source), ("SourceName", name), ("License", pkg.license),
        ("LicenseFiles", pkg.license_files), ("Section", pkg.section),
        ("SourceDateEpoch", str(epoch)), ("URL", pkg.url), ("Architecture", pkg.arch),
        ("Installed-Size", str(installed_size)),
    ]
    text = "".join(f"{key}: {value}\n" for key, value in fields if value)
    # package-pack.mk: printf "Description: "; echo "$DESCRIPTION" | sed 's,^[[:space:]]*, ,g'
    lines = [re.sub(r"^\s*", " ", line) for line in pkg.description.splitlines()]
    return text + "Description: " + "\n".join(lines) + "\n"


def ipk_bytes(pkg: Package, epoch: int) -> bytes:
    """Return the .ipk: gzip'd tar of debian-binary, data.tar.gz, control.tar.gz."""
    data_tar = tar_bytes(pkg.entries, epoch)
    # ipkg-build: Installed-Size is `zcat < data.tar.gz | wc -c`.
    control = [Entry("control", 0o644, control_text(pkg, len(data_tar), epoch).encode())]
    if pkg.conffiles:
        control.append(Entry("conffiles", 0o644, "".join(f"{c}\n" for c in
                                                          sorted(pkg.conffiles)).encode()))
    control += [Entry("postinst", 0o755, POSTINST.encode()),
                Entry("prerm", 0o755, PRERM.encode())]
    outer = [Entry("debian-binary", 0o644, b"2.0\n"),
             Entry("data.tar.gz", 0o644, gzip_bytes(data_tar)),
             Entry("control.tar.gz", 0o644, gzip_bytes(tar_bytes(control, epoch)))]
    buf = io.BytesIO()
    # ipkg-build names the three members explicitly, so they keep this order.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for entry in outer:
            info = tarfile.TarInfo(f"./{entry.path}")
            info.mode, info.mtime, info.size = entry.mode, epoch, len(entry.data)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(entry.data))
    return gzip_bytes(buf.getvalue())


# -- packages -------------------------------------------------------------


def _package(feed: FeedPackage, entries: list[Entry]) -> Package:
    category = feed.makefile.parent.parent.name
    present = {f"/{e.path}" for e in entries}
    missing = [c for c in feed.conffiles if c not in present]
    if missing:
        raise BuildError(f"{feed.makefile}: conffiles not in the package: {missing}")
    return Package(
        name=feed.name, version=feed.version, depends=feed.depends,
        source=f"feeds/{FEED_NAME}/{category}/{feed.makefile.parent.name}",
        license=feed.license, license_files=feed.license_files, section=feed.section,
        url=feed.url, description=feed.description, conffiles=feed.conffiles,
        entries=tuple(entries),
    )


def packages(repo: Path = REPO, icmplib_src: Path | None = None,
             cache: Path | None = None) -> list[Package]:
    """Describe both packages; raise BuildError on missing or inconsistent inputs."""
    wg = read_feed_package(repo, WG_MAKEFILE)
    version = read_version(repo)
    if wg.pkg_version != version:
        raise BuildError(f"{wg.makefile}: PKG_VERSION {wg.pkg_version} differs from "
                         f"__version__ {version} in src/wg_endpointd/__init__.py")
    icmp = read_feed_package(repo, ICMPLIB_MAKEFILE)
    cache = cache or repo / "build/cache"
    return [_package(wg, wg_endpointd_entries(repo)),
            _package(icmp, icmplib_entries(icmp, icmplib_src, cache))]


def build(out: Path, repo: Path = REPO, icmplib_src: Path | None = None,
          cache: Path | None = None, epoch: int | None = None) -> list[Path]:
    """Write both .ipk files into `out` and return their paths."""
    if epoch is None:
        epoch = source_date_epoch(repo)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for pkg in packages(repo, icmplib_src, cache):
        target = out / pkg.filename
        with tempfile.NamedTemporaryFile(dir=out, prefix=".ipk-", delete=False) as tmp:
            tmp.write(ipk_bytes(pkg, epoch))
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, target)
        written.append(target)
    return written


# -- reading packages back ------------------------------------------------


def read_ipk(ipk: Path) -> dict[str, bytes]:
    """Return the three outer members of an .ipk by name ("debian-binary", ...)."""
    with tarfile.open(ipk, "r:gz") as outer:
        return {PurePosixPath(m.name).name: outer.extractfile(m).read()  # type: ignore[union-attr]
                for m in outer.getmembers() if m.isfile()}


def read_control(ipk: Path) -> dict[str, bytes]:
    """Return the files of control.tar.gz by name ("control", "postinst", ...)."""
    with tarfile.open(fileobj=io.BytesIO(read_ipk(ipk)["control.tar.gz"]), mode="r:gz") as tar:
        return {PurePosixPath(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def extract_into(ipk: Path, root: Path, *, opkg_info: bool = False) -> list[str]:
    """Install an .ipk's data into `root` (like `opkg --offline-root`, without scripts).

    Returns the installed paths ("/usr/bin/wg-endpointd", ...). With
    opkg_info=True it also writes usr/lib/opkg/info/<pkg>.{control,list,
    conffiles,postinst,prerm}, which default_postinst/default_prerm read.
    Raises BuildError for members that would land outside `root`.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(read_ipk(ipk)["data.tar.gz"]), mode="r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            rel = PurePosixPath(m.name)
            if rel.is_absolute() or ".." in rel.parts:
                raise BuildError(f"{ipk}: unsafe member {m.name}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # Python < 3.11.4; the names were checked above
            tar.extractall(root)  # noqa: S202
    listed = [f"/{PurePosixPath(m.name).relative_to('.')}" for m in members
              if not m.isdir()]
    if opkg_info:
        control = read_control(ipk)
        name = re.search(rb"^Package: (\S+)", control["control"], re.M)
        assert name is not None
        info = root / "usr/lib/opkg/info"
        info.mkdir(parents=True, exist_ok=True)
        pkg = name.group(1).decode()
        (info / f"{pkg}.list").write_text("".join(f"{p}\n" for p in listed))
        for key, data in control.items():
            dest = info / f"{pkg}.{key}"
            dest.write_bytes(data)
            dest.chmod(0o755 if key in ("postinst", "prerm") else 0o644)
    return listed


def main(argv: list[str] | None = None) -> int:
    """Build both packages and print their paths; exit 1 on a BuildError."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist",
                        help="output directory (default: dist)")
    parser.add_argument("--icmplib-src", type=Path,
                        help="icmplib sdist, wheel or source directory "
                             "(default: the sdist in build/cache, fetched with pip)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="download cache (default: build/cache)")
    args = parser.parse_args(argv)
    try:
        for path in build(args.out, icmplib_src=args.icmplib_src, cache=args.cache):
            print(path)
    except BuildError as exc:
        print(f"build_ipk: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

