"""Build the .ipk packages for a test module, and helpers to look inside them."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from scripts import build_ipk


def build_ipks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build both packages into a temporary directory; skip when icmplib cannot be fetched."""
    out = tmp_path_factory.mktemp("dist")
    try:
        paths = build_ipk.build(out)
    except build_ipk.BuildError as exc:
        if "could not download" in str(exc) and os.environ.get("WG_ENDPOINTD_REQUIRE_LAB") != "1":
            pytest.skip(f"icmplib sdist unavailable: {exc}")
        raise
    return {p.name.split("_")[0]: p for p in paths}


def install_root(ipks: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a temporary root with the packages installed (data only, plus opkg info)."""
    top = tmp_path_factory.mktemp("root")
    for ipk in ipks.values():
        build_ipk.extract_into(ipk, top, opkg_info=True)
    return top


def control_fields(ipk: Path) -> dict[str, str]:
    """Parse the control file: "Key: value" lines, continuation lines start with a space."""
    fields: dict[str, str] = {}
    key = ""
    for line in build_ipk.read_control(ipk)["control"].decode().splitlines():
        if line.startswith(" "):
            fields[key] += "\n" + line[1:]
        else:
            key, _, value = line.partition(": ")
            fields[key] = value.strip()
    return fields


def depends(ipk: Path) -> list[str]:
    """Return the Depends field as a list of package names."""
    return [d.strip() for d in control_fields(ipk)["Depends"].split(",")]


def data_members(ipk: Path) -> dict[str, tarfile.TarInfo]:
    """Return data.tar.gz's members by path ("usr/bin/wg-endpointd")."""
    with tarfile.open(ipk, "r:gz") as outer:
        data = outer.extractfile("./data.tar.gz").read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}
