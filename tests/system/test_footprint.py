"""The daemon's imports stay light on a router: nothing that loads OpenSSL (ssl, or
hashlib through `secrets`), which costs megabytes of RAM there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
IMPORTS = """
import json, sys
from wg_endpointd.system.logsetup import without_tls
without_tls()
from wg_endpointd.runtime import (announce, daemon, engine, fleet, hookwire, metrics,
                                  netwatch, repairs, service, sources)
from wg_endpointd.config import hostload, tomlfile, wgquick
from wg_endpointd.system import hooks, metricsfile, netlink, probe, routes, sdnotify, wg
probe.IcmpProber()
metricsfile.MetricsFile
print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))
"""
HEAVY = {"ssl", "_ssl", "_hashlib", "hashlib", "secrets"}


def test_what_run_imports_loads_no_openssl() -> None:
    out = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True,
                         timeout=60, env={"PYTHONPATH": SRC}, check=True).stdout
    assert HEAVY.isdisjoint(json.loads(out))
