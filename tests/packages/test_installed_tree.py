"""The installed tree of the .ipk packages: the launcher, and the declared dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import openwrt_py_split
from tests.ipkbuild import depends

REPO = Path(__file__).resolve().parents[2]


# -- installed behaviour ----------------------------------------------------


def test_installed_launcher_runs_with_this_python(root: Path, tmp_path: Path) -> None:
    if not (REPO / "src/wg_endpointd/cli.py").is_file():
        pytest.skip("src/wg_endpointd/cli.py is not written yet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([sys.executable, str(root / "usr/bin/wg-endpointd"), "--help"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    assert not list((root / "usr/lib").rglob("__pycache__")), "bytecode written to /usr/lib"


def test_launcher_imports_the_installed_copies(root: Path, tmp_path: Path) -> None:
    """Both wg_endpointd and icmplib come from the install root, not from the checkout."""
    if not (REPO / "src/wg_endpointd/cli.py").is_file():
        pytest.skip("src/wg_endpointd/cli.py is not written yet")
    launcher = root / "usr/bin/wg-endpointd"
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(launcher)!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(launcher)!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import icmplib, wg_endpointd\n"
        "print('@@', wg_endpointd.__file__, icmplib.__file__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    wg_file, icmp_file = result.stdout.split("@@")[1].split()
    assert Path(wg_file).is_relative_to(root / "usr/lib/wg-endpointd")
    assert Path(icmp_file).is_relative_to(root / "usr/lib/python3-icmplib")


# -- declared dependencies ----------------------------------------------------


def _needs(code_root: Path, package_dir: str) -> tuple[set[str], set[str]]:
    """Return (stdlib modules, other top-level modules) imported by an installed package."""
    own = package_dir.split("/")[-1]
    found = openwrt_py_split.code_imports(code_root, [code_root / own])
    stdlib = {m for m in found if openwrt_py_split.is_stdlib(m)}
    removed = {m for m in stdlib if openwrt_py_split.top(m) in openwrt_py_split.REMOVED}
    assert not removed, f"{own} imports modules gone by Python 3.14: {sorted(removed)}"
    stdlib = {m for m in stdlib if openwrt_py_split.exists(m)}
    others = {openwrt_py_split.top(m) for m in found
              if not openwrt_py_split.is_stdlib(m)} - {own}
    return stdlib, others


@pytest.mark.parametrize(("name", "code_root", "package_dir", "third_party"), [
    ("wg-endpointd", "usr/lib/wg-endpointd", "wg_endpointd", {"icmplib": "python3-icmplib"}),
    ("python3-icmplib", "usr/lib/python3-icmplib", "icmplib", {}),
])
def test_declared_depends_provide_every_imported_module(
        ipks: dict[str, Path], root: Path, name: str, code_root: str, package_dir: str,
        third_party: dict[str, str]) -> None:
    """Every stdlib module the installed code loads comes from a declared package.

    Imports are followed through the stdlib (asyncio loads logging, for
    example), mapped to OpenWrt's python3 split packages, and compared with
    Depends. Declared python3-* packages that nothing needs fail too.
    """
    stdlib, others = _needs(root / code_root, package_dir)
    print(f"\n{name} imports from the stdlib: {' '.join(sorted(stdlib))}")
    assert others <= set(third_party), f"undeclared third-party imports: {others}"
    closure = openwrt_py_split.stdlib_closure(stdlib)
    required = openwrt_py_split.required_packages(closure)
    for pkg, modules in sorted(required.items()):
        print(f"  {pkg}: {' '.join(sorted(m for m in modules if m in stdlib) or ['(indirect)'])}")
    declared = set(depends(ipks[name])) - {"libc"}
    needed = set(required) | {third_party[m] for m in others}
    provided = openwrt_py_split.expand(declared)
    missing = {pkg: sorted(required.get(pkg, [pkg])) for pkg in needed - provided}
    assert not missing, f"{name}: Depends lacks {missing}"
    split = {d for d in declared if d.startswith("python3-") and d != "python3-light"}
    assert split <= needed, f"{name}: Depends has unneeded {sorted(split - needed)}"
