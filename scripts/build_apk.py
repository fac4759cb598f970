#!/usr/bin/env python3
"""Build the OpenWrt .apk packages (25.12 and later, apk-tools v3) without the SDK.

    python3 scripts/build_apk.py --out dist [--icmplib-src PATH]

Each package is what include/package-pack.mk has `apk mkpkg` write: an ADB
container (schema "pckg") with the package info, the path tree (modes,
owner root, sizes, SHA-256 of each file), the generated scripts, then one
DATA block per non-empty file. Before packing, package-pack.mk adds
lib/apk/packages/<name>.list, .conffiles and .conffiles_static; so does this.
The field numbers come from apk-tools' src/apk_adb.h; adb.py writes the bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import stat
import struct
import sys
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # run as a script: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import (
    adb,  # noqa: E402
    pkgcli,  # noqa: E402
)
from scripts.build_ipk import write_atomic  # noqa: E402
from scripts.pkgfiles import packages  # noqa: E402
from scripts.pkgspec import (  # noqa: E402
    REPO,
    BuildError,
    Entry,
    Package,
    source_date_epoch,
    with_dirs,
)

# Field numbers (apk_adb.h): package, package info, dependency, ACL, file, dir, scripts.
PKG_INFO, PKG_PATHS, PKG_SCRIPTS = 1, 2, 3
PI_NAME, PI_VERSION, PI_HASHES, PI_DESCRIPTION, PI_ARCH, PI_LICENSE = 1, 2, 3, 4, 5, 6
PI_ORIGIN, PI_MAINTAINER, PI_URL, PI_INSTALLED_SIZE, PI_FILE_SIZE, PI_DEPENDS = 7, 8, 9, 12, 13, 15
DEP_NAME = 1
ACL_MODE, ACL_USER, ACL_GROUP = 1, 2, 3
FI_NAME, FI_ACL, FI_SIZE, FI_MTIME, FI_HASHES, FI_TARGET = 1, 2, 3, 4, 5, 6
DI_NAME, DI_ACL, DI_FILES = 1, 2, 3
SCRIPT_FIELDS = {"post-install": 3, "pre-deinstall": 4, "post-upgrade": 7}
UNIQUE_ID_LEN = 20  # mkpkg: the first 20 bytes of the SHA-256 of the ADB payload
DESCRIPTION_MAX = 256  # OpenWrt's apk truncates longer descriptions


def _strip_shebang(script: str) -> str:
    # package-pack.mk: sed '/^\s*#!/d'
    return "".join(line for line in script.splitlines(keepends=True)
                   if not line.lstrip().startswith("#!"))


def scripts(pkg: Package) -> dict[str, str]:
    """Return the post-install, post-upgrade and pre-deinstall that package-pack.mk writes."""
    head = ('[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
            '. ${IPKG_INSTROOT}/lib/functions.sh\n'
            'export root="${IPKG_INSTROOT}"\n'
            f'export pkgname="{pkg.name}"\n')
    install = ('#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n' + head
               + "add_group_and_user\ndefault_postinst\n" + _strip_shebang(pkg.postinst_pkg))
    return {
        "post-install": install,
        "post-upgrade": "#!/bin/sh\nexport PKG_UPGRADE=1\n" + _strip_shebang(install),
        "pre-deinstall": ("#!/bin/sh\n" + head + "default_prerm\n"
                          + _strip_shebang(pkg.prerm_pkg)),
    }


def tree(pkg: Package) -> list[Entry]:
    """Return the package's files plus the lib/apk/packages/ files package-pack.mk adds."""
    base = f"lib/apk/packages/{pkg.name}"
    listed = sorted(f"/{e.path}" for e in pkg.entries)
    extra = [Entry(f"{base}.list", 0o644, "".join(f"{p}\n" for p in listed).encode())]
    if pkg.conffiles:
        data = {e.path: e.data for e in pkg.entries}
        extra.append(Entry(f"{base}.conffiles", 0o644,
                           "".join(f"{c}\n" for c in pkg.conffiles).encode()))
        extra.append(Entry(f"{base}.conffiles_static", 0o644, "".join(
            f"{c} {hashlib.sha256(data[c.lstrip('/')]).hexdigest()}\n"
            for c in pkg.conffiles).encode()))
    return [*pkg.entries, *extra]


def one_line(text: str) -> str:
    """Return the description as make's $(strip) leaves it, cut to 256 bytes."""
    raw = " ".join(text.split()).encode()[:DESCRIPTION_MAX]
    return raw.decode(errors="ignore")


def pkginfo(w: adb.AdbWriter, pkg: Package, installed_size: int, hashes: int,
            file_size: int = 0) -> int:
    """Write the package info object (also used, with file-size, in packages.adb).

    `hashes` is the value of the identity blob, already written.
    """
    deps = [w.object({DEP_NAME: w.text(d)}) for d in sorted(set(pkg.depends), key=str.encode)]
    return w.object({
        PI_NAME: w.text(pkg.name), PI_VERSION: w.text(pkg.version),
        PI_HASHES: hashes, PI_DESCRIPTION: w.text(one_line(pkg.description)),
        PI_ARCH: w.text("noarch" if pkg.arch == "all" else pkg.arch),
        PI_LICENSE: w.text(pkg.license), PI_ORIGIN: w.text(pkg.source),
        PI_URL: w.text(pkg.url), PI_INSTALLED_SIZE: w.integer(installed_size),
        PI_FILE_SIZE: w.integer(file_size) if file_size else adb.NULL,
        PI_DEPENDS: w.array(deps),
    })


def _acl(w: adb.AdbWriter, mode: int) -> int:
    return w.object({ACL_MODE: w.integer(mode & 0o7777), ACL_USER: w.text("root"),
                     ACL_GROUP: w.text("root")})


def _file(w: adb.AdbWriter, entry: Entry, epoch: int) -> int:
    name = w.text(PurePosixPath(entry.path).name)
    if entry.kind == "symlink":
        target = struct.pack("<H", stat.S_IFLNK) + entry.target.encode()
        return w.object({FI_NAME: name, FI_ACL: _acl(w, 0o777),
                         FI_SIZE: w.integer(len(entry.target.encode())), FI_MTIME: w.integer(epoch),
                         FI_TARGET: w.blob(target)})
    digest = hashlib.sha256(entry.data).digest()
    return w.object({FI_NAME: name, FI_ACL: _acl(w, entry.mode),
                     FI_SIZE: w.integer(len(entry.data)), FI_MTIME: w.integer(epoch),
                     FI_HASHES: w.blob(digest)})


@dataclasses.dataclass(frozen=True, slots=True)
class Built:
    """One .apk in memory, with what packages.adb needs to know of it."""

    pkg: Package
    data: bytes
    adb_sha256: bytes  # of the ADB block's payload: the package's identity
    installed_size: int


def apk_bytes(pkg: Package, epoch: int) -> Built:
    """Return the .apk of `pkg`, every timestamp set to `epoch`."""
    files = tree(pkg)
    by_dir: dict[str, list[Entry]] = {"": []}
    for d in with_dirs([e.path for e in files]):
        by_dir[d] = []
    for e in files:
        parent = str(PurePosixPath(e.path).parent)
        by_dir["" if parent == "." else parent].append(e)
    # Arrays are sorted by name bytes, as apk's schema compare does.
    dirs = sorted(by_dir, key=str.encode)
    w = adb.AdbWriter()
    paths, data_blocks = [], []
    for i, d in enumerate(dirs, start=1):
        entries = sorted(by_dir[d], key=lambda e: PurePosixPath(e.path).name.encode())
        paths.append(w.object({DI_NAME: w.text(d), DI_ACL: _acl(w, 0o755),
                               DI_FILES: w.array([_file(w, e, epoch) for e in entries])}))
        for j, e in enumerate(entries, start=1):
            if e.kind == "file" and e.data:
                data_blocks.append(adb.block(adb.BLOCK_DATA, struct.pack("<II", i, j) + e.data))
    installed = sum(len(e.data) for e in files if e.kind == "file") or 1
    uid_value = w.blob(bytes(UNIQUE_ID_LEN), share=False)
    info = pkginfo(w, pkg, installed, uid_value)
    script_obj = w.object({SCRIPT_FIELDS[k]: w.text(v) for k, v in scripts(pkg).items()})
    payload = w.payload(w.object({PKG_INFO: info, PKG_PATHS: w.array(paths),
                                  PKG_SCRIPTS: script_obj}))
    # The unique id is the digest of the payload while the id is still zeros.
    uid = hashlib.sha256(payload).digest()[:UNIQUE_ID_LEN]
    at = (uid_value & adb.VALUE_MASK) + 1  # after the blob's length byte
    payload = payload[:at] + uid + payload[at + UNIQUE_ID_LEN:]
    data = adb.container(adb.SCHEMA_PACKAGE, [adb.block(adb.BLOCK_ADB, payload), *data_blocks])
    return Built(pkg, data, hashlib.sha256(payload).digest(), installed)


def build(out: Path, repo: Path = REPO, icmplib_src: Path | None = None,
          cache: Path | None = None, epoch: int | None = None,
          pkgs: list[Package] | None = None) -> list[Path]:
    """Write every package as .apk into `out` and return the paths."""
    if epoch is None:
        epoch = source_date_epoch(repo)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for pkg in pkgs if pkgs is not None else packages(repo, icmplib_src, cache):
        target = out / pkg.apk_filename
        write_atomic(target, apk_bytes(pkg, epoch).data)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Build the packages and print their paths; exit 1 on a build error."""
    return pkgcli.run("build_apk", __doc__, REPO / "dist", build, (BuildError, adb.AdbError),
                      argv)


if __name__ == "__main__":
    sys.exit(main())
