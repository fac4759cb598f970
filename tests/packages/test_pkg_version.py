"""One version, PKG_VERSION-rPKG_RELEASE, from __version__; the feed Makefiles."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from scripts import pkgfiles, pkgspec

REPO = Path(__file__).resolve().parents[2]
WG_MAKEFILE = "openwrt/net/wg-endpointd/Makefile"
ICMPLIB_MAKEFILE = "openwrt/lang/python3-icmplib/Makefile"


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
               if p.is_file() and not p.relative_to(REPO / "files").as_posix().startswith(
                   pkgfiles.LINUX_ONLY)}
    assert [f for f in sorted(folders) if f"$(PKG_BUILD_DIR)/{f}" not in makefile] == []
