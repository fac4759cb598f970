"""Fixtures shared by the package tests: the ipks built from this tree and a root they
are installed into (tests/ipkbuild.py), once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ipkbuild import build_ipks, install_root


@pytest.fixture(scope="module")
def ipks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_ipks(tmp_path_factory)


@pytest.fixture(scope="module")
def root(ipks: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_root(ipks, tmp_path_factory)
