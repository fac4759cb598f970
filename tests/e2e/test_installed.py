"""The files the .ipk installs work: the installed launcher, run by the machine's own
python3 with nothing from this source tree on its path, fixes a peer in the lab."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scripts import build_ipk
from tests.e2e.helpers import NAME, endpoint, four_links, peer_section, write_config

pytestmark = pytest.mark.lab
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail(f"{SYSTEM_PYTHON} is missing")
    dist = tmp_path_factory.mktemp("dist")
    root = tmp_path_factory.mktemp("root")
    for ipk in build_ipk.build(dist):
        build_ipk.extract_into(ipk, root)
    return root


def test_installed_launcher_fixes_a_peer(lab, tmp_path, installed):
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    lab.set_dns({NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]})
    lab.block(links["v6a"], "all")
    lab.set_endpoint(pair, links["v6a"].endpoint())
    confdir = write_config(tmp_path, [pair], peer_section(pair))
    launcher = installed / "usr/bin/wg-endpointd"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}
    res = lab.router(["env", "-i", *(f"{k}={v}" for k, v in env.items()), SYSTEM_PYTHON,
                      "-I", str(launcher), "once", "--config-dir", confdir, "-v"],
                     check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    assert endpoint(lab, pair) == links["v4a"].endpoint()
    assert lab.ping_through_tunnel(pair)
    # It ran the installed copies, and wrote no bytecode into the installed tree.
    probe = lab.router(["env", "-i", SYSTEM_PYTHON, "-I", "-c",
                        "import runpy,sys; sys.argv=['x','--version'];"
                        f"runpy.run_path('{launcher}')"], check=False)
    assert "0.1.0" in probe.stdout + probe.stderr
    assert not list(installed.rglob("__pycache__"))
    assert shutil.which("wg-endpointd", path=str(installed / "usr/bin")) is not None
