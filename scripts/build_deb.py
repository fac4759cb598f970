#!/usr/bin/env python3
"""Build dist/wg-endpointd_VERSION_all.deb without dpkg-buildpackage or a Debian tree.

    python3 scripts/build_deb.py --out dist

The layout is dpkg-deb's (deb(5)): an ar archive of debian-binary ("2.0"),
control.tar.xz and data.tar.xz, in that order. The tars are GNU tars of
"./"-prefixed members sorted by name, owned by root:root, every timestamp the
same: SOURCE_DATE_EPOCH, else the last commit's time (pkgspec.source_date_epoch).
xz comes from Python's lzma with fixed settings, so one commit always gives the
same bytes. Only the standard library is used.

What goes in:
  /usr/bin/wg-endpointd                     the launcher the OpenWrt package uses too
  /usr/lib/wg-endpointd/wg_endpointd/       the code, .py only (postinst byte-compiles)
  /usr/lib/systemd/system/                  wg-endpointd.service and the wg-quick@ drop-in
  /etc/wg-endpointd/wg-endpointd.toml       the settings file, a conffile
  /usr/share/doc/wg-endpointd/              copyright, changelog.gz
  /usr/share/man/man8/wg-endpointd.8.gz     the manual page (linux/wg-endpointd.8)
The control fields and maintainer scripts live in linux/debian/; Version,
Architecture and Installed-Size are added here, and md5sums lists every file
but the conffile, as dh_md5sums does.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import lzma
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.build_ipk import gzip_bytes, tar_bytes, write_atomic  # noqa: E402
from scripts.pkgfiles import LAUNCHER, tree_files  # noqa: E402
from scripts.pkgspec import REPO, BuildError, Entry, read_version, with_dirs  # noqa: E402
from scripts.pkgspec import source_date_epoch as commit_epoch  # noqa: E402

NAME = "wg-endpointd"
DEBIAN = "linux/debian"
UNITS = {"linux/wg-endpointd.service": "usr/lib/systemd/system/wg-endpointd.service",
         "linux/wg-quick@.service.d/wg-endpointd.conf":
             "usr/lib/systemd/system/wg-quick@.service.d/wg-endpointd.conf"}
SETTINGS = ("files/etc/wg-endpointd/wg-endpointd.toml", "etc/wg-endpointd/wg-endpointd.toml")
CODE_DIR = "usr/lib/wg-endpointd"
DOC_DIR = f"usr/share/doc/{NAME}"
MAN_PAGE = ("linux/wg-endpointd.8", "usr/share/man/man8/wg-endpointd.8.gz")
SCRIPTS = ("postinst", "prerm", "postrm")


def xz(data: bytes) -> bytes:
    """dpkg-deb's default compression, xz -6 with a CRC64 check, fixed whatever the host."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)


def _read(repo: Path, rel: str) -> bytes:
    path = repo / rel
    if not path.is_file():
        raise BuildError(f"{path}: missing")
    return path.read_bytes()


def data_entries(repo: Path, changelog: bytes) -> list[Entry]:
    """Every installed file, sorted by path."""
    code = repo / "src/wg_endpointd"
    entries = [Entry(f"{CODE_DIR}/wg_endpointd/{rel}", 0o644, path.read_bytes())
               for rel, path in tree_files(code, python_only=True)]
    if not any(e.path.endswith("wg_endpointd/__init__.py") for e in entries):
        raise BuildError(f"{code}: no __init__.py")
    entries.append(Entry("usr/bin/wg-endpointd", 0o755, _read(repo, LAUNCHER)))
    entries += [Entry(dest, 0o644, _read(repo, src)) for src, dest in UNITS.items()]
    entries.append(Entry(SETTINGS[1], 0o644, _read(repo, SETTINGS[0])))
    entries.append(Entry(f"{DOC_DIR}/copyright", 0o644, _read(repo, f"{DEBIAN}/copyright")))
    entries.append(Entry(f"{DOC_DIR}/changelog.gz", 0o644, gzip_bytes(changelog)))
    entries.append(Entry(MAN_PAGE[1], 0o644, gzip_bytes(_read(repo, MAN_PAGE[0]))))
    return sorted(entries, key=lambda e: e.path)


def control_fields(repo: Path) -> list[tuple[str, str]]:
    """linux/debian/control as (field, value) pairs; continuation lines kept in value."""
    fields: list[tuple[str, str]] = []
    for line in _read(repo, f"{DEBIAN}/control").decode().splitlines():
        if line.startswith(" ") and fields:
            fields[-1] = (fields[-1][0], f"{fields[-1][1]}\n{line}")
        elif m := re.fullmatch(r"([A-Za-z][A-Za-z0-9-]*):\s*(.*)", line):
            fields.append((m.group(1), m.group(2)))
        elif line.strip():
            raise BuildError(f"{repo / DEBIAN}/control: cannot read {line!r}")
    return fields


def control_text(fields: list[tuple[str, str]], version: str, installed_kib: int) -> str:
    """The binary control file, fields in dpkg-gencontrol's order."""
    given = dict(fields)
    for key in ("Package", "Maintainer", "Depends", "Description"):
        if key not in given:
            raise BuildError(f"{DEBIAN}/control: no {key} field")
    if given["Package"] != NAME:
        raise BuildError(f"{DEBIAN}/control: Package is not {NAME}")
    given.update({"Version": version, "Architecture": "all",
                  "Installed-Size": str(installed_kib)})
    order = ["Package", "Version", "Architecture", "Maintainer", "Installed-Size",
             "Depends", "Recommends", "Suggests", "Section", "Priority", "Homepage",
             "Description"]
    keys = order + sorted(k for k in given if k not in order)
    return "".join(f"{k}: {given[k]}\n" for k in keys if k in given)


def changelog_text(version: str, maintainer: str, epoch: int) -> bytes:
    """A native package's changelog (deb-changelog(5)): one entry for this version."""
    date = email.utils.formatdate(epoch, usegmt=False).replace("-0000", "+0000")
    return (f"{NAME} ({version}) unstable; urgency=medium\n\n"
            f"  * wg-endpointd {version}, built from the project's repository.\n\n"
            f" -- {maintainer}  {date}\n").encode()


def installed_size(entries: list[Entry]) -> int:
    """KiB as dpkg-gencontrol counts them: each file rounded up, 1 for each directory."""
    files = sum((len(e.data) + 1023) // 1024 for e in entries)
    return files + len(with_dirs([e.path for e in entries])) + 1  # and "./"


def ar_bytes(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    """A System V ar archive as dpkg-deb writes it: 0/0, mode 100644, even-padded."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{mtime:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n"
        if len(header) != 60 or len(name) > 16:
            raise BuildError(f"ar member {name}: header does not fit")
        out += [header.encode("ascii"), data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def deb_bytes(repo: Path, epoch: int, version: str) -> bytes:
    fields = control_fields(repo)
    changelog = changelog_text(version, dict(fields).get("Maintainer", ""), epoch)
    data = data_entries(repo, changelog)
    conffiles = [f"/{SETTINGS[1]}"]
    md5sums = "".join(f"{hashlib.md5(e.data).hexdigest()}  {e.path}\n"  # noqa: S324
                      for e in data if f"/{e.path}" not in conffiles)
    control = [Entry("control", 0o644,
                     control_text(fields, version, installed_size(data)).encode()),
               Entry("conffiles", 0o644, "".join(f"{c}\n" for c in conffiles).encode()),
               Entry("md5sums", 0o644, md5sums.encode())]
    control += [Entry(name, 0o755, _read(repo, f"{DEBIAN}/{name}")) for name in SCRIPTS]
    return ar_bytes([
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", xz(tar_bytes(control, epoch, owner="root"))),
        ("data.tar.xz", xz(tar_bytes(data, epoch, owner="root"))),
    ], epoch)


def deb_filename(version: str) -> str:
    """<Package>_<Version without epoch>_<Architecture>.deb, as dpkg-name names it."""
    return f"{NAME}_{version.split(':', 1)[-1]}_all.deb"


def build(out: Path, repo: Path = REPO, epoch: int | None = None,
          version: str | None = None) -> list[Path]:
    """Write the .deb into `out` and return its path (in a list, like build_ipk)."""
    version = version or read_version(repo)
    if not re.fullmatch(r"(\d+:)?\d[A-Za-z0-9.+~]*", version):
        raise BuildError(f"{version!r} is not a native Debian version")
    if epoch is None:
        epoch = commit_epoch(repo)
    out.mkdir(parents=True, exist_ok=True)
    target = out / deb_filename(version)
    write_atomic(target, deb_bytes(repo, epoch, version))
    return [target]


def members(deb: Path) -> dict[str, bytes]:
    """The ar members of a .deb by name (for tests)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise BuildError(f"{deb}: not an ar archive")
    found, pos = {}, 8
    while pos < len(data):
        header = data[pos:pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        found[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + size % 2
    return found


def main(argv: list[str] | None = None) -> int:
    """Build the package and print its path; exit 1 on a build error."""
    parser = argparse.ArgumentParser(prog="build_deb", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist",
                        help="output directory (default: dist)")
    args = parser.parse_args(argv)
    try:
        for path in build(args.out):
            print(path)
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

