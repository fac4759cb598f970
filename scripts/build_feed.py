#!/usr/bin/env python3
"""Build a package feed folder that opkg and apk can both use.

    python3 scripts/build_feed.py --out dist/feed [--icmplib-src PATH]

The folder holds every .ipk and .apk, plus:
- Packages and Packages.gz for opkg: each package's control file with
  Filename, Size and SHA256sum added before Description, as OpenWrt's
  scripts/ipkg-make-index.sh writes them, one blank line after each;
- packages.adb for apk: an unsigned ADB index (schema "indx"), as
  `apk mkndx --output packages.adb *.apk` writes it: each package's info
  with its file size and, as identity, the SHA-256 of its ADB block.
Serve the folder over HTTP; README.md says how each router adds it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import (
    adb,  # noqa: E402
    pkgcli,  # noqa: E402
)
from scripts.build_apk import Built, apk_bytes, pkginfo  # noqa: E402
from scripts.build_ipk import gzip_bytes, ipk_bytes, read_control, write_atomic  # noqa: E402
from scripts.pkgfiles import packages  # noqa: E402
from scripts.pkgspec import REPO, BuildError, source_date_epoch  # noqa: E402

NDX_DESCRIPTION, NDX_PACKAGES = 1, 2  # apk_adb.h, index schema


def packages_entry(ipk: Path) -> str:
    """Return the Packages stanza of one .ipk (without the blank line)."""
    control = read_control(ipk)["control"].decode()
    raw = ipk.read_bytes()
    extra = (f"Filename: {ipk.name}\nSize: {len(raw)}\n"
             f"SHA256sum: {hashlib.sha256(raw).hexdigest()}\n")
    head, sep, tail = control.partition("Description:")
    if not sep:
        raise BuildError(f"{ipk}: control file has no Description")
    return head + extra + sep + tail


def index_bytes(built: list[Built], description: str = "") -> bytes:
    """Return packages.adb for the packages in `built`, sorted by name and version."""
    w = adb.AdbWriter()
    items = []
    for b in sorted(built, key=lambda b: (b.pkg.name.encode(), b.pkg.version)):
        items.append(pkginfo(w, b.pkg, b.installed_size, w.blob(b.adb_sha256),
                             file_size=len(b.data)))
    root = w.object({NDX_DESCRIPTION: w.text(description), NDX_PACKAGES: w.array(items)})
    return adb.container(adb.SCHEMA_INDEX, [adb.block(adb.BLOCK_ADB, w.payload(root))])


def build(out: Path, repo: Path = REPO, icmplib_src: Path | None = None,
          cache: Path | None = None, epoch: int | None = None) -> list[Path]:
    """Write the packages and the indexes into `out`; return every path written."""
    if epoch is None:
        epoch = source_date_epoch(repo)
    out.mkdir(parents=True, exist_ok=True)
    written, stanzas, built = [], [], []
    for pkg in sorted(packages(repo, icmplib_src, cache), key=lambda p: p.name):
        ipk = out / pkg.ipk_filename
        write_atomic(ipk, ipk_bytes(pkg, epoch))
        stanzas.append(packages_entry(ipk) + "\n")
        apk = apk_bytes(pkg, epoch)
        write_atomic(out / pkg.apk_filename, apk.data)
        built.append(apk)
        written += [ipk, out / pkg.apk_filename]
    text = "".join(stanzas).encode()
    for name, data in (("Packages", text), ("Packages.gz", gzip_bytes(text)),
                       ("packages.adb", index_bytes(built))):
        write_atomic(out / name, data)
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    """Build the packages and print their paths; exit 1 on a build error."""
    return pkgcli.run("build_feed", __doc__, REPO / "dist/feed", build, (BuildError, adb.AdbError),
                      argv)


if __name__ == "__main__":
    sys.exit(main())
