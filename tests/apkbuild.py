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
# The packages this tree builds: the LuCI app and the collector only when their
# folders are there.
OPTIONAL = {"luci-app-wg-endpointd": "openwrt/luci/luci-app-wg-endpointd",
            "prometheus-node-exporter-lua-wg-endpointd":
                "openwrt/utils/prometheus-node-exporter-lua-wg-endpointd"}
NAMES = sorted(["wg-endpointd", "python3-icmplib"] + [
    name for name, folder in OPTIONAL.items() if (REPO / folder / "Makefile").is_file()])


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
