#!/usr/bin/env python3
"""Build the OpenWrt .ipk packages (24.10 and older, opkg) without the SDK.

    python3 scripts/build_ipk.py --out dist [--icmplib-src PATH]

The output has the layout of OpenWrt's scripts/ipkg-build: a gzip'd GNU tar
holding ./debian-binary, ./data.tar.gz and ./control.tar.gz (in that order),
members sorted by name, owned by 0:0, every timestamp the same. The control
files are what include/package-pack.mk writes: control, conffiles, the
generated postinst and prerm, and the package's own postinst-pkg/prerm-pkg,
which default_postinst/default_prerm source. What goes in comes from
scripts/pkgspec.py and pkgfiles.py.

Timestamps come from SOURCE_DATE_EPOCH, else the last git commit, else 0,
so the same inputs always give the same bytes. Only the standard library is
used (plus `pip download` once for the icmplib sdist, see pkgfiles.py).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # run as a script: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import pkgcli  # noqa: E402
from scripts.pkgfiles import packages  # noqa: E402
from scripts.pkgspec import REPO, BuildError, Entry, Package, source_date_epoch  # noqa: E402

# What include/package-pack.mk generates as every ipk's postinst and prerm:
# hand over to base-files' default_postinst/default_prerm.
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
CONTROL_SCRIPTS = ("postinst", "prerm", "postinst-pkg", "prerm-pkg")


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


def tar_bytes(entries: Iterable[Entry], mtime: int, *, root: bool = True,
              owner: str = "") -> bytes:
    """Return an uncompressed GNU tar, as `tar --format=gnu --numeric-owner --sort=name`
    (`owner` names uid and gid 0, as dpkg-deb --root-owner-group writes "root")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        members = _with_dirs(entries)
        if root:
            members.insert(0, Entry(".", 0o755, kind="dir"))
        for entry in members:
            info = tarfile.TarInfo("." if entry.path == "." else f"./{entry.path}")
            info.mode, info.mtime = entry.mode, mtime
            info.uid = info.gid = 0
            info.uname = info.gname = owner
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
    # package-pack.mk stores Package/<name>/postinst and /prerm as -pkg files.
    if pkg.postinst_pkg:
        control.append(Entry("postinst-pkg", 0o755, pkg.postinst_pkg.encode()))
    if pkg.prerm_pkg:
        control.append(Entry("prerm-pkg", 0o755, pkg.prerm_pkg.encode()))
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


# -- packages ---------------------------------------------------------------


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file and a rename, mode 0644."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".pkg-", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, target)


def build(out: Path, repo: Path = REPO, icmplib_src: Path | None = None,
          cache: Path | None = None, epoch: int | None = None,
          pkgs: list[Package] | None = None) -> list[Path]:
    """Write every package as .ipk into `out` and return the paths."""
    if epoch is None:
        epoch = source_date_epoch(repo)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for pkg in pkgs if pkgs is not None else packages(repo, icmplib_src, cache):
        target = out / pkg.ipk_filename
        write_atomic(target, ipk_bytes(pkg, epoch))
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
            dest.chmod(0o755 if key in CONTROL_SCRIPTS else 0o644)
    return listed


def main(argv: list[str] | None = None) -> int:
    """Build the packages and print their paths; exit 1 on a build error."""
    return pkgcli.run("build_ipk", __doc__, REPO / "dist", build, (BuildError,), argv)


if __name__ == "__main__":
    sys.exit(main())
