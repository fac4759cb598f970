"""Issue 20: the prober with the real icmplib 2.1.1 that Debian 12 ships (python3-icmplib)
as well as the 3.0.4 the project pins, on real sockets in a network namespace of its own.

icmplib 2.1.1 is installed apart, in build/icmplib-2.1.1 (scripts/setup.sh, or here when
missing), and put first on sys.path of a child process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ICMPLIB2 = REPO / "build/icmplib-2.1.1"

SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import icmplib
from wg_endpointd.system.probe import IcmpProber
privileged = sys.argv[3] == "raw"
out = IcmpProber(privileged=privileged).probe(
    [["127.0.0.1", "192.0.2.1"], ["::1"]], 1.0, marks=[0, 51820] if privileged else [])
print(icmplib.__version__, *sorted(a for a, r in out.items() if r.answered))
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets and unshare need root")


@pytest.fixture(scope="module")
def icmplib2():
    if not (ICMPLIB2 / "icmplib/__init__.py").is_file():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-deps", "--target", str(ICMPLIB2), "icmplib==2.1.1"],
                       check=True, timeout=300)
    return ICMPLIB2


@pytest.mark.parametrize("sockets", ["raw", "datagram"])
@pytest.mark.parametrize("version", ["2.1.1", "3."])
def test_probe_with_both_icmplib_versions(icmplib2, version, sockets):
    """Loopback answers on both families, a documentation address does not (no route in the
    namespace); raw sockets also carry a firewall mark. Datagram (unprivileged) sockets are
    allowed through the namespace's own ping_group_range."""
    where = str(icmplib2) if version == "2.1.1" else "/nonexistent"  # the venv's 3.x
    shell = ("ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 0' && "
             'exec "$0" -c "$1" "$2" "$3" "$4"')
    out = subprocess.run(["unshare", "--net", "sh", "-c", shell, sys.executable, SCRIPT,
                          where, str(REPO / "src"), sockets],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    got, *answered = out.stdout.split()
    assert got.startswith(version) and answered == ["127.0.0.1", "::1"]
