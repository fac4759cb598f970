"""Namespaces and links: the lab's life (creation, close, leftovers) and the veth pairs
between its namespaces, with their addresses."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.lab.base import (
    _OPEN,
    _UNDERLAY_NETS,
    ETC_NETNS,
    NETNS_DIR,
    REGISTRY,
    TUNNEL_NET4,
    TUNNEL_NET6,
    WG_SOCK_DIR,
    LabBase,
    _fail,
    _host_run,
    _pids_in_netns,
    _stop,
)

if TYPE_CHECKING:
    from tests.lab.wgends import WgPair

_NAME_RE = re.compile(r"^[a-z0-9]{1,10}$")


def _check_underlay(addr: str, prefixlen: int, family: int) -> None:
    """Refuse anything outside the documentation ranges the lab may use."""
    ip = ipaddress.ip_address(addr)
    if ip.version != family:
        raise ValueError(f"{addr} is not an IPv{family} address")
    net = ipaddress.ip_network(f"{addr}/{prefixlen}", strict=False)
    if net.overlaps(TUNNEL_NET6) or net.overlaps(TUNNEL_NET4):
        raise ValueError(f"{net} overlaps the lab's tunnel ranges")
    if not any(net.network_address in ok and net.broadcast_address in ok for ok in _UNDERLAY_NETS):
        raise ValueError(f"{net} is outside 192.0.2.0/24, 198.51.100.0/25, 2001:db8::/32")


@dataclass
class Link:
    """One veth pair between the router namespace and the peer namespace."""

    name: str  # short lab-unique tag, e.g. "v6a"
    router_if: str
    peer_if: str
    router_addr: str
    peer_addr: str
    prefixlen: int
    family: int  # 4 or 6

    def endpoint(self, port: int = 51820) -> str:
        """The peer address of this link as a WireGuard endpoint literal."""
        return f"[{self.peer_addr}]:{port}" if self.family == 6 else f"{self.peer_addr}:{port}"


class Links(LabBase):
    """The router and peer namespaces, the veth links between them, and closing it all."""

    def __init__(self, tag: str | None = None) -> None:
        self.closed = False
        self.links: list[Link] = []
        self.pairs: list[WgPair] = []
        self.close_errors: list[str] = []  # what close() could not do (it never raises)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dnsmasq: subprocess.Popen[bytes] | None = None
        self._dns_addr: str | None = None
        self._blocks: dict[str, str] = {}  # link name -> what
        self._quiet: set[str] = set()  # peer interfaces that answer test datagrams by keepalive
        self._wg_ifs: list[str] = []
        self._ns_inodes: set[int] = set()
        self._namespaces: list[str] = []
        self._stuck: list[int] = []  # pids close() could not end
        self.tag = tag if tag is not None else self._free_tag()
        if not re.fullmatch(r"[0-9a-z]{1,4}", self.tag):
            raise ValueError("tag must be 1-4 characters of [0-9a-z]")
        self.router_ns = f"wgl-{self.tag}-r"
        self.peer_ns = f"wgl-{self.tag}-p"
        self.tmpdir = tempfile.mkdtemp(prefix=f"wglab-{self.tag}-")
        REGISTRY.append(self)  # type: ignore[arg-type]  # self is always a Lab
        _OPEN.add(self)  # type: ignore[arg-type]
        try:
            for ns in (self.router_ns, self.peer_ns):
                self._add_namespace(ns)
                # New interfaces skip IPv6 DAD, so addresses (link-local too) work at once.
                self._exec(
                    ns,
                    [
                        "sysctl",
                        "-q",
                        "-w",
                        "net.ipv6.conf.default.accept_dad=0",
                        "net.ipv6.conf.all.accept_dad=0",
                    ],
                )
            self._apply_nft()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_tag() -> str:
        for _ in range(50):  # bounded
            tag = secrets.token_hex(2)
            if not any(os.path.exists(os.path.join(NETNS_DIR, f"wgl-{tag}-{s}")) for s in "rp"):
                return tag
        raise _fail("no free lab tag after 50 tries")

    # ---- links ------------------------------------------------------------------------

    def add_link(
        self, name: str, family: int, router_addr: str, peer_addr: str, prefixlen: int
    ) -> Link:
        """Add a veth pair router_ns:r-<name> <-> peer_ns:p-<name> with one address each side."""
        if not _NAME_RE.match(name) or any(link.name == name for link in self.links):
            raise ValueError(f"link name {name!r} must be unique and match {_NAME_RE.pattern}")
        if family not in (4, 6):
            raise ValueError("family must be 4 or 6")
        _check_underlay(router_addr, prefixlen, family)
        _check_underlay(peer_addr, prefixlen, family)
        net_r = ipaddress.ip_interface(f"{router_addr}/{prefixlen}").network
        if peer_addr == router_addr or ipaddress.ip_address(peer_addr) not in net_r:
            raise ValueError(f"{router_addr} and {peer_addr} must differ and share a subnet")
        link = Link(name, f"r-{name}", f"p-{name}", router_addr, peer_addr, prefixlen, family)
        self._veth(link, self.peer_ns, 1000 + len(self.links))
        self.links.append(link)
        return link

    def _veth(self, link: Link, far_ns: str, index: int) -> None:
        """A veth pair from the router namespace to `far_ns`, addressed and up.

        Distinct ifindexes on the two ends (`index`, `index` + 1000): when a veth's ifindex
        equals its peer's (both are 2 in fresh namespaces), the kernel's linkwatch treats
        carrier-up as non-urgent and leaves the noop qdisc in place for up to 1 s,
        dropping the first packets."""
        nodad = " nodad" if link.family == 6 else ""
        self._ip_batch(self.router_ns, [
            f"link add {link.router_if} index {index} type veth"
            f" peer name {link.peer_if} index {index + 1000} netns {far_ns}",
            f"addr add {link.router_addr}/{link.prefixlen} dev {link.router_if}{nodad}",
            f"link set {link.router_if} up",
        ])
        self._ip_batch(far_ns, [
            f"addr add {link.peer_addr}/{link.prefixlen} dev {link.peer_if}{nodad}",
            f"link set {link.peer_if} up",
        ])

    def remove_peer_address(self, link: Link) -> None:
        """The peer "moves away": delete its address on that link."""
        _host_run(
            [
                "ip",
                "-n",
                self.peer_ns,
                "addr",
                "del",
                f"{link.peer_addr}/{link.prefixlen}",
                "dev",
                link.peer_if,
            ]
        )

    # ---- teardown ---------------------------------------------------------------------

    def _try(self, what: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as e:  # close() must never raise
            self.close_errors.append(f"{what}: {e}")

    def _kill_ns_processes(self) -> None:
        """SIGTERM then SIGKILL whatever still runs in the lab's namespaces (bounded)."""
        if not self._ns_inodes:
            return
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
            pids = _pids_in_netns(self._ns_inodes)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while _pids_in_netns(self._ns_inodes) and time.monotonic() < deadline:
                time.sleep(0.02)

    def _record_stuck(self) -> None:
        # Checked while the lab's names still pin its namespaces (inodes get reused later).
        self._stuck = _pids_in_netns(self._ns_inodes) if self._ns_inodes else []

    def close(self) -> None:
        """Remove everything the lab created. Idempotent; never raises (see close_errors)."""
        if self.closed:
            return
        self.closed = True
        self._try("stop dnsmasq", self._stop_dnsmasq)
        for proc in self._procs:
            self._try(f"stop pid {proc.pid}", _stop, proc)
        self._try("kill namespace processes", self._kill_ns_processes)
        self._try("scan namespace processes", self._record_stuck)
        for ifname in self._wg_ifs:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            if os.path.exists(sock):
                self._try(f"remove {sock}", os.remove, sock)
        for ns in self._namespaces:
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                self._try(f"delete netns {ns}", _host_run, ["ip", "netns", "delete", ns])
            d = os.path.join(ETC_NETNS, ns)
            if os.path.exists(d):
                self._try(f"remove {d}", shutil.rmtree, d)
        try:
            os.rmdir(ETC_NETNS)  # only if empty: other labs may still use it
        except OSError:
            pass
        self._try(f"remove {self.tmpdir}", shutil.rmtree, self.tmpdir)
        _OPEN.discard(self)

    def leftovers(self) -> list[str]:
        """Anything this lab created that still exists (empty after a clean close())."""
        found = []
        for ns in self._namespaces:
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                found.append(f"namespace {ns}")
            if os.path.exists(os.path.join(ETC_NETNS, ns)):
                found.append(f"directory {ETC_NETNS}/{ns}")
        for ifname in self._wg_ifs:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            if os.path.exists(sock):
                found.append(f"socket {sock}")
        for proc in self._procs:
            if proc.poll() is None:
                args = proc.args
                shown = " ".join(map(str, args)) if isinstance(args, list) else str(args)
                found.append(f"process {proc.pid} ({shown})")
        # Once closed, namespace inodes may belong to someone else's new namespace: use what
        # close() saw while the lab's names still pinned them.
        stuck = self._stuck if self.closed else _pids_in_netns(self._ns_inodes)
        found += [f"process {pid} in a lab namespace" for pid in stuck]
        if os.path.exists(self.tmpdir):
            found.append(f"temp dir {self.tmpdir}")
        return found
