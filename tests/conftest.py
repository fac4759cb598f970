"""Shared fixtures. Lab tests (marker `lab`) need root and the lab's tools; they are skipped
without them, or failed instead when WG_ENDPOINTD_REQUIRE_LAB=1 (CI)."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests import lab as lab_mod
from tests.lab import Lab

REQUIRE_ENV = "WG_ENDPOINTD_REQUIRE_LAB"


@functools.cache
def _lab_problems() -> tuple[str, ...]:
    """Why the lab cannot run here (checked once per session)."""
    problems = lab_mod.missing_requirements()
    if not problems:  # root and tools present: can we really create a namespace?
        name = f"wgl-probe-{os.getpid()}"
        res = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if res.returncode != 0:
            problems.append(f"cannot create network namespaces: {res.stderr.strip()}")
        else:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return tuple(problems)


def require_lab() -> None:
    """Skip the current test when the lab cannot run, or fail it under WG_ENDPOINTD_REQUIRE_LAB=1."""
    problems = _lab_problems()
    if not problems:
        return
    reason = "lab unavailable: " + "; ".join(problems)
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the `lab` fixture is a lab test, marked or not."""
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()) and item.get_closest_marker("lab") is None:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(autouse=True)
def _lab_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """For lab tests: gate on requirements, then fail the test if any Lab created during it
    was left open or left anything behind (namespace, socket, process, file)."""
    if request.node.get_closest_marker("lab") is None:
        yield
        return
    require_lab()
    start = len(lab_mod.REGISTRY)
    yield
    problems = []
    for lab in lab_mod.REGISTRY[start:]:
        if not lab.closed:
            problems.append(f"lab {lab.tag} was not closed")
            lab.close()
        problems += [f"lab {lab.tag}: leftover {what}" for what in lab.leftovers()]
        problems += [f"lab {lab.tag}: close error: {err}" for err in lab.close_errors]
    del lab_mod.REGISTRY[start:]
    if problems:
        pytest.fail("lab cleanup failed:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh Lab (router + peer namespaces), always closed afterwards."""
    require_lab()
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()
