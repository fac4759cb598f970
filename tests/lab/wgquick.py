"""wg-quick in the lab: a real `wg-quick up <file>` in the router namespace (wireguard-go,
as wg-quick falls back to it without the kernel module), its server end in the peer
namespace, and `wg-quick down` with everything cleaned up.

The router namespace is a Linux host on the internet (``add_quick_uplinks``):

- link "qd", 192.0.2.9/30 - 192.0.2.10: the LAN's resolver, dnsmasq (``set_dns``); its
  connected route keeps DNS outside a full tunnel, as wg-quick keeps a LAN's routes
  (``suppress_prefixlength 0``).
- links "q4" (192.0.2.1/30 - 192.0.2.2) and "q6" (2001:db8:1::1/64 - 2001:db8:1::2):
  the uplinks. The router's addresses have no prefix route (``noprefixroute``): the
  server's addresses are reached through the default routes only, like a server far
  away, so that a full tunnel's table takes every unmarked packet to them into the
  tunnel. ``lab.block(link)`` breaks a path as for the other pairs.

Tunnel k (``add_wg_quick``): interface ``wgl<tag>w<k>`` from ``<tmpdir>/wireguard-<k>/``
``wgl<tag>w<k>.conf`` (wg-quick names the interface after the file), Address
10.99.<k>.2/24 and 2001:db8:ffff:<100+k>::2/64; the server ``wgl<tag>v<k>`` in the peer
namespace is 10.99.<k>.1 and 2001:db8:ffff:<100+k>::1 inside the tunnel and listens on
the uplinks' peer addresses. Its handshake initiations are dropped (a host behind NAT).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from tests.lab.base import WG_SOCK_DIR, LabBase, _fail, _host_run, _netns_inode, _pids_in_netns
from tests.lab.links import Link

QUICK_NAME = "server.wgq.test"
USERSPACE = {"WG_QUICK_USERSPACE_IMPLEMENTATION": "wireguard-go"}


@dataclass
class QuickServer:
    """The server end of a wg-quick tunnel: wireguard-go in the peer namespace."""

    wg_if: str
    public: str
    private_file: str
    port: int
    tunnel4: str  # its addresses inside the tunnel
    tunnel6: str
    v4: Link  # the uplinks that reach it; ``lab.block(server.v6)`` breaks its IPv6 path
    v6: Link

    def endpoints(self) -> tuple[str, str]:
        """Its endpoints as WireGuard literals: (IPv4, IPv6)."""
        return self.v4.endpoint(self.port), self.v6.endpoint(self.port)


@dataclass
class QuickTunnel:
    """A wg-quick interface in the router namespace and its server.

    The daemon runs against it as ``ip netns exec NS python -m wg_endpointd run
    --wireguard-dir DIR``: ``daemon_argv("run")`` builds that command."""

    ns: str
    name: str  # the interface, as wg-quick names it after the file
    conf_dir: str  # for --wireguard-dir
    conf_path: str
    router_public: str
    server: QuickServer
    full: bool  # AllowedIPs = 0.0.0.0/0, ::/0
    endpoint: str  # as written in the file: hostname:port by default
    address4: str = ""  # the router's addresses in the tunnel, with their prefixes
    address6: str = ""
    up: bool = False
    extra: list[str] = field(default_factory=list)  # more [Interface] lines (FwMark, Table)

    def daemon_argv(self, *args: str) -> list[str]:
        """`ip netns exec NS python -m wg_endpointd ARGS --wireguard-dir DIR`."""
        return ["ip", "netns", "exec", self.ns, sys.executable, "-m", "wg_endpointd", *args,
                "--wireguard-dir", self.conf_dir]


class WgQuick(LabBase):
    """wg-quick tunnels in the router namespace (``add_wg_quick``)."""

    _quick: list[QuickTunnel]
    _quick_links: dict[str, Link]

    if TYPE_CHECKING:  # from the Links and Dns mixins

        def add_link(self, name: str, family: int, router_addr: str, peer_addr: str,
                     prefixlen: int) -> Link: ...

        def set_dns(self, records: dict[str, list[str]]) -> None: ...

    def add_quick_uplinks(self) -> dict[str, Link]:
        """The links "qd", "q4" and "q6" and the router's default routes (once per lab)."""
        if getattr(self, "_quick_links", None):
            return self._quick_links
        if any(link.family == 4 for link in self.links):
            raise _fail("add_quick_uplinks must come first: set_dns uses the first IPv4 link")
        links = {
            "qd": self.add_link("qd", 4, "192.0.2.9", "192.0.2.10", 30),
            "q4": self.add_link("q4", 4, "192.0.2.1", "192.0.2.2", 30),
            "q6": self.add_link("q6", 6, "2001:db8:1::1", "2001:db8:1::2", 64),
        }
        lines = []
        for name in ("q4", "q6"):
            link = links[name]
            address = f"{link.router_addr}/{link.prefixlen} dev {link.router_if}"
            nodad = " nodad" if link.family == 6 else ""
            lines += [f"addr del {address}", f"addr add {address} noprefixroute{nodad}",
                      f"route add default via {link.peer_addr}"
                      f" dev {link.router_if} onlink"]
        self._ip_batch(self.router_ns, lines)
        self._quick_links = links
        self._quick = []
        return links

    def add_wg_quick(self, full: bool = False, *, host: str = QUICK_NAME,
                     endpoint: str | None = None, port: int | None = None,
                     keepalive: int | None = None, extra: list[str] | None = None,
                     dns: bool = True, up: bool = True) -> QuickTunnel:
        """A wg-quick config for a new tunnel (split, or full with ``full``) and its server,
        brought up with `wg-quick up` unless ``up`` is false. Its Endpoint is
        ``host:port`` (``endpoint`` overrides it), and with ``dns`` the lab's dnsmasq
        answers ``host`` with the server's IPv6 and IPv4 addresses (set_dns replaces
        every record: call it again for more)."""
        links = self.add_quick_uplinks()
        k = len(self._quick)
        port = port or 51820 + k
        name, server_if = f"wgl{self.tag}w{k}", f"wgl{self.tag}v{k}"
        net6 = f"2001:db8:ffff:{100 + k:x}"
        self._start_wireguard_go(self.peer_ns, server_if)
        server_priv, server_pub = self._genkey(f"{server_if}.key")
        router_priv, router_pub = self._genkey(f"{name}.key")
        server = QuickServer(server_if, server_pub, server_priv, port, f"10.99.{k}.1",
                             f"{net6}::1", links["q4"], links["q6"])
        self._exec(self.peer_ns, ["wg", "set", server_if, "private-key", server_priv,
                                  "listen-port", str(port), "peer", router_pub, "allowed-ips",
                                  f"10.99.{k}.2/32,{net6}::2/128"])
        self._ip_batch(self.peer_ns, [f"addr add 10.99.{k}.1/24 dev {server_if}",
                                      f"addr add {net6}::1/64 dev {server_if} nodad",
                                      f"link set {server_if} up"])
        conf_dir = os.path.join(self.tmpdir, f"wireguard-{k}")
        os.mkdir(conf_dir, 0o700)
        tunnel = QuickTunnel(self.router_ns, name, conf_dir, os.path.join(conf_dir, f"{name}.conf"),
                             router_pub, server, full, endpoint or f"{host}:{port}",
                             f"10.99.{k}.2/24", f"{net6}::2/64", extra=list(extra or []))
        with open(router_priv) as f:
            key = f.read().strip()
        allowed = "0.0.0.0/0, ::/0" if full else f"10.99.{k}.0/24, {net6}::/64"
        text = ["[Interface]", f"PrivateKey = {key}",
                f"Address = {tunnel.address4}, {tunnel.address6}", *tunnel.extra, "",
                "[Peer]", f"PublicKey = {server_pub}", f"Endpoint = {tunnel.endpoint}",
                f"AllowedIPs = {allowed}"]
        if keepalive is not None:
            text.append(f"PersistentKeepalive = {keepalive}")
        fd = os.open(tunnel.conf_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(text) + "\n")
        self._quick.append(tunnel)
        self._block_quick_initiations()
        if dns:
            self.set_dns({host: [links["q6"].peer_addr, links["q4"].peer_addr]})
        if up:
            self.wg_quick_up(tunnel)
        return tunnel

    def _block_quick_initiations(self) -> None:
        """The servers never initiate handshakes (a host behind NAT cannot be reached): an
        nftables table of its own in the peer namespace, beside the lab's."""
        rules = [f"    udp sport {t.server.port} @th,64,32 0x01000000 drop" for t in self._quick]
        body = ["table inet wgquick", "delete table inet wgquick", "table inet wgquick {",
                "  chain out { type filter hook output priority 0; policy accept;", *rules,
                "  }", "}"]
        self._exec(self.peer_ns, ["nft", "-f", "-"], input="\n".join(body) + "\n")

    def _wg_quick(self, action: str, tunnel: QuickTunnel) -> None:
        """`wg-quick ACTION FILE` in the router namespace. Its output goes to a file, never
        a pipe: the wireguard-go it starts daemonizes and could hold a pipe open."""
        env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
        env.update(USERSPACE, WG_ENDPOINT_RESOLUTION_RETRIES="0")
        log = os.path.join(self.tmpdir, f"{tunnel.name}.wg-quick.log")
        with open(log, "a") as out:
            res = _run_logged(["ip", "netns", "exec", tunnel.ns, "wg-quick", action,
                               tunnel.conf_path], out, env)
        if res != 0:
            with open(log) as f:
                raise _fail(f"wg-quick {action} {tunnel.name} failed ({res}): {f.read()[-800:]}")

    def wg_quick_up(self, tunnel: QuickTunnel) -> None:
        """`wg-quick up`; its interface (and wireguard-go's socket) is the lab's to clean."""
        if tunnel.name not in self._wg_ifs:
            self._wg_ifs.append(tunnel.name)
        sock = os.path.join(WG_SOCK_DIR, f"{tunnel.name}.sock")
        if os.path.exists(sock):
            raise _fail(f"{sock} already exists")
        self._wg_quick("up", tunnel)
        tunnel.up = True

    def wg_quick_down(self, tunnel: QuickTunnel) -> None:
        """`wg-quick down`, then wait (bounded) for its wireguard-go to exit and its socket
        to go; one that does not is killed and its socket removed."""
        self._wg_quick("down", tunnel)
        tunnel.up = False
        sock = os.path.join(WG_SOCK_DIR, f"{tunnel.name}.sock")
        deadline = time.monotonic() + 5
        for _ in range(250):  # bounded: 250 x 20 ms, and 5 s
            if not self.quick_processes(tunnel) and not os.path.exists(sock):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for pid in self.quick_processes(tunnel):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if os.path.exists(sock):
            os.remove(sock)
        raise _fail(f"wireguard-go for {tunnel.name} outlived `wg-quick down`")

    def quick_processes(self, tunnel: QuickTunnel) -> list[int]:
        """The wireguard-go processes of ``tunnel`` in the router namespace."""
        ino = _netns_inode(tunnel.ns)
        found = []
        for pid in _pids_in_netns({ino} if ino is not None else set()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"wireguard-go") for a in argv) and tunnel.name.encode() in argv:
                found.append(pid)
        return found

    def routing_state(self, ns: str | None = None) -> dict[str, str]:
        """What wg-quick sets up and the daemon must leave alone, in ``ns`` (the router's):
        the rules, every table's routes, and the nftables ruleset."""
        ns = ns or self.router_ns
        out = {}
        for key, argv in (("rules4", ["ip", "-4", "rule"]), ("rules6", ["ip", "-6", "rule"]),
                          ("routes4", ["ip", "-4", "route", "show", "table", "all"]),
                          ("routes6", ["ip", "-6", "route", "show", "table", "all"]),
                          ("nft", ["nft", "list", "ruleset"])):
            out[key] = _host_run(["ip", "netns", "exec", ns, *argv]).stdout
        return out

    def wg_fwmark(self, tunnel: QuickTunnel) -> str:
        """`wg show IF fwmark`: "off", or the mark in hex (0xca6c for 51820)."""
        return self.router(["wg", "show", tunnel.name, "fwmark"]).stdout.strip()

    def ping_quick(self, tunnel: QuickTunnel, family: int = 4, timeout: float = 2) -> bool:
        """Ping the server's address inside the tunnel from the router namespace."""
        target = tunnel.server.tunnel4 if family == 4 else tunnel.server.tunnel6
        res = self.router(["ping", f"-{family}", "-n", "-q", "-c", "1", "-W", str(timeout),
                           target], timeout=timeout + 5, check=False)
        return res.returncode == 0


def _run_logged(argv: list[str], out: IO[str], env: dict[str, str]) -> int:
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=env, timeout=30)
    return res.returncode
