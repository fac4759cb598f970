"""Package descriptions for the .apk tests, and parsing with the test's ADB reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts import pkgfiles, pkgspec
from tests import adb_reader

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build/cache"
EPOCH = 1700000000
# The packages this tree builds: the LuCI app only when its folder is there.
NAMES = sorted(["wg-endpointd", "python3-icmplib"] + (
    ["luci-app-wg-endpointd"]
    if (REPO / "openwrt/luci/luci-app-wg-endpointd/Makefile").is_file() else []))


def packages_or_skip(repo: Path = REPO) -> list[pkgspec.Package]:
    """Describe the packages of `repo`; skip when the icmplib sdist cannot be fetched."""
    try:
        return pkgfiles.packages(repo, cache=CACHE)
    except pkgspec.BuildError as exc:
        if "could not download" in str(exc) and os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") != "1":
            pytest.skip(f"icmplib sdist unavailable: {exc}")
        raise


def parsed(path: Path) -> adb_reader.AdbFile:
    """Parse an .apk or packages.adb file."""
    return adb_reader.parse(path.read_bytes())
