"""What every part of the lab shares: paths, address ranges, the registry of labs, running
commands on the host and in the lab's namespaces, and process helpers."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.lab import Lab
    from tests.lab.links import Link
    from tests.lab.servers import Server
    from tests.lab.wgends import WgPair

WG_SOCK_DIR = "/var/run/wireguard"
NETNS_DIR = "/var/run/netns"
ETC_NETNS = "/etc/netns"
TOOLS = ("ip", "wg", "wireguard-go", "dnsmasq", "nft", "ping", "getent")

_UNDERLAY_NETS = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/25"),
    ipaddress.ip_network("2001:db8::/32"),
)
TUNNEL_NET4 = ipaddress.ip_network("198.51.100.128/25")
TUNNEL_NET6 = ipaddress.ip_network("2001:db8:ffff::/48")  # reserved for tunnel use

# Every Lab ever created in this process (the conftest guard checks the new ones per test).
REGISTRY: list[Lab] = []
# Labs not yet closed; closed at interpreter exit as a last resort.
_OPEN: set[Lab] = set()


class LabError(subprocess.CalledProcessError):
    """A lab command failed; str() shows the command, exit code and stderr."""

    def __str__(self) -> str:
        cmd = " ".join(self.cmd) if isinstance(self.cmd, list | tuple) else str(self.cmd)
        err = (self.stderr or "").strip() or (self.output or "").strip()
        return f"lab command failed (rc={self.returncode}): {cmd}: {err}"


def _fail(message: str) -> LabError:
    return LabError(1, ["lab"], stderr=message)


def missing_requirements() -> list[str]:
    """What keeps the lab from running here (empty when it can run)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append("missing tool(s): " + ", ".join(missing))
    if not os.path.exists("/dev/net/tun"):
        problems.append("missing /dev/net/tun")
    return problems


def _host_run(
    argv: Sequence[str], *, timeout: float = 30, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in the caller's namespace; raise LabError on failure when check."""
    env = dict(os.environ, WG_ENDPOINT_RESOLUTION_RETRIES="0")
    res = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, input=input, env=env
    )
    if check and res.returncode != 0:
        raise LabError(res.returncode, list(argv), res.stdout, res.stderr)
    return res


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """'ip:port' or '[v6]:port' -> (ip, port)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]+):(\d+)", endpoint)
    if not m:
        raise ValueError(f"endpoint must be a literal ip:port or [v6]:port, got {endpoint!r}")
    host = m.group(1) or m.group(3)
    return host, int(m.group(2) or m.group(4))


def _netns_inode(ns: str) -> int | None:
    try:
        return os.stat(os.path.join(NETNS_DIR, ns)).st_ino
    except OSError:
        return None


def _pids_in_netns(inodes: set[int]) -> list[int]:
    """Live (non-zombie) processes whose network namespace is one of ``inodes``."""
    wanted = {f"net:[{ino}]" for ino in inodes}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") in wanted:
                pids.append(int(entry))
        except OSError:  # gone, or a zombie
            continue
    return pids


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM, wait up to ``grace`` s, then SIGKILL and reap."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class LabBase:
    """The lab's state (set in ``Links.__init__``) and running commands in its namespaces;
    the mixins in this package build on it."""

    closed: bool
    links: list[Link]
    pairs: list[WgPair]
    close_errors: list[str]
    _procs: list[subprocess.Popen[bytes]]
    _dnsmasq: subprocess.Popen[bytes] | None
    _dns_addr: str | None
    _blocks: dict[str, str]
    _quiet: set[str]
    _wg_ifs: list[str]
    _ns_inodes: set[int]
    _namespaces: list[str]
    _stuck: list[int]
    tag: str
    router_ns: str
    peer_ns: str
    tmpdir: str

    # ---- running commands -------------------------------------------------------------

    def _exec(
        self,
        ns: str,
        argv: Sequence[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, WG_ENDPOINT_RESOLUTION_RETRIES="0")
        if env:
            full_env.update(env)
        cmd = ["ip", "netns", "exec", ns, *argv]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=full_env, input=input
        )
        if check and res.returncode != 0:
            raise LabError(res.returncode, cmd, res.stdout, res.stderr)
        return res

    def router(
        self,
        argv: list[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the router namespace (env is merged over os.environ)."""
        return self._exec(self.router_ns, argv, timeout, check, env, input)

    def peer(
        self,
        argv: list[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the peer namespace (env is merged over os.environ)."""
        return self._exec(self.peer_ns, argv, timeout, check, env, input)

    def _add_namespace(self, ns: str) -> None:
        """Create `ns` with its loopback up, recorded for cleanup (and its inode, to find
        processes left in it)."""
        _host_run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        ino = _netns_inode(ns)
        if ino is not None:
            self._ns_inodes.add(ino)
        _host_run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _ip_batch(self, ns: str, lines: list[str]) -> None:
        _host_run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")

    if TYPE_CHECKING:  # provided by the other mixins (see Lab in tests/lab/__init__.py)

        def _veth(self, link: Link, far_ns: str, index: int) -> None: ...

        def _start_wireguard_go(self, ns: str, ifname: str) -> None: ...

        def _genkey(self, name: str) -> tuple[str, str]: ...

        def _stop_dnsmasq(self) -> None: ...

        def block_server(self, server: Server, blocked: bool = True) -> None: ...

        def _apply_nft(self) -> None: ...
