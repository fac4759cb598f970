"""Static checks over the router's shell scripts and the test stubs: shellcheck,
busybox sh -n, and a reason for every shellcheck disable.

Without busybox or shellcheck the tests skip, unless WG_ENDPOINTD_REQUIRE_LAB=1,
which turns a missing tool into a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.router import shell_helpers
from tests.router.shell_helpers import (
    HOTPLUG,
    INIT,
    INIT_HARNESS,
    LOGGER_STUB,
    PROCD_STUB,
    ROOT,
    WRAPPER,
)

# Fixtures, bound here so that pytest finds them for this module.
busybox = shell_helpers.busybox
shellcheck = shell_helpers.shellcheck


@pytest.mark.parametrize("script", [HOTPLUG, INIT, WRAPPER, PROCD_STUB, INIT_HARNESS, LOGGER_STUB],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(shellcheck: str, script: Path) -> None:
    result = subprocess.run(
        [shellcheck, "-s", "sh", str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [HOTPLUG, INIT, WRAPPER], ids=lambda p: str(p.relative_to(ROOT)))
def test_busybox_parses(busybox: str, script: Path) -> None:
    result = subprocess.run(
        [busybox, "sh", "-n", str(script)], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr


def test_shellcheck_disables_give_reasons() -> None:
    for script in (HOTPLUG, INIT, WRAPPER, LOGGER_STUB):
        for line in script.read_text().splitlines():
            if "shellcheck disable=" in line:
                assert line.split("disable=", 1)[1].split(" ", 1)[1].startswith("# "), line
